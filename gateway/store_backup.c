/*
 * store_backup: the consistent online copy of a data directory (store.h,
 * store_backup).  Part of the store module: the SQLite online backup API
 * copies store.db from one read snapshot while the writer goes on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gateway/store.h"
#include "gateway/store_int.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"

#define BACKUP_PATH_MAX 4096
#define BACKUP_FILE_MAX (1 << 20)	/* keys and checkpoint notes */
#define BACKUP_BUSY_TRIES 200

static void
berr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Copy a small file (a key or a checkpoint) with mode 0600.  missing_ok:
 * 1 and *copied = 0 if the source does not exist.  The source must be a
 * regular file of mode 0600 with one name, owned by owner (the data
 * directory's), never a symbolic link nor a hard link: the data directory
 * (and a backup, given to the same account) belongs to the gateway's
 * account, and run as root this would otherwise read whatever a link there
 * names, or a file of root's left there, and hand the copy to that
 * account. */
static int
copy_small(const char *from_dir, const char *to_dir, const char *name,
    uid_t owner, int missing_ok, int *copied, char *err, size_t errlen)
{
	char src[BACKUP_PATH_MAX], dst[BACKUP_PATH_MAX];
	char *data = NULL;
	size_t len = 0;
	int ret = -1;

	if (copied != NULL)
		*copied = 0;
	if (file_join(src, sizeof(src), from_dir, name) < 0 ||
	    file_join(dst, sizeof(dst), to_dir, name) < 0) {
		berr(err, errlen, "%s: path too long", name);
		return -1;
	}
	if (file_read_private_owned(src, owner, BACKUP_FILE_MAX, &data,
	    &len) < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		if (errno == EACCES) {
			berr(err, errlen, "%s: not owned by the owner of its "
			    "folder (uid %lu)", src, (unsigned long)owner);
			return -1;
		}
		berr(err, errlen, "%s: %s", src, file_refusal(errno,
		    FILE_REFUSAL_IN_FOLDER));
		return -1;
	}
	if (file_write_atomic(dst, data, len, 0600) < 0) {
		berr(err, errlen, "%s: %s", dst, strerror(errno));
		goto out;
	}
	if (copied != NULL)
		*copied = 1;
	ret = 0;
out:
	/* Keys are secrets: wipe the copy in memory. */
	OPENSSL_cleanse(data, len);
	free(data);
	return ret;
}

/* The rule for every file of the database the backup reads (store.db,
 * its -wal and -shm), given its stat: a regular file (a FIFO in its place
 * would hold the open for ever, a device is no database), with one name,
 * owned by owner (the data directory's).  Run as root, the backup reads
 * what the gateway's account could not, then gives the copy to that
 * account (give_to_owner_of): a hard link to another database (root's)
 * planted there would hand it over, as for the keys (copy_small).  0, or
 * -1 with err. */
static int
source_file_ok(const char *path, const struct stat *sb, uid_t owner,
    char *err, size_t errlen)
{
	if (!S_ISREG(sb->st_mode)) {
		berr(err, errlen, "%s: %s", path, S_ISLNK(sb->st_mode) ?
		    file_refusal(ELOOP, FILE_REFUSAL_IN_FOLDER) :
		    "not a regular file (a FIFO or a device is no database)");
		return -1;
	}
	if (sb->st_nlink != 1) {
		berr(err, errlen, "%s: %s", path, file_refusal(EMLINK,
		    FILE_REFUSAL_IN_FOLDER));
		return -1;
	}
	if (sb->st_uid != owner) {
		berr(err, errlen, "%s: owned by uid %lu, not by the owner of "
		    "its folder (uid %lu)", path, (unsigned long)sb->st_uid,
		    (unsigned long)owner);
		return -1;
	}
	return 0;
}

/* The source database on a descriptor of its own, held while SQLite opens
 * it, held to source_file_ok.  The descriptor, or -1 with err; *sb is its
 * stat. */
static int
open_source_db(const char *path, uid_t owner, struct stat *sb, char *err,
    size_t errlen)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		berr(err, errlen, "%s: %s", path, errno == ELOOP ?
		    file_refusal(ELOOP, FILE_REFUSAL_IN_FOLDER) :
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, sb) < 0)
		berr(err, errlen, "%s: %s", path, strerror(errno));
	else if (source_file_ok(path, sb, owner, err, errlen) == 0)
		return fd;
	close(fd);
	return -1;
}

