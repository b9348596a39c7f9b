/*
 * gateway/store_walvfs: a commit's WAL writes go out as one write call (per
 * 64 KiB) instead of two per page; another connection, through the plain
 * VFS, reads every commit as soon as it is made, also for transactions
 * larger than a chunk, that spill pages early, rewrite them, or roll back;
 * and the database checks clean after.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gateway/store_walvfs.h"
#include "tests/support/tmpdir.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_walvfs.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	tmpdir_remove(dir);
	return 0;
}

/* Write system calls made by this process so far (/proc/self/io). */
static unsigned long
write_calls(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	unsigned long n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "syscw: %lu", &n) == 1)
			break;
	fclose(f);
	return n;
}

static sqlite3 *
open_db(const char *name, const char *vfs, int flags)
{
	char path[128];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(sqlite3_open_v2(path, &db, flags, vfs), SQLITE_OK);
	return db;
}

static void
exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

static sqlite3 *
open_writer(const char *name, const char *vfs)
{
	sqlite3 *db = open_db(name, vfs,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "PRAGMA wal_autocheckpoint=0;"
	    "CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v BLOB)");
	return db;
}

/* rows rows of len random bytes each, keys from k0, in the open
 * transaction. */
static void
insert_rows(sqlite3 *db, int k0, int rows, int len)
{
	sqlite3_stmt *st;
	int k;

	assert_int_equal(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO t"
	    " VALUES(?1, randomblob(?2))", -1, &st, NULL), SQLITE_OK);
	for (k = k0; k < k0 + rows; k++) {
		sqlite3_bind_int(st, 1, k);
		sqlite3_bind_int(st, 2, len);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
}

static sqlite3_int64
one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	sqlite3_int64 v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
test_gathers_wal_writes(void **state)
{
	const char *vfs = store_walvfs_name();
	sqlite3 *shim, *plain;
	unsigned long before, with_shim = 0, without = 0;
	int round;

	(void)state;
	assert_non_null(vfs);
	assert_string_equal(vfs, STORE_WALVFS_NAME);
	shim = open_writer("shim.db", vfs);
	plain = open_writer("plain.db", NULL);
	/* Ten rows of 3 KB: about ten pages, some 41 KB of WAL per commit. */
	for (round = 0; round < 10; round++) {
		before = write_calls();
		exec(shim, "BEGIN");
		insert_rows(shim, round * 10, 10, 3000);
		exec(shim, "COMMIT");
		with_shim += write_calls() - before;
		before = write_calls();
		exec(plain, "BEGIN");
		insert_rows(plain, round * 10, 10, 3000);
		exec(plain, "COMMIT");
		without += write_calls() - before;
	}
	/* SQLite alone: two calls per page.  Through the shim: one per
	 * commit (10 in all when run natively); valgrind adds write calls of
	 * its own to both counts, hence the ratio. */
	assert_true(without >= 10 * 2 * 10);
	assert_true(with_shim * 4 <= without);
	assert_int_equal(one_int(shim, "SELECT count(*) FROM t"), 100);
	sqlite3_close(shim);
	sqlite3_close(plain);
}

static void
check_reader(sqlite3 *reader, sqlite3_int64 rows, sqlite3_int64 bytes)
{
	assert_int_equal(one_int(reader, "SELECT count(*) FROM t"), rows);
	assert_int_equal(one_int(reader, "SELECT total(length(v)) FROM t"),
	    bytes);
}

static void
test_readers_see_every_commit(void **state)
{
	sqlite3 *w = open_writer("read.db", store_walvfs_name()), *r;
	sqlite3_stmt *st;
	sqlite3_int64 rows = 0, bytes = 0;
	int k;

	(void)state;
	r = open_db("read.db", NULL, SQLITE_OPEN_READONLY);
	/* Small commits, each read at once by the other connection. */
	for (k = 0; k < 50; k++) {
		exec(w, "BEGIN");
		insert_rows(w, k, 1, 500);
		exec(w, "COMMIT");
		rows++;
		bytes += 500;
		check_reader(r, rows, bytes);
	}
	/* One commit of 300 KB: several chunks. */
	exec(w, "BEGIN");
	insert_rows(w, 1000, 100, 3000);
	exec(w, "COMMIT");
	rows += 100;
	bytes += 100 * 3000;
	check_reader(r, rows, bytes);
	/* A tiny page cache spills pages to the WAL before the commit, and
	 * writing the same rows again rewrites those frames. */
	exec(w, "PRAGMA cache_size=4");
	exec(w, "BEGIN");
	insert_rows(w, 1000, 100, 2000);
	/* The writer reads back pages it spilled, some still gathered. */
	check_reader(w, rows, bytes - 100 * 1000);
	insert_rows(w, 1000, 100, 1000);
	check_reader(w, rows, bytes - 100 * 2000);
	check_reader(r, rows, bytes);
	exec(w, "COMMIT");
	bytes -= 100 * 2000;
	check_reader(r, rows, bytes);
	/* A large transaction rolled back: nothing of it is seen. */
	exec(w, "BEGIN");
	insert_rows(w, 5000, 200, 3000);
	exec(w, "ROLLBACK");
	check_reader(r, rows, bytes);
	check_reader(w, rows, bytes);
	exec(w, "BEGIN");
	insert_rows(w, 6000, 3, 100);
	exec(w, "COMMIT");
	rows += 3;
	bytes += 300;
	check_reader(r, rows, bytes);
	sqlite3_close(r);
	assert_int_equal(sqlite3_close(w), SQLITE_OK);

	/* Opened again through the plain VFS: every commit there, intact. */
	w = open_db("read.db", NULL, SQLITE_OPEN_READWRITE);
	assert_int_equal(sqlite3_prepare_v2(w, "PRAGMA integrity_check", -1,
	    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	check_reader(w, rows, bytes);
	sqlite3_close(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gathers_wal_writes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_readers_see_every_commit,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
