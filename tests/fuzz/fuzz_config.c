/*
 * Fuzz target for the gateway configuration loader (gateway/config.c): the
 * input is written to a file (on tmpfs: the atomic write fsyncs) and loaded.  Every input must be refused with a
 * message or accepted, never crash or leak.
 *
 * The configuration is written into a folder of its own that holds the
 * files a configuration names by relative path (cert.pem, key.pem with
 * mode 0600, root.pem, ca.pem, crl.pem, policy.json and data/ with mode
 * 0700; only their existence and modes are checked at load), so that an
 * input gets past tls, policy and data_dir to the limits, transfer and
 * the rest (before, every input was refused at tls.cert: the seeds named
 * files that did not exist, and no input reached a limit).
 *
 * A configuration that loads is then checked as the start checks it
 * against RLIMIT_NOFILE (gateway/fdlimit.c, as --check-config: nothing is
 * raised): the descriptors it needs are its connections rounded up to a
 * whole share per worker plus the reserve, without wrapping; and when the
 * limit is too low, the max_connections the message offers instead must
 * itself fit under the hard limit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"
#include "gateway/fdlimit.h"
#include "util/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = { "cert.pem", "root.pem", "ca.pem",
    "crl.pem", "policy.json", "key.pem", "gateway.json" };
static char dir[64];

/* At exit: the folder goes (the fuzzer's children and replays each make
 * one). */
static void
remove_dir(void)
{
	char f[128];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
		(void)unlink(f);
	}
	snprintf(f, sizeof(f), "%s/data", dir);
	(void)rmdir(f);
	(void)rmdir(dir);
}

/* The folder, its files, and the configuration's path in it. */
static void
setup_dir(char *path, size_t len)
{
	char f[128];
	size_t i;

	snprintf(dir, sizeof(dir), "%s/visor-fuzz-config-%ld",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
	snprintf(f, sizeof(f), "%s/data", dir);
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(f, 0700) < 0 && errno != EEXIST))
		abort();
	atexit(remove_dir);
	for (i = 0; i < 5; i++) {
		snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
		if (file_write_atomic(f, "x", 1, 0644) < 0)
			abort();
	}
	snprintf(f, sizeof(f), "%s/key.pem", dir);
	if (file_write_atomic(f, "x", 1, 0600) < 0)
		abort();
	snprintf(path, len, "%s/gateway.json", dir);
}

static void
check_fdlimit(const config_t *c)
{
	char err[512];
	const char *p;
	unsigned long threads = c->threads > 0 ? c->threads : 1, offered;
	fdlimit_t fd, fd2;
	config_t smaller;

	memset(&fd, 0, sizeof(fd));
	err[0] = '\0';		/* fdlimit_ensure writes it only on -1 */
	if (fdlimit_ensure(c, 0, &fd, err, sizeof(err)) == 0) {
		if (fd.hard < fd.need)
			abort();
	} else if (err[0] == '\0') {
		abort();
	}
	if (fd.conns < c->max_connections ||
	    fd.conns - c->max_connections >= threads ||
	    fd.conns % threads != 0 || fd.need != fd.conns + fd.reserve ||
	    fd.need < fd.conns || fd.reserve < 64)
		abort();
	/* The max_connections offered instead fits. */
	if ((p = strstr(err, "lower limits.max_connections to ")) != NULL &&
	    fd.hard < fd.need) {
		offered = strtoul(p + 33, NULL, 10);
		if (offered == 0 || offered >= c->max_connections)
			abort();
		smaller = *c;
		smaller.max_connections = (unsigned)offered;
		fdlimit_need(&smaller, &fd2);
		if (fd2.need > fd.hard)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[96];
	char err[512];
	config_t *c;

	if (path[0] == '\0')
		setup_dir(path, sizeof(path));
	if (file_write_atomic(path, data, size, 0600) < 0)
		return 0;
	c = config_load(path, err, sizeof(err));
	if (c != NULL)
		check_fdlimit(c);
	config_free(c);
	return 0;
}
