/*
 * visorctl restore: put a backup (visorctl backup) back as a gateway's data
 * directory without letting the gateway fork its audit log.
 *
 * A backup is older than the live log.  If the live gateway published a
 * checkpoint beyond the backup, a gateway started on the backup would sign
 * a different tree of the same sizes: two signed, inconsistent views of one
 * log.  So the copy carries a mark (store.h, STORE_BACKUP_MARK) that makes
 * the gateway refuse to start, and this command removes it only once the
 * copy is shown to extend the newest checkpoint the operator can find
 * (--checkpoint), or the operator states that none newer exists
 * (--no-published-checkpoint).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypto/identity.h"
#include "crypto/keyfile.h"
#include "crypto/note.h"
#include "gateway/store.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "visorctl/commands.h"

static const char restore_usage[] =
    "usage: visorctl restore BACKUP_DIR DATA_DIR --checkpoint FILE\n"
    "       visorctl restore BACKUP_DIR DATA_DIR --no-published-checkpoint\n"
    "\n"
    "Copy a backup made by 'visorctl backup' into DATA_DIR (which must not\n"
    "hold a store.db) and make it startable.  FILE is the newest audit\n"
    "checkpoint this gateway published (from an auditor, a witness copy or\n"
    "the old checkpoint.last): it must verify with the backup's audit key,\n"
    "and the backup's log must extend it, else the gateway would sign a fork\n"
    "and the restore is refused.  --no-published-checkpoint skips that check:\n"
    "use it only when no checkpoint newer than the backup can exist.\n"
    "Run as root, BACKUP_DIR, its files and the folders above it (and\n"
    "DATA_DIR, if there) must be root's and writable by no one else: make\n"
    "the backup root's first (chown -R root:root BACKUP_DIR), and give the\n"
    "restored DATA_DIR to the gateway's account afterwards.\n"
    "Exit status: 0 restored, 1 refused, 2 bad usage.\n";

/*
 * Run as root, restore reads the backup's keys and database, copies them
 * and checks the copy before it removes the mark.  A user other than root
 * who may change the backup folder, a file in it, or a folder above it
 * (rename it away and put another in its place) could swap files while
 * that runs: have root read for them what they cannot (a hard link to a
 * file of root's), and make root give them the restored data directory
 * (it gets the backup folder's owner).  The gateway refuses a data_dir
 * others may write for the same reason (file_check_private_dir).  So every
 * folder on the path must be root's and writable by no one else (a
 * sticky folder above, such as /tmp, may be: no one else can rename what
 * root made there), and every entry of the folder itself root's regular
 * file, writable by no one else.  DATA_DIR holds the copy while it is
 * checked: the same, or for one still to be made, the folders it goes in.
 * Checked before anything is read; nothing but root can change them
 * afterwards.
 *
 * root_only_dir: one folder of the path, root's and writable by no one
 * else (unless sticky and not the last).  0, or -1 reported.
 */
static int
root_only_dir(const char *what, const char *real, const char *dir, int last)
{
	struct stat sb;

	if (lstat(dir, &sb) < 0) {
		fprintf(stderr, "visorctl restore: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != 0 ||
	    ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	    (last || (sb.st_mode & S_ISVTX) == 0))) {
		fprintf(stderr, "visorctl restore: run as root, refusing %s %s: "
		    "%s (uid %lu, mode %04o) is not a folder of root's that only "
		    "root may write, so another user could swap its files while "
		    "they are restored.  ", what, real, dir,
		    (unsigned long)sb.st_uid, (unsigned)(sb.st_mode & 07777));
		if (last)
			fprintf(stderr, "Check it, make it root's (chown -R "
			    "root:root %s; chmod -R go-w %s) and run again; give "
			    "the restored data directory to the gateway's account "
			    "afterwards\n", dir, dir);
		else
			fprintf(stderr, "Move %s under a folder only root may "
			    "write, and run again\n", real);
		return -1;
	}
	return 0;
}

/* The rule above for real (an absolute path without links): with
 * itself set, real is the folder itself (not writable by others even if
 * sticky) and its entries are checked too; without, real is a folder the
 * copy is to be made in.  0, or -1 with the problem on stderr. */
