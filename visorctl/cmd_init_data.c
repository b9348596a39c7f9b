/*
 * visorctl init-data: the data directory of a new gateway (outside
 * quickstart): store.key and audit.key, the signed checkpoint of the empty
 * log, and the area's audit verifier key for auditors.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "gateway/store.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "visorctl/commands.h"

static const char init_data_usage[] =
    "usage: visorctl init-data DATA_DIR --area AREA --vkey FILE\n"
    "\n"
    "Create a new gateway's data directory (mode 0700) with its data key\n"
    "store.key, its audit signing key audit.key (both mode 0600) and the\n"
    "signed checkpoint of the empty log (checkpoint.last), and write the\n"
    "area's audit verifier key line to FILE (give it to the auditors:\n"
    "visorctl audit --vkey).  Refuses to overwrite existing keys or a\n"
    "checkpoint, and an existing folder that group or others may write.  A\n"
    "run that fails part way (FILE cannot be written) removes what it made,\n"
    "so that it can simply be run again.\n"
    "Run it as the user the gateway runs as.\n";

int
cmd_init_data(int argc, char **argv)
{
	const char *dir = NULL, *area = NULL, *vkey_path = NULL;
	buf_t vkey = BUF_INIT;
	char err[512];
	struct stat sb;
	int i, rc = 1, had_dir, made = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(init_data_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--area") == 0 && i + 1 < argc) {
			area = argv[++i];
		} else if (strcmp(argv[i], "--vkey") == 0 && i + 1 < argc) {
			vkey_path = argv[++i];
		} else if (argv[i][0] != '-' && dir == NULL) {
			dir = argv[i];
		} else {
			fputs(init_data_usage, stderr);
			return 2;
		}
	}
	if (dir == NULL || area == NULL || vkey_path == NULL) {
		fputs(init_data_usage, stderr);
		return 2;
	}
	if (!identity_valid_label(area, strlen(area))) {
		fprintf(stderr, "visorctl init-data: --area must match "
		    "[a-z0-9-]{1,32}\n");
		return 2;
	}
	had_dir = lstat(dir, &sb) == 0;
	if (store_init_keys(dir, area, &vkey, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl init-data: %s\n", err);
		goto out;
	}
	made = 1;
	if (vkey.len == 0 || buf_puts(&vkey, "\n") < 0) {
		fprintf(stderr, "visorctl init-data: cannot format the verifier "
		    "key\n");
		goto out;
	}
	if (file_write_atomic(vkey_path, vkey.data, vkey.len, 0644) < 0) {
		fprintf(stderr, "visorctl init-data: %s: %s\n", vkey_path,
		    strerror(errno));
		goto out;
	}
	printf("data directory %s ready for area %s (store.key, audit.key, "
	    "checkpoint.last); audit verifier key in %s\n", dir, area, vkey_path);
	rc = 0;
out:
	/* Keys whose verifier key the auditors never got are of no use, and
	 * left there they would make the next run refuse: what this run made
	 * goes again (store_init_keys cleans up its own failures). */
	if (rc != 0 && made) {
		err[0] = '\0';
		if (store_init_keys_undo(dir, err, sizeof(err)) < 0 ||
		    (!had_dir && rmdir(dir) < 0))
			fprintf(stderr, "visorctl init-data: could not remove what "
			    "this run made in %s (%s): remove store.key, audit.key "
			    "and checkpoint.last before running it again\n", dir,
			    err[0] != '\0' ? err : strerror(errno));
		else
			fprintf(stderr, "visorctl init-data: nothing was kept in "
			    "%s; run it again once the problem is fixed\n", dir);
	}
	buf_free(&vkey);
	return rc;
}
