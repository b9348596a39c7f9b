#include "crypto/membio.h"

#include <stdlib.h>
#include <string.h>

int
membio_text(BIO *bio, char **out, size_t *len)
{
	char *data, *copy;
	long n;

	if ((n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (copy = malloc((size_t)n + 1)) == NULL)
		return -1;
	memcpy(copy, data, (size_t)n);
	copy[n] = '\0';
	*out = copy;
	*len = (size_t)n;
	return 0;
}
