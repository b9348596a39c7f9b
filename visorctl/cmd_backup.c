/*
 * visorctl backup: a consistent online copy of a gateway's data directory
 * (store.h, store_backup), safe while the gateway runs.
 */
#include <stdio.h>
#include <string.h>

#include "gateway/store.h"
#include "visorctl/commands.h"

static const char backup_usage[] =
    "usage: visorctl backup DATA_DIR OUT_DIR\n"
    "\n"
    "Copy a gateway's data directory while it runs: checkpoint.last, then\n"
    "store.db through SQLite's online backup API (one consistent snapshot),\n"
    "then store.key and audit.key, all mode 0600.  OUT_DIR is created (0700)\n"
    "and must not hold a backup already.  The copy holds the keys: keep it\n"
    "as safe as the gateway itself.  Restore it with 'visorctl restore'\n"
    "(a gateway refuses to start on a raw copy: see docs/OPERATIONS.md).\n";

int
cmd_backup(int argc, char **argv)
{
	char err[1024];
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(backup_usage, stdout);
			return 0;
		}
	if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
		fputs(backup_usage, stderr);
		return 2;
	}
	if (store_backup(argv[1], argv[2], err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl backup: %s\n", err);
		return 1;
	}
	printf("backup of %s written to %s (store.db, store.key, audit.key, "
	    "checkpoint.last, %s)\n", argv[1], argv[2], STORE_BACKUP_MARK);
	return 0;
}
