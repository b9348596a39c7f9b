/*
 * store_backup and store_check (gateway/store.h): the online copy, the
 * mark that stops a gateway from signing on from a backup, and the start-up
 * check run without starting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gateway/audit_entry.h"
#include "gateway/store.h"
#include "tests/support/storewait.h"
#include "util/buf.h"
#include "util/fileio.h"

#define AREA "norfolk"

static char root[64];

static const char *
path(const char *rel)
{
	static char p[4][256];
	static int i;
	char *out = p[i++ % 4];

	snprintf(out, 256, "%s/%s", root, rel);
	return out;
}

static store_t *
open_store(const char *dir)
{
	store_options_t o;
	char err[512];
	store_t *s;

	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = AREA;
	o.checkpoint_interval_ms = 20;
	s = store_open(&o, err, sizeof(err));
	if (s == NULL)
		fail_msg("store_open %s: %s", dir, err);
	return s;
}

/* Write a record and its audit entry. */
static void
put(store_t *s, const char *id)
{
	const char *json = "{\"id\":\"X\"}";
	store_job_t *j = store_job_new();
	audit_entry_t e;

	memset(&e, 0, sizeof(e));
	e.op = "collect";
	e.request_id = "req";
	e.actor_id = "urn:visor:norfolk:agency:police";
	e.record = id;
	e.version = AUDIT_VERSION_ASSIGNED;
	e.result = "ok";
	assert_non_null(j);
	assert_int_equal(store_job_put_record(j, id, STORE_VERSION_ANY, 1, 1, AREA,
	    json, strlen(json), "urn:visor:norfolk:agency:police", "[]"), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
}

/* Wait until a checkpoint covers size entries. */
static void
wait_signed(store_t *s, uint64_t size)
{
	struct timespec ts = { 0, 10 * 1000000L };
	int i;

	for (i = 0; i < 500 && store_checkpoint_size(s) < size; i++)
		nanosleep(&ts, NULL);
	assert_int_equal(store_checkpoint_size(s), size);
}

static int
mode_of(const char *p)
{
	struct stat sb;

	assert_int_equal(stat(p, &sb), 0);
	return (int)(sb.st_mode & 0777);
}

static void
test_backup_copy_and_mark(void **state)
{
	char err[512], *text = NULL;
	uint64_t size = 0, cps = 0;
	store_reader_t *rd;
	store_record_t rec;
	size_t len;
	store_options_t o;
	store_t *s, *c;
	buf_t vk = BUF_INIT;
	struct stat sb;

	(void)state;
	assert_int_equal(store_init_keys(path("live"), AREA, &vk, err,
	    sizeof(err)), 0);
	buf_free(&vk);
	s = open_store(path("live"));
	put(s, "REC-1");
	put(s, "REC-2");
	wait_signed(s, 2);

	/* Online: the gateway's store stays open during the copy. */
	if (store_backup(path("live"), path("bk"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);
	assert_int_equal(mode_of(path("bk")), 0700);
	assert_int_equal(mode_of(path("bk/store.db")), 0600);
	assert_int_equal(mode_of(path("bk/store.key")), 0600);
	assert_int_equal(mode_of(path("bk/audit.key")), 0600);
	assert_int_equal(mode_of(path("bk/checkpoint.last")), 0600);
	assert_int_equal(stat(path("bk/store.db-wal"), &sb), -1);
	assert_int_equal(file_read_all(path("bk/" STORE_BACKUP_MARK), 4096,
	    &text, &len), 0);
	assert_non_null(strstr(text, "audit_size=2\n"));
	assert_non_null(strstr(text, "checkpoint_size=2\n"));
	assert_non_null(strstr(text, "origin=visor.norfolk/audit\n"));
	free(text);

	/* Not over an existing copy. */
	assert_int_equal(store_backup(path("live"), path("bk"), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "exists already"));

	/* The live log moves on. */
	put(s, "REC-3");
	wait_signed(s, 3);

	/* A marked copy does not open ... */
	memset(&o, 0, sizeof(o));
	o.data_dir = path("bk");
	o.area = AREA;
	assert_null(store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "copy made by visorctl backup"));
	/* ... but passes the start-up check, with its own sizes. */
	assert_int_equal(store_check(path("bk"), AREA, &size, &cps, err,
	    sizeof(err)), 0);
	assert_int_equal(size, 2);
	assert_int_equal(cps, 2);

	/* Beside the live checkpoint.last it is a rollback. */
	if (store_backup(path("bk"), path("bk2"), err, sizeof(err)) < 0)
		fail_msg("store_backup of a backup: %s", err);
	assert_int_equal(file_read_all(path("live/checkpoint.last"), 65536,
	    &text, &len), 0);
	assert_int_equal(file_write_atomic(path("bk2/checkpoint.last"), text,
	    len, 0600), 0);
	free(text);
	assert_int_equal(store_check(path("bk2"), AREA, NULL, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "store.db was rolled back"));
	assert_null(store_open(&(store_options_t){ .data_dir = path("bk2"),
	    .area = AREA }, err, sizeof(err)));
	assert_non_null(strstr(err, "store.db was rolled back"));

	/* Without the mark the copy is a working store: keys and records. */
	assert_int_equal(unlink(path("bk/" STORE_BACKUP_MARK)), 0);
	c = open_store(path("bk"));
	assert_int_equal(store_audit_size(c), 2);
	rd = store_reader_new(c, err, sizeof(err));
	assert_non_null(rd);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(store_record_get(rd, "REC-2", &rec), 0);
	assert_non_null(strstr(rec.json.data, "\"id\""));
	buf_free(&rec.json);
	assert_int_equal(store_record_get(rd, "REC-3", &rec), 1);
	store_reader_free(rd);
	store_close(c);
	store_close(s);
}

static void
test_backup_errors(void **state)
{
	char err[512];
	buf_t vk = BUF_INIT;

	(void)state;
	/* Not a data directory. */
	assert_int_equal(store_backup(path("nothing"), path("out"), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a gateway data directory"));
	assert_int_equal(store_backup(NULL, path("out"), err, sizeof(err)), -1);
	assert_int_equal(store_check(path("nothing"), AREA, NULL, NULL, err,
	    sizeof(err)), -1);
	assert_int_equal(store_check(NULL, AREA, NULL, NULL, err, sizeof(err)),
	    -1);
	/* Keys but no database yet. */
	assert_int_equal(store_init_keys(path("fresh"), AREA, &vk, err,
	    sizeof(err)), 0);
	buf_free(&vk);
	assert_int_equal(store_backup(path("fresh"), path("out"), err,
	    sizeof(err)), -1);
	assert_int_equal(store_check(path("fresh"), AREA, NULL, NULL, err,
	    sizeof(err)), -1);
}

/* A store made in path(rel) with one record written and signed, open. */
static store_t *
store_with_one_record(const char *rel)
{
	char err[512];
	buf_t vk = BUF_INIT;
	store_t *s;

	assert_int_equal(store_init_keys(path(rel), AREA, &vk, err,
	    sizeof(err)), 0);
	buf_free(&vk);
	s = open_store(path(rel));
	put(s, "REC-1");
	wait_signed(s, 1);
	return s;
}

/* A backup of lk into out is refused with why in its message, and
 * whatever it left of store.key there holds nothing of the root-only
 * "secret" planted in the key's place. */
static void
key_backup_refused(const char *out, const char *why)
{
	char err[512], key[256], *text = NULL;
	size_t len;

	assert_int_equal(store_backup(path("lk"), path(out), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, why));
	snprintf(key, sizeof(key), "%s/store.key", out);
	if (file_read_all(path(key), 4096, &text, &len) == 0) {
		assert_null(strstr(text, "ROOT-ONLY"));
		free(text);
	}
}

/* The data directory belongs to the gateway's account, which can put
 * links in it; backup (and restore, through it) often runs as root.  A
 * link named like a key, or a database, is not followed: else a
 * compromised gateway had any file root can read copied into the backup,
 * then given to its account.  Nor a link where the copy goes. */
static void
test_backup_refuses_links(void **state)
{
	char err[512];
	store_t *s;

	(void)state;
	s = store_with_one_record("lk");
	assert_int_equal(file_write_atomic(path("secret"), "ROOT-ONLY\n", 10,
	    0600), 0);

	/* store.key swapped for a link to another file. */
	assert_int_equal(rename(path("lk/store.key"), path("lk/store.key.real")),
	    0);
	assert_int_equal(symlink(path("secret"), path("lk/store.key")), 0);
	key_backup_refused("bk-key", "symbolic link");
	assert_int_equal(unlink(path("lk/store.key")), 0);
	/* Or for a hard link to it: what a gateway's account could plant
	 * (where the kernel lets it link others' files) for root's backup
	 * to copy and hand back. */
	assert_int_equal(link(path("secret"), path("lk/store.key")), 0);
	key_backup_refused("bk-hard", "hard link");
	assert_int_equal(unlink(path("lk/store.key")), 0);
	assert_int_equal(rename(path("lk/store.key.real"), path("lk/store.key")),
	    0);

	/* store.db a link to another database. */
	assert_int_equal(rename(path("lk/store.db"), path("lk/store.db.real")),
	    0);
	assert_int_equal(symlink(path("lk/store.db.real"), path("lk/store.db")),
	    0);
	assert_int_equal(store_backup(path("lk"), path("bk-db"), err,
	    sizeof(err)), -1);
	assert_int_equal(unlink(path("lk/store.db")), 0);
	assert_int_equal(rename(path("lk/store.db.real"), path("lk/store.db")),
	    0);

	/* A dangling link waiting where the copy's database goes. */
	assert_int_equal(mkdir(path("bk-out"), 0700), 0);
	assert_int_equal(symlink(path("planted"), path("bk-out/store.db")), 0);
	assert_int_equal(store_backup(path("lk"), path("bk-out"), err,
	    sizeof(err)), -1);
	assert_int_equal(access(path("planted"), F_OK), -1);

	/* Put right, the same directory backs up. */
	if (store_backup(path("lk"), path("bk-ok"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);

	/* The folders are the operator's, links or not (a data directory
	 * under a /var/lib that links to another disk): only the files in
	 * them are not followed.  SQLITE_OPEN_NOFOLLOW alone refused a link
	 * anywhere in the path. */
	assert_int_equal(symlink(path("lk"), path("lk-via-link")), 0);
	assert_int_equal(mkdir(path("disk2"), 0700), 0);
	assert_int_equal(symlink(path("disk2"), path("backups")), 0);
	if (store_backup(path("lk-via-link"), path("backups/bk-1"), err,
	    sizeof(err)) < 0)
		fail_msg("store_backup through linked folders: %s", err);
	assert_int_equal(access(path("disk2/bk-1/store.db"), F_OK), 0);
	assert_int_equal(access(path("disk2/bk-1/store.key"), F_OK), 0);
	store_close(s);
}

/* store_backup of fdb refuses, its message containing why, and leaves no
 * copy of another database behind. */
static void
db_backup_refused(const char *out, const char *why)
{
	char err[512], db[256];

	assert_int_equal(store_backup(path("fdb"), path(out), err,
	    sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("expected \"%s\" in: %s", why, err);
	snprintf(db, sizeof(db), "%s/store.db", out);
	assert_int_equal(access(path(db), F_OK), -1);
}

/* A database of another's at path(rel), mode 0600, laid out as a store's
 * enough to be copied: its one audit leaf is "ROOT-ONLY". */
static void
other_database(const char *rel)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path(rel), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE audit_leaves(x);"
	    "INSERT INTO audit_leaves VALUES('ROOT-ONLY')", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(chmod(path(rel), 0600), 0);
}

typedef struct {
	char path[256];
	int opened;
} fifo_writer_t;

/* Opens the FIFO for writing (without blocking) as soon as something reads
 * it, then closes it: a backup that opened the FIFO as its database does
 * not wait for ever.  Gives up after 3 s. */
static void *
fifo_writer(void *arg)
{
	fifo_writer_t *w = arg;
	struct timespec ts = { 0, 10 * 1000000L };
	int fd, i;

	for (i = 0; i < 300; i++) {
		if ((fd = open(w->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0) {
			w->opened = 1;
			close(fd);
			return NULL;
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/*
 * store.db is not a key, but run as root the backup reads it all the same
 * and gives the copy to the data directory's owner: it takes only a
 * regular file with one name that owner owns.  It used to check only that
 * store.db was no symbolic link: a hard link to a database of root's (what
 * the gateway's account could plant where the kernel lets it link others'
 * files) was copied and handed to that account; a FIFO held the backup
 * until someone wrote to it; a file of another owner was copied.
 */
static void
test_backup_refuses_foreign_db(void **state)
{
	char err[512];
	fifo_writer_t w;
	pthread_t th;

	(void)state;
	store_close(store_with_one_record("fdb"));
	/* Another database, elsewhere, that the gateway's account may not
	 * read. */
	other_database("private.db");
	assert_int_equal(rename(path("fdb/store.db"), path("fdb/store.db.real")),
	    0);

	/* A hard link to it. */
	assert_int_equal(link(path("private.db"), path("fdb/store.db")), 0);
	db_backup_refused("fbk-hard", "hard link");
	assert_int_equal(unlink(path("fdb/store.db")), 0);

	/* A FIFO. */
	assert_int_equal(mkfifo(path("fdb/store.db"), 0600), 0);
	memset(&w, 0, sizeof(w));
	snprintf(w.path, sizeof(w.path), "%s", path("fdb/store.db"));
	assert_int_equal(pthread_create(&th, NULL, fifo_writer, &w), 0);
	db_backup_refused("fbk-fifo", "not a regular file");
	pthread_join(th, NULL);
	assert_int_equal(unlink(path("fdb/store.db")), 0);

	assert_int_equal(rename(path("fdb/store.db.real"), path("fdb/store.db")),
	    0);
	/* A store.db of another owner than the folder's (as root: the
	 * folder given to another account, store.db left to root). */
	if (geteuid() == 0) {
		static const char *const rest[] = { "fdb", "fdb/store.key",
		    "fdb/audit.key", "fdb/checkpoint.last" };
		size_t i;

		for (i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
			assert_int_equal(chown(path(rest[i]), 65534, 65534), 0);
		db_backup_refused("fbk-owner", "owned by uid 0, not by the owner "
		    "of its folder (uid 65534)");
		for (i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
			assert_int_equal(chown(path(rest[i]), 0, 0), 0);
	}

	/* Put right, the same directory backs up. */
	if (store_backup(path("fdb"), path("fbk-ok"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);
}

/* A backup of dir into out is refused with why in its message, leaving
 * no copy of the file refused (for a -wal or -shm: of store.db) there. */
static void
backup_refused_as(const char *dir, const char *out, const char *why,
    const char *refused)
{
	char err[512], copy[256];

	assert_int_equal(store_backup(path(dir), path(out), err,
	    sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("expected \"%s\" in: %s", why, err);
	snprintf(copy, sizeof(copy), "%s/%s", out, strstr(refused, "store.db")
	    == refused ? "store.db" : refused);
	if (access(path(copy), F_OK) == 0)
		fail_msg("%s left behind (%s)", copy, err);
}

/* Every file a backup reads, not store.db alone, is held to one rule: one
 * name, and as root the owner of the data directory.  A key or
 * checkpoint.last left there by root, or a store.db-wal or -shm (whose
 * pages SQLite reads with the database's) that is a hard link to another
 * file, would otherwise be read by root and handed to the gateway's
 * account.  Nor is a -wal a symbolic link. */
static void
test_backup_refuses_foreign_files(void **state)
{
	static const char *const owned[] = { "ow/store.key", "ow/audit.key",
	    "ow/checkpoint.last", "ow/store.db-wal", "ow/store.db-shm" };
	char err[512], out[32];
	struct stat sb;
	store_t *s;
	size_t i;

	(void)state;
	/* Open: its -wal and -shm are there. */
	s = store_with_one_record("ow");
	assert_int_equal(stat(path("ow/store.db-wal"), &sb), 0);
	assert_int_equal(stat(path("ow/store.db-shm"), &sb), 0);
	assert_int_equal(stat(path("ow/checkpoint.last"), &sb), 0);
	assert_int_equal(link(path("ow/store.db-wal"), path("wal-2")), 0);
	backup_refused_as("ow", "obk-wal", "store.db-wal: has another name",
	    "store.db-wal");
	assert_int_equal(unlink(path("wal-2")), 0);
	assert_int_equal(link(path("ow/store.db-shm"), path("shm-2")), 0);
	backup_refused_as("ow", "obk-shm", "store.db-shm: has another name",
	    "store.db-shm");
	assert_int_equal(unlink(path("shm-2")), 0);
	if (geteuid() == 0) {
		/* The files left to root, the folder given to another account
		 * with store.db: each alone is refused. */
		assert_int_equal(chown(path("ow"), 65534, 65534), 0);
		assert_int_equal(chown(path("ow/store.db"), 65534, 65534), 0);
		for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
			size_t j;

			for (j = 0; j < sizeof(owned) / sizeof(owned[0]); j++)
				assert_int_equal(chown(path(owned[j]),
				    i == j ? 0 : 65534, 65534), 0);
			snprintf(out, sizeof(out), "obk-own-%zu", i);
			backup_refused_as("ow", out, "the owner of its folder "
			    "(uid 65534)", owned[i] + 3);
		}
		for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
			assert_int_equal(chown(path(owned[i]), 65534, 65534), 0);
		if (store_backup(path("ow"), path("obk-own-ok"), err,
		    sizeof(err)) < 0)
			fail_msg("store_backup, all of one owner: %s", err);
		assert_int_equal(chown(path("ow"), 0, 0), 0);
		assert_int_equal(chown(path("ow/store.db"), 0, 0), 0);
		for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
			assert_int_equal(chown(path(owned[i]), 0, 0), 0);
	}
	store_close(s);
	/* Closed, no -wal: one planted as a link to another file. */
	assert_int_equal(access(path("ow/store.db-wal"), F_OK), -1);
	assert_int_equal(file_write_atomic(path("other"), "x", 1, 0600), 0);
	assert_int_equal(symlink(path("other"), path("ow/store.db-wal")), 0);
	backup_refused_as("ow", "obk-link", "store.db-wal: a symbolic link",
	    "store.db-wal");
	assert_int_equal(unlink(path("ow/store.db-wal")), 0);
	/* Put right, the same directory backs up. */
	if (store_backup(path("ow"), path("obk-ok"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);
}

/* The default VFS wrapped (from main, before any store registers its own
 * VFS over the default): the mode of the file named watch_name the
 * moment SQLite has opened it, before any chmod; and swap_fn run once
 * just before this thread (the test's, not a store's) has SQLite open
 * swap_name, between store_backup's checks by name and SQLite's open:
 * what whoever owns the data directory could do in that moment.  A test
 * hook, in the test alone: the backup itself has none. */
static sqlite3_vfs *watch_base;
static sqlite3_vfs watch_vfs;
static char watch_name[256];
static int watch_mode = -1;
static char swap_name[256];
static pthread_t swap_thread;
static void (*swap_fn)(void);
static int swap_fired;

static int
watch_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags,
    int *out)
{
	void (*fn)(void) = swap_fn;
	struct stat sb;
	int rc;

	(void)v;
	if (fn != NULL && name != NULL && strcmp(name, swap_name) == 0 &&
	    pthread_equal(pthread_self(), swap_thread)) {
		swap_fn = NULL;
		fn();
		swap_fired++;
	}
	rc = watch_base->xOpen(watch_base, name, f, flags, out);
	if (rc == SQLITE_OK && name != NULL && strcmp(name, watch_name) == 0 &&
	    watch_mode < 0 && stat(name, &sb) == 0)
		watch_mode = (int)(sb.st_mode & 0777);
	return rc;
}

static int
watch_install(void)
{
	if (sqlite3_initialize() != SQLITE_OK ||
	    (watch_base = sqlite3_vfs_find(NULL)) == NULL)
		return -1;
	watch_vfs = *watch_base;
	watch_vfs.zName = "test-mode-watch";
	watch_vfs.pNext = NULL;
	watch_vfs.xOpen = watch_open;
	return sqlite3_vfs_register(&watch_vfs, 1) == SQLITE_OK ? 0 : -1;
}

/* Watch the next opening of dir/store.db (dir made absolute). */
static void
watch_db_in(const char *dir)
{
	char *real;

	assert_non_null(real = realpath(dir, NULL));
	snprintf(watch_name, sizeof(watch_name), "%s/store.db", real);
	free(real);
	watch_mode = -1;
}

/* Run fn the next time this thread has SQLite open dir/store.db (dir
 * made absolute). */
static void
swap_at_db_open(const char *dir, void (*fn)(void))
{
	char *real;

	assert_non_null(real = realpath(dir, NULL));
	snprintf(swap_name, sizeof(swap_name), "%s/store.db", real);
	free(real);
	swap_thread = pthread_self();
	swap_fired = 0;
	swap_fn = fn;
}

/* rename or link from to to, both under root.  Not through path(): run
 * inside store_backup, whose directory names may be path()'s buffers. */
static void
in_root(int (*op)(const char *, const char *), const char *from,
    const char *to)
{
	char a[256], b[256];

	snprintf(a, sizeof(a), "%s/%s", root, from);
	snprintf(b, sizeof(b), "%s/%s", root, to);
	assert_int_equal(op(a, b), 0);
}

static void
swap_db_for_other(void)
{
	in_root(rename, "rp/store.db", "rp/store.db.real");
	in_root(rename, "rp-other.db", "rp/store.db");
}

/* store.db is checked on a descriptor of its own (open_source_db), then
 * SQLite opens it again by name: swapped in between for another database
 * (a regular file of one name and the right owner, which the first check
 * would pass), the backup is refused and copies none of it.  Without the
 * check against what SQLite opened, the other database was copied. */
static void
test_backup_refuses_db_replaced_while_opened(void **state)
{
	char err[512];

	(void)state;
	store_close(store_with_one_record("rp"));
	other_database("rp-other.db");

	swap_at_db_open(path("rp"), swap_db_for_other);
	backup_refused_as("rp", "rpbk", "rp/store.db: replaced while it was "
	    "being opened; refusing it", "store.db");
	assert_int_equal(swap_fired, 1);

	/* Put right, the same directory backs up. */
	assert_int_equal(rename(path("rp/store.db"), path("rp-other.db")), 0);
	assert_int_equal(rename(path("rp/store.db.real"), path("rp/store.db")),
	    0);
	if (store_backup(path("rp"), path("rpbk-ok"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);
}

static void
link_wal(void)
{
	in_root(link, "sw/store.db-wal", "sw-wal-2");
}

static void
link_shm(void)
{
	in_root(link, "sw/store.db-shm", "sw-shm-2");
}

/* store.db-wal and -shm are checked by name before SQLite opens them
 * (sidecars_before), then SQLite opens them by name: given another name
 * in between (a hard link, which whoever owns the folder could point at
 * another database's WAL), the files SQLite has open are refused once
 * the copy is made and the copy is removed.  Without that second check
 * (sidecars_opened) the backup went through. */
static void
test_backup_refuses_sidecar_swapped_while_opened(void **state)
{
	char err[512];
	struct stat sb;
	store_t *s;

	(void)state;
	s = store_with_one_record("sw");
	assert_int_equal(stat(path("sw/store.db-wal"), &sb), 0);
	assert_int_equal(stat(path("sw/store.db-shm"), &sb), 0);

	swap_at_db_open(path("sw"), link_wal);
	backup_refused_as("sw", "swbk-wal", "store.db-wal: has another name",
	    "store.db-wal");
	assert_int_equal(swap_fired, 1);
	assert_int_equal(unlink(path("sw-wal-2")), 0);

	swap_at_db_open(path("sw"), link_shm);
	backup_refused_as("sw", "swbk-shm", "store.db-shm: has another name",
	    "store.db-shm");
	assert_int_equal(swap_fired, 1);
	assert_int_equal(unlink(path("sw-shm-2")), 0);

	/* Put right, the same directory backs up. */
	if (store_backup(path("sw"), path("swbk-ok"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);
	store_close(s);
}

/* store.db holds the audit log and the records' metadata, and so does a
 * backup's copy: nobody else may open either, not even in the moment
 * between its creation and a chmod (an open descriptor keeps reading
 * after a chmod).  Created under a umask of 022, in folders others may
 * enter (a data directory made by hand, the operator's /srv/backup). */
static void
test_store_db_never_readable(void **state)
{
	char err[512];
	buf_t vk = BUF_INIT;
	mode_t old;
	store_t *s;

	(void)state;
	old = umask(022);
	assert_int_equal(mkdir(path("nr"), 0755), 0);
	assert_int_equal(store_init_keys(path("nr"), AREA, &vk, err,
	    sizeof(err)), 0);
	buf_free(&vk);
	watch_db_in(path("nr"));
	s = open_store(path("nr"));
	assert_int_equal(watch_mode, 0600);
	assert_int_equal(mode_of(path("nr/store.db")), 0600);
	put(s, "REC-1");
	wait_signed(s, 1);
	assert_int_equal(mkdir(path("nr-out"), 0755), 0);
	watch_db_in(path("nr-out"));
	if (store_backup(path("nr"), path("nr-out"), err, sizeof(err)) < 0)
		fail_msg("store_backup: %s", err);
	umask(old);
	assert_int_equal(watch_mode, 0600);
	assert_int_equal(mode_of(path("nr-out/store.db")), 0600);
	store_close(s);
}

static int
setup(void **state)
{
	char tmpl[] = "/tmp/test_store_backup.XXXXXX";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(root, sizeof(root), "%s", tmpl);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backup_copy_and_mark),
		cmocka_unit_test(test_backup_errors),
		cmocka_unit_test(test_backup_refuses_links),
		cmocka_unit_test(test_backup_refuses_foreign_db),
		cmocka_unit_test(test_backup_refuses_foreign_files),
		cmocka_unit_test(test_backup_refuses_db_replaced_while_opened),
		cmocka_unit_test(test_backup_refuses_sidecar_swapped_while_opened),
		cmocka_unit_test(test_store_db_never_readable),
	};

	if (watch_install() < 0) {
		fprintf(stderr, "cannot wrap the default SQLite VFS\n");
		return 1;
	}
	return cmocka_run_group_tests_name("store_backup", tests, setup,
	    teardown);
}