/* store.db-wal and store.db-shm, which SQLite opens beside the database
 * by name and reads (the WAL's pages stand in for the database's): absent,
 * or held to source_file_ok.  Checked before SQLite opens them (a clear
 * refusal), and again on the files it has open once the copy is made
 * (sidecars_opened), since whoever owns the folder could swap them in
 * between. */
static const char *const sidecar_suffix[] = { "-wal", "-shm" };

static int
sidecars_before(const char *db_path, uid_t owner, char *err, size_t errlen)
{
	char path[BACKUP_PATH_MAX];
	struct stat sb;
	size_t i;
	int n;

	for (i = 0; i < 2; i++) {
		n = snprintf(path, sizeof(path), "%s%s", db_path,
		    sidecar_suffix[i]);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			berr(err, errlen, "%s: path too long", db_path);
			return -1;
		}
		if (lstat(path, &sb) < 0) {
			if (errno == ENOENT)
				continue;
			berr(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (source_file_ok(path, &sb, owner, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* The -wal and -shm this process has open (SQLite's, for db_path), by the
 * names they were opened by, each held to source_file_ok.  0, or -1 with err
 * (also if /proc/self/fd cannot be read). */
static int
sidecars_opened(const char *db_path, uid_t owner, char *err, size_t errlen)
{
	char fdpath[64], target[BACKUP_PATH_MAX], want[2][BACKUP_PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	ssize_t n;
	size_t i;
	int ret = 0;

	for (i = 0; i < 2; i++)
		snprintf(want[i], sizeof(want[i]), "%s%s", db_path,
		    sidecar_suffix[i]);
	if ((d = opendir("/proc/self/fd")) == NULL) {
		berr(err, errlen, "%s: cannot check which files were opened "
		    "(no /proc/self/fd)", db_path);
		return -1;
	}
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%s", de->d_name);
		if ((n = readlink(fdpath, target, sizeof(target) - 1)) < 0)
			continue;
		target[n] = '\0';
		for (i = 0; i < 2; i++) {
			if (strcmp(target, want[i]) != 0)
				continue;
			if (stat(fdpath, &sb) < 0) {
				berr(err, errlen, "%s: %s", want[i],
				    strerror(errno));
				ret = -1;
			} else {
				ret = source_file_ok(want[i], &sb, owner,
				    err, errlen);
			}
		}
	}
	closedir(d);
	return ret;
}

/* 1 if a descriptor of this process other than except is open on the
 * file of sb, 0 if none is, -1 if /proc/self/fd cannot be read. */
static int
open_elsewhere(const struct stat *sb, int except)
{
	struct dirent *de;
	struct stat fsb;
	DIR *d;
	char *end;
	long fd;
	int found = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		errno = 0;
		fd = strtol(de->d_name, &end, 10);
		if (errno != 0 || end == de->d_name || *end != '\0' ||
		    fd < 0 || fd > INT_MAX || fd == except || fd == dirfd(d))
			continue;
		if (fstat((int)fd, &fsb) == 0 && fsb.st_dev == sb->st_dev &&
		    fsb.st_ino == sb->st_ino)
			found = 1;
	}
	closedir(d);
	return found;
}

/* The database through the online backup API, from one read snapshot. */
static int count_leaves(sqlite3 *db, uint64_t *n, char *err, size_t errlen);

static int
copy_db(const char *src_path, uid_t owner, const char *dst_path,
    uint64_t *leaves, char *err, size_t errlen)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	struct stat sb;
	int fd, rc, tries = 0, ret = -1, drop = 0;

	if ((fd = open_source_db(src_path, owner, &sb, err, errlen)) < 0)
		return -1;
	if (sidecars_before(src_path, owner, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	/* Neither database through a symbolic link (copy_small). */
	src = store_int_connect(src_path, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOFOLLOW, NULL, err, errlen);
	/* SQLite opens store.db by its name, which whoever owns the folder
	 * could have pointed elsewhere since it was checked: the file it
	 * opened (opened at once, before any read) must be the one
	 * checked. */
	if (src != NULL && (rc = open_elsewhere(&sb, fd)) != 1) {
		berr(err, errlen, "%s: %s", src_path, rc < 0 ? "cannot check "
		    "which file was opened (no /proc/self/fd)" : "replaced "
		    "while it was being opened; refusing it");
		sqlite3_close(src);
		src = NULL;
	}
	close(fd);
	if (src == NULL)
		return -1;
	/* Made here, 0600 from the start: SQLite would create it with the
	 * umask's mode, and whoever opened it before the chmod below could
	 * read the whole copy through that descriptor.  Exclusive: a file
	 * that appeared since store_backup looked (a gateway started on
	 * out_dir) is not written over. */
	if ((fd = open(dst_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		berr(err, errlen, "%s: %s", dst_path, errno == EEXIST ?
		    "exists already; refusing to overwrite it" : strerror(errno));
		goto out;
	}
	close(fd);
	if ((dst = store_int_connect(dst_path, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL, err,
	    errlen)) == NULL)
		goto out;
	if (chmod(dst_path, 0600) < 0) {
		berr(err, errlen, "%s: %s", dst_path, strerror(errno));
		goto out;
	}
	if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		berr(err, errlen, "backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	/* -1: every page in one step, so the copy is one snapshot.  Busy
	 * means a checkpoint of the source WAL holds a lock for a moment. */
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
	    rc == SQLITE_LOCKED) {
		if (++tries > BACKUP_BUSY_TRIES)
			break;
		sqlite3_sleep(25);
	}
	if (rc != SQLITE_DONE) {
		berr(err, errlen, "backup of %s: %s", src_path, sqlite3_errstr(rc));
		sqlite3_backup_finish(b);
		goto out;
	}
	if ((rc = sqlite3_backup_finish(b)) != SQLITE_OK) {
		berr(err, errlen, "backup of %s: %s", src_path, sqlite3_errstr(rc));
		goto out;
	}
	/* Refused, the copy goes: it may hold another file's pages. */
	if (sidecars_opened(src_path, owner, err, errlen) < 0) {
		drop = 1;
		goto out;
	}
	/* One self-contained file (no -wal or -shm beside it): a backup is
	 * moved around whole.  The gateway turns WAL on again when it opens. */
	if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		berr(err, errlen, "%s: %s", dst_path, sqlite3_errmsg(dst));
		goto out;
	}
	if (count_leaves(dst, leaves, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	if (drop)
		(void)unlink(dst_path);
	return ret;
}

/* Leaves in the copied log. */
static int
count_leaves(sqlite3 *db, uint64_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM audit_leaves", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		berr(err, errlen, "store.db copy: %s", sqlite3_errmsg(db));
		goto out;
	}
	*n = (uint64_t)sqlite3_column_int64(st, 0);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/* The origin and size lines of a checkpoint note (no signature check: the
 * restore step and store_open verify it). */
static void
checkpoint_head(const char *dir, char *origin, size_t olen, uint64_t *size)
{
	char path[BACKUP_PATH_MAX], *text = NULL, *nl, *end;
	size_t len;
	unsigned long long v;

	origin[0] = '\0';
	*size = 0;
	if (file_join(path, sizeof(path), dir, "checkpoint.last") < 0 ||
	    file_read_all(path, BACKUP_FILE_MAX, &text, &len) < 0)
		return;
	if ((nl = strchr(text, '\n')) != NULL && (size_t)(nl - text) < olen) {
		memcpy(origin, text, (size_t)(nl - text));
		origin[nl - text] = '\0';
		errno = 0;
		v = strtoull(nl + 1, &end, 10);
		if (errno == 0 && end != nl + 1 && *end == '\n')
			*size = v;
	}
	free(text);
}

/* Run as root (the usual case for an operator), the copy gets the owner of
 * the folder it was copied from, as cp -a would: a gateway that dropped to
 * an unprivileged account (gateway/privdrop.h) owns its data directory and
 * must own a restored one too. */
static int
give_to_owner_of(const char *from_dir, const char *out_dir, int have_cp,
    char *err, size_t errlen)
{
	static const char *const names[] = { "", "store.db", "store.key",
	    "audit.key", STORE_BACKUP_MARK, "checkpoint.last" };
	char path[BACKUP_PATH_MAX];
	struct stat sb;
	size_t i, n = sizeof(names) / sizeof(names[0]) - (have_cp ? 0 : 1);

	if (geteuid() != 0)
		return 0;
	if (stat(from_dir, &sb) < 0) {
		berr(err, errlen, "%s: %s", from_dir, strerror(errno));
		return -1;
	}
	/* The files by lchown: one swapped for a link since it was written
	 * gives away the link, not what it names. */
	for (i = 0; i < n; i++) {
		if (file_join(path, sizeof(path), out_dir, names[i]) < 0 ||
		    (i == 0 ? chown(path, sb.st_uid, sb.st_gid) :
		    lchown(path, sb.st_uid, sb.st_gid)) < 0) {
			berr(err, errlen, "chown %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
store_backup(const char *data_dir, const char *out_dir, char *err,
    size_t errlen)
{
	char src_db[BACKUP_PATH_MAX], dst_db[BACKUP_PATH_MAX];
	char mark[BACKUP_PATH_MAX], origin[80], now[25];
	uint64_t leaves = 0, cp_size = 0;
	struct stat sb;
	buf_t info = BUF_INIT;
	char *src_real = NULL, *out_real = NULL;
	int have_cp = 0, ret = -1;

	if (data_dir == NULL || out_dir == NULL ||
	    file_join(src_db, sizeof(src_db), data_dir, "store.db") < 0 ||
	    file_join(dst_db, sizeof(dst_db), out_dir, "store.db") < 0 ||
	    file_join(mark, sizeof(mark), out_dir, STORE_BACKUP_MARK) < 0) {
		berr(err, errlen, "backup: bad or too long directory names");
		return -1;
	}
	if (stat(src_db, &sb) < 0) {
		berr(err, errlen, "%s: %s (not a gateway data directory?)", src_db,
		    strerror(errno));
		return -1;
	}
	if (stat(dst_db, &sb) == 0) {
		berr(err, errlen, "%s exists already; refusing to overwrite it",
		    dst_db);
		return -1;
	}
	if (file_mkdirs(out_dir, 0700) < 0) {
		berr(err, errlen, "%s: %s", out_dir, strerror(errno));
		return -1;
	}
	/* SQLITE_OPEN_NOFOLLOW (copy_db) refuses a link anywhere in the
	 * path, not only the file.  The folders are the operator's (a data
	 * directory under a /var/lib that links to another disk), so the
	 * databases are named through their real paths: only store.db,
	 * which whoever owns the folder could swap, is not followed. */
	if ((src_real = realpath(data_dir, NULL)) == NULL ||
	    (out_real = realpath(out_dir, NULL)) == NULL) {
		berr(err, errlen, "%s: %s", src_real == NULL ? data_dir : out_dir,
		    strerror(errno));
		goto out;
	}
	if (stat(src_real, &sb) < 0) {
		berr(err, errlen, "%s: %s", data_dir, strerror(errno));
		goto out;
	}
	if (file_join(src_db, sizeof(src_db), src_real, "store.db") < 0 ||
	    file_join(dst_db, sizeof(dst_db), out_real, "store.db") < 0) {
		berr(err, errlen, "backup: bad or too long directory names");
		goto out;
	}
	/* The mark goes first, so that no partial copy (keys and database
	 * but a failure before the end) is ever a startable data directory. */
	if (file_write_atomic(mark, "visor-gw backup\nincomplete\n", 27,
	    0600) < 0) {
		berr(err, errlen, "%s: %s", mark, strerror(errno));
		goto out;
	}
	/* checkpoint.last before the database: the database only grows and
	 * holds every leaf a checkpoint covers before the checkpoint is
	 * signed, so the copy is never behind its own checkpoint.last. */
	/* The new store.db's directory entry is made durable by the keys'
	 * atomic writes after it (file_write_atomic syncs out_dir), before
	 * the mark says the copy is complete. */
	if (copy_small(data_dir, out_dir, "checkpoint.last", sb.st_uid, 1,
	    &have_cp, err, errlen) < 0 ||
	    copy_db(src_db, sb.st_uid, dst_db, &leaves, err, errlen) < 0 ||
	    copy_small(data_dir, out_dir, "store.key", sb.st_uid, 0, NULL, err,
	    errlen) < 0 ||
	    copy_small(data_dir, out_dir, "audit.key", sb.st_uid, 0, NULL, err,
	    errlen) < 0)
		goto out;
	if (have_cp)
		checkpoint_head(out_dir, origin, sizeof(origin), &cp_size);
	else
		origin[0] = '\0';
	log_time_rfc3339(now);
	if (buf_printf(&info, "visor-gw backup\ncreated=%s\nsource=%s\n"
	    "origin=%s\naudit_size=%" PRIu64 "\ncheckpoint_size=%" PRIu64 "\n",
	    now, data_dir, origin[0] ? origin : "-", leaves, cp_size) < 0 ||
	    file_write_atomic(mark, info.data, info.len, 0600) < 0) {
		berr(err, errlen, "%s: %s", mark, strerror(errno));
		goto out;
	}
	if (give_to_owner_of(data_dir, out_dir, have_cp, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	free(src_real);
	free(out_real);
	buf_free(&info);
	return ret;
}