static int
root_only_path(const char *what, const char *real, int itself)
{
	char prefix[4096], entry[4096 + 256];
	struct dirent *de;
	struct stat sb;
	size_t i, n = strlen(real);
	DIR *d;
	int ret = -1;

	if (n == 0 || n >= sizeof(prefix) || real[0] != '/') {
		fprintf(stderr, "visorctl restore: %s: not an absolute path\n",
		    real);
		return -1;
	}
	/* "/", then each longer prefix (real is a realpath: no "//"). */
	if (n > 1 && root_only_dir(what, real, "/", 0) < 0)
		return -1;
	for (i = 1; i <= n; i++) {
		if (i < n && real[i] != '/')
			continue;
		memcpy(prefix, real, i);
		prefix[i] = '\0';
		if (root_only_dir(what, real, prefix, itself && i == n) < 0)
			return -1;
	}
	if (!itself)
		return 0;
	if ((d = opendir(real)) == NULL) {
		fprintf(stderr, "visorctl restore: %s: %s\n", real,
		    strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(entry, sizeof(entry), "%s/%s", real, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			fprintf(stderr, "visorctl restore: %s: %s\n", entry,
			    strerror(errno));
			goto out;
		}
		if (!S_ISREG(sb.st_mode) || sb.st_uid != 0 ||
		    (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
			fprintf(stderr, "visorctl restore: run as root, refusing %s "
			    "%s: %s (uid %lu, mode %04o) is not a regular file of "
			    "root's that only root may write, so another user could "
			    "have it read or swapped as root.  Check it, make the "
			    "folder root's (chown -R root:root %s; chmod -R go-w "
			    "%s) and run again\n", what, real, entry,
			    (unsigned long)sb.st_uid,
			    (unsigned)(sb.st_mode & 07777), real, real);
			goto out;
		}
	}
	if (errno != 0) {
		fprintf(stderr, "visorctl restore: %s: %s\n", real,
		    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	closedir(d);
	return ret;
}

/* Run as root: root_only_path for the backup folder.  *backup becomes its
 * real path (in backup_real, 4096 bytes), read from then on.  0, or -1
 * reported. */
static int
root_only_backup(const char **backup, char *backup_real)
{
	char *real;

	if ((real = realpath(*backup, NULL)) == NULL) {
		fprintf(stderr, "visorctl restore: %s: %s\n", *backup,
		    strerror(errno));
		return -1;
	}
	if (strlen(real) >= 4096) {
		free(real);
		fprintf(stderr, "visorctl restore: %s: path too long\n", *backup);
		return -1;
	}
	memcpy(backup_real, real, strlen(real) + 1);
	free(real);
	if (root_only_path("the backup", backup_real, 1) < 0)
		return -1;
	*backup = backup_real;
	return 0;
}

/* Run as root: root_only_path for DATA_DIR, or while it does not exist the
 * nearest folder above it that does.  0, or -1 reported. */
static int
root_only_data(const char *data)
{
	char up[4096], data_real[4096], *real, *slash;
	struct stat sb;
	int itself = 1;

	if (strlen(data) >= sizeof(up)) {
		fprintf(stderr, "visorctl restore: %s: path too long\n", data);
		return -1;
	}
	memcpy(up, data, strlen(data) + 1);
	while (lstat(up, &sb) < 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "visorctl restore: %s: %s\n", up,
			    strerror(errno));
			return -1;
		}
		itself = 0;
		if ((slash = strrchr(up, '/')) == NULL)
			memcpy(up, ".", 2);
		else if (slash == up)
			up[1] = '\0';
		else
			*slash = '\0';
	}
	if ((real = realpath(up, NULL)) == NULL || strlen(real) >= 4096) {
		fprintf(stderr, "visorctl restore: %s: %s\n", up, real == NULL ?
		    strerror(errno) : "path too long");
		free(real);
		return -1;
	}
	memcpy(data_real, real, strlen(real) + 1);
	free(real);
	return root_only_path("the data directory", data_real, itself);
}

/* "visor.<area>/audit" -> area.  0 or -1. */
static int
area_of_origin(const char *origin, size_t len, char *area, size_t arealen)
{
	const char *pre = "visor.", *suf = "/audit";
	size_t a;

	if (len <= strlen(pre) + strlen(suf) ||
	    memcmp(origin, pre, strlen(pre)) != 0 ||
	    memcmp(origin + len - strlen(suf), suf, strlen(suf)) != 0)
		return -1;
	a = len - strlen(pre) - strlen(suf);
	if (a >= arealen || !identity_valid_label(origin + strlen(pre), a))
		return -1;
	memcpy(area, origin + strlen(pre), a);
	area[a] = '\0';
	return 0;
}

/* The area named by the first line (origin) of a checkpoint note. */
static int
note_area(const char *note, size_t len, char *area, size_t arealen)
{
	const char *nl = memchr(note, '\n', len);

	return nl == NULL ? -1 :
	    area_of_origin(note, (size_t)(nl - note), area, arealen);
}

/* Verify note with the audit key in data_dir; its size into *size. */
static int
verify_note(const char *data_dir, const char *note, size_t len,
    const char *area, uint64_t *size, char *err, size_t errlen)
{
	char path[4096], origin[64], why[256];
	note_signer_t *signer = NULL;
	note_verifier_t *v = NULL;
	merkle_hash_t root;
	buf_t vkey = BUF_INIT;
	size_t body_len;
	EVP_PKEY *k;
	int ret = -1;

	snprintf(origin, sizeof(origin), "visor.%s/audit", area);
	if (file_join(path, sizeof(path), data_dir, "audit.key") < 0 ||
	    (k = keyfile_load_private(path, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "audit.key: cannot load from the backup");
		return -1;
	}
	signer = note_signer_new(origin, k);
	EVP_PKEY_free(k);
	if (signer == NULL || note_signer_vkey(signer, &vkey) < 0 ||
	    (v = note_verifier_parse(vkey.data, vkey.len, why,
	    sizeof(why))) == NULL) {
		snprintf(err, errlen, "audit.key: cannot derive the verifier key");
		goto out;
	}
	if (note_open(v, note, len, &body_len, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "the checkpoint is not signed by this "
		    "backup's audit key (%s): it belongs to another gateway or "
		    "was altered", why);
		goto out;
	}
	if (checkpoint_parse(note, body_len, origin, size, root, why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "not a checkpoint of %s: %s", origin, why);
		goto out;
	}
	ret = 0;
out:
	note_verifier_free(v);
	note_signer_free(signer);
	buf_free(&vkey);
	return ret;
}

static int
remove_mark(const char *data_dir)
{
	char mark[4096];

	if (file_join(mark, sizeof(mark), data_dir, STORE_BACKUP_MARK) < 0 ||
	    (unlink(mark) < 0 && errno != ENOENT)) {
		fprintf(stderr, "visorctl restore: %s: %s\n", mark, strerror(errno));
		return -1;
	}
	return 0;
}

int
cmd_restore(int argc, char **argv)
{
	const char *backup = NULL, *data = NULL, *cpfile = NULL;
	char path[4096], area[IDENTITY_PART_MAX], err[1024];
	char backup_real[4096];
	char *note = NULL, *own = NULL;
	size_t note_len = 0, own_len = 0;
	uint64_t pub_size = 0, own_size = 0, log_size = 0, cp_size = 0;
	int none = 0, copied = 0, i, rc = 1;
	struct stat sb;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(restore_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--checkpoint") == 0 && i + 1 < argc) {
			cpfile = argv[++i];
		} else if (strcmp(argv[i], "--no-published-checkpoint") == 0) {
			none = 1;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "visorctl restore: unknown option '%s'\n",
			    argv[i]);
			return 2;
		} else if (backup == NULL) {
			backup = argv[i];
		} else if (data == NULL) {
			data = argv[i];
		} else {
			fputs(restore_usage, stderr);
			return 2;
		}
	}
	if (backup == NULL || data == NULL || (cpfile == NULL) == !none) {
		fputs(restore_usage, stderr);
		return 2;
	}
	if (geteuid() == 0 && root_only_backup(&backup, backup_real) < 0)
		return 1;
	if (file_join(path, sizeof(path), backup, STORE_BACKUP_MARK) < 0 ||
	    stat(path, &sb) < 0) {
		fprintf(stderr, "visorctl restore: %s: not a backup made by "
		    "visorctl backup (no %s)\n", backup, STORE_BACKUP_MARK);
		return 1;
	}
	if (cpfile != NULL &&
	    file_read_all(cpfile, NOTE_MAX_SIZE, &note, &note_len) < 0) {
		fprintf(stderr, "visorctl restore: %s: %s\n", cpfile,
		    strerror(errno));
		return 1;
	}
	/* A store.db in DATA_DIR: store_backup refuses to write over it, and
	 * the operator needs to know whether it is a live data directory or
	 * what a refused restore left. */
	if (file_join(path, sizeof(path), data, "store.db") == 0 &&
	    lstat(path, &sb) == 0) {
		if (file_join(path, sizeof(path), data, STORE_BACKUP_MARK) == 0 &&
		    lstat(path, &sb) == 0)
			fprintf(stderr, "visorctl restore: %s holds the copy of an "
			    "earlier restore that was refused or did not finish "
			    "(%s is still there): remove it (rm -r %s) and run the "
			    "restore again\n", data, STORE_BACKUP_MARK, data);
		else
			fprintf(stderr, "visorctl restore: %s holds a data "
			    "directory already (store.db); stop its gateway and "
			    "move it aside first (mv %s %s.damaged), see "
			    "docs/OPERATIONS.md, Restore, step by step\n", data,
			    data, data);
		goto out;
	}
	if (geteuid() == 0 && root_only_data(data) < 0)
		return 1;
	/* The copy keeps the mark until the checks below pass, so a gateway
	 * started on it meanwhile refuses. */
	if (store_backup(backup, data, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl restore: %s\n", err);
		goto refused;
	}
	copied = 1;
	/* The area: from the checkpoint given, else the backup's own. */
	if (file_join(path, sizeof(path), data, "checkpoint.last") < 0)
		goto out;
	if (file_read_all(path, NOTE_MAX_SIZE, &own, &own_len) < 0)
		own = NULL;
	if ((note != NULL && note_area(note, note_len, area, sizeof(area)) < 0) ||
	    (note == NULL && own != NULL &&
	    note_area(own, own_len, area, sizeof(area)) < 0)) {
		fprintf(stderr, "visorctl restore: cannot tell the area from the "
		    "checkpoint's origin line\n");
		goto out;
	}
	if (note == NULL && own == NULL) {
		/* An empty log: nothing was ever signed, nothing can fork. */
		if (remove_mark(data) < 0)
			goto out;
		printf("restored %s into %s (empty audit log)\n", backup, data);
		rc = 0;
		goto out;
	}
	if (own != NULL && verify_note(data, own, own_len, area, &own_size,
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl restore: the backup's checkpoint.last: "
		    "%s\n", err);
		goto out;
	}
	if (note != NULL) {
		if (verify_note(data, note, note_len, area, &pub_size, err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "visorctl restore: %s: %s\n", cpfile, err);
			goto out;
		}
		if (own != NULL && pub_size < own_size) {
			fprintf(stderr, "visorctl restore: %s covers %llu entries, "
			    "fewer than the backup's own checkpoint (%llu): it "
			    "cannot be the newest published checkpoint\n", cpfile,
			    (unsigned long long)pub_size,
			    (unsigned long long)own_size);
			goto out;
		}
		/* The store's start-up check then proves the backup extends
		 * it, exactly as the gateway will. */
		if (file_write_atomic(path, note, note_len, 0600) < 0) {
			fprintf(stderr, "visorctl restore: %s: %s\n", path,
			    strerror(errno));
			goto out;
		}
		/* Run as root: the gateway's account owns the copy (store_backup
		 * gave it the backup's owner), and must own this file too. */
		if (geteuid() == 0 && (stat(data, &sb) < 0 ||
		    lchown(path, sb.st_uid, sb.st_gid) < 0)) {
			fprintf(stderr, "visorctl restore: chown %s: %s\n", path,
			    strerror(errno));
			goto out;
		}
	}
	if (store_check(data, area, &log_size, &cp_size, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl restore: refused: %s\n", err);
		if (note != NULL && pub_size > own_size)
			fprintf(stderr, "visorctl restore: the gateway published a "
			    "checkpoint of %llu entries that this backup does not "
			    "extend; started on it, the gateway would sign a fork "
			    "of its log.  Find a newer copy of store.db (docs/"
			    "OPERATIONS.md, Back up and restore).  %s keeps the "
			    "mark, so a gateway will not start on it.\n",
			    (unsigned long long)pub_size, data);
		goto out;
	}
	if (remove_mark(data) < 0)
		goto out;
	if (note != NULL)
		printf("restored %s into %s: %llu audit entries, consistent with "
		    "the published checkpoint of %llu entries\n", backup, data,
		    (unsigned long long)log_size, (unsigned long long)pub_size);
	else
		printf("restored %s into %s: %llu audit entries.  WARNING: not "
		    "checked against a published checkpoint; if the gateway had "
		    "published one beyond %llu entries, auditors will see a "
		    "fork\n", backup, data, (unsigned long long)log_size,
		    (unsigned long long)cp_size);
	rc = 0;
	goto out;
refused:
	if (!copied && file_join(path, sizeof(path), data, STORE_BACKUP_MARK) ==
	    0 && lstat(path, &sb) == 0)
		copied = 1;	/* store_backup failed part way */
out:
	if (rc != 0 && copied)
		fprintf(stderr, "visorctl restore: %s keeps the refused copy, "
		    "marked (%s) so that no gateway starts on it; remove it "
		    "(rm -r %s) before restoring into it again\n", data,
		    STORE_BACKUP_MARK, data);
	free(note);
	free(own);
	return rc;
}
