#include "gateway/version.h"

const char *
visor_version(void)
{
	return VISOR_VERSION;
}
