/*
 * Fuzz target for the gateway configuration loader (gateway/config.c): the
 * input is written to a file (on tmpfs: the atomic write fsyncs) and loaded.  Every input must be refused with a
 * message or accepted, never crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/config.h"
#include "util/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	char err[512];
	config_t *c;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/dev/shm/visor-fuzz-config-%ld.json",
		    (long)getpid());
	if (file_write_atomic(path, data, size, 0600) < 0)
		return 0;
	c = config_load(path, err, sizeof(err));
	config_free(c);
	return 0;
}
