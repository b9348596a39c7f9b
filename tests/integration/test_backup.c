/*
 * Backup and restore (docs/OPERATIONS.md): visorctl backup copies a running
 * gateway's data directory; a restored copy never lets the gateway sign a
 * checkpoint inconsistent with one it already published.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/fileio.h"

static gwt_env_t env;

/* PUT a synthetic record as probation (which may write every group). */
static void
put_record(gwt_gw_t *gw, const char *id)
{
	const char *hdrs[] = { "X-Visor-Actor: PB-0001",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/json", NULL };
	char body[512], path[128], err[256];
	gwt_resp_t resp;
	int n;

	n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":"
	    "\"EXAMPLE\",\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\"}}",
	    id);
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	assert_int_equal(gwt_request(&env, gw, "norfolk", "agency-probation",
	    "PUT", path, hdrs, body, (size_t)n, &resp, err, sizeof(err)), 0);
	if (resp.status != 201 && resp.status != 200)
		fail_msg("PUT %s: %ld %s", id, resp.status,
		    resp.body.data ? resp.body.data : "");
	gwt_resp_free(&resp);
}

static int
run(const char *const *argv, buf_t *out, buf_t *errout)
{
	return gwt_run(argv, NULL, 0, out, errout);
}

static int
sh(const char *cmd)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };

	return run(argv, NULL, NULL);
}

/* Start the gateway expecting a refusal; returns its log text (caller
 * frees) after the process has exited. */
static char *
start_refused(gwt_gw_t *gw)
{
	char *log = NULL;
	size_t len;

	assert_int_equal(gwt_gw_start(&env, "norfolk", gw), -1);
	/* 1: refused (under make valgrind, 99 would be a memcheck error or a
	 * leak on the refusal path). */
	assert_int_equal(gw->exit_status, 1);
	assert_int_equal(file_read_all(gw->log, 1 << 20, &log, &len), 0);
	return log;
}

static void
clear_log(const gwt_gw_t *gw)
{
	assert_int_equal(file_write_atomic(gw->log, "", 0, 0644), 0);
}

static void
test_backup_and_restore(void **state)
{
	char cmd[4096], *log;
	const char *data = gwt_path(&env, "norfolk/data");
	char live[600], bk[600], data_s[600], live_cp[700], bk_cp[700];
	buf_t out = BUF_INIT, err = BUF_INIT;
	gwt_gw_t gw;
	struct stat sb;
	int i, rc;

	(void)state;
	snprintf(data_s, sizeof(data_s), "%s", data);
	snprintf(live, sizeof(live), "%s", gwt_path(&env, "norfolk/data.live"));
	snprintf(bk, sizeof(bk), "%s", gwt_path(&env, "backup-1"));
	snprintf(live_cp, sizeof(live_cp), "%s/checkpoint.last", live);
	snprintf(bk_cp, sizeof(bk_cp), "%s/checkpoint.last", bk);

	/* A live gateway with some history, backed up while it runs. */
	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	put_record(&gw, "BK-0001");
	put_record(&gw, "BK-0002");
	sleep_ms(1500);		/* a checkpoint covers them */
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "backup",
		    data_s, bk, NULL };
		rc = run(argv, &out, &err);
		if (rc != 0)
			fail_msg("backup: %s", err.data ? err.data : "");
	}
	assert_int_equal(stat(bk_cp, &sb), 0);
	snprintf(cmd, sizeof(cmd), "%s/store.db-wal", bk);
	assert_int_equal(stat(cmd, &sb), -1);	/* one self-contained file */
	snprintf(cmd, sizeof(cmd), "%s/audit.key", bk);
	assert_int_equal(stat(cmd, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* A second backup into the same folder is refused. */
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "backup",
		    data_s, bk, NULL };
		assert_int_equal(run(argv, NULL, NULL), 1);
	}
	/* The live log moves on and publishes checkpoints beyond the backup. */
	for (i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "BK-01%02d", i);
		put_record(&gw, cmd);
	}
	sleep_ms(1500);
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
	snprintf(cmd, sizeof(cmd), "mv '%s' '%s'", data_s, live);
	assert_int_equal(sh(cmd), 0);

	/* 1. The backup copied back by hand beside the live checkpoint.last:
	 * the store sees a rollback and refuses. */
	/* chown: as the operator would (root), for a gateway that drops to
	 * an account (quickstart as root); a no-op otherwise. */
	snprintf(cmd, sizeof(cmd), "mkdir -m 700 '%s' && cp -p '%s'/* '%s'/ && "
	    "cp -p '%s' '%s'/checkpoint.last && chown --reference='%s' '%s'",
	    data_s, bk, data_s, live_cp, data_s, bk, data_s);
	assert_int_equal(sh(cmd), 0);
	clear_log(&gw);
	log = start_refused(&gw);
	assert_non_null(strstr(log, "store.db was rolled back"));
	free(log);

	/* 2. The backup by hand with its own checkpoint.last (the newer one
	 * lost): the mark makes the gateway refuse instead of forking. */
	snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'/checkpoint.last", bk_cp,
	    data_s);
	assert_int_equal(sh(cmd), 0);
	clear_log(&gw);
	log = start_refused(&gw);
	assert_non_null(strstr(log, "this data directory is a copy made by "
	    "visorctl backup"));
	assert_non_null(strstr(log, "visorctl restore"));
	free(log);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_s);
	assert_int_equal(sh(cmd), 0);
	/* Run as root, the backup must be root's: the one visorctl backup
	 * gave the gateway's account (quickstart as root) is refused until
	 * the operator makes it root's, and nothing is copied meanwhile. */
	if (geteuid() == 0) {
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    data_s, "--checkpoint", bk_cp, NULL };

		assert_int_equal(stat(bk, &sb), 0);
		if (sb.st_uid != 0) {
			buf_free(&err);
			assert_int_equal(run(argv, NULL, &err), 1);
			assert_non_null(err.data);
			assert_non_null(strstr(err.data, "run as root, refusing "
			    "the backup"));
			assert_non_null(strstr(err.data, "chown -R root:root"));
			assert_int_equal(stat(data_s, &sb), -1);
		}
		snprintf(cmd, sizeof(cmd), "chown -R root:root '%s'", bk);
		assert_int_equal(sh(cmd), 0);
	}

	/* 3. visorctl restore with the newest published checkpoint: the backup
	 * does not extend it, so it is refused and the mark stays. */
	buf_free(&err);
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    data_s, "--checkpoint", live_cp, NULL };
		assert_int_equal(run(argv, NULL, &err), 1);
	}
	assert_non_null(err.data);
	assert_non_null(strstr(err.data, "would sign a fork"));
	/* The refused copy is root's: the gateway's account is given it as
	 * the operator would, to show the gateway refuses it for its log. */
	snprintf(cmd, sizeof(cmd), "chown -R --reference='%s' '%s'", live,
	    data_s);
	assert_int_equal(sh(cmd), 0);
	clear_log(&gw);
	log = start_refused(&gw);
	assert_non_null(strstr(log, "store.db was rolled back"));
	free(log);

	/* 4. An altered checkpoint is not accepted as this gateway's. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_s);
	assert_int_equal(sh(cmd), 0);
	buf_free(&err);
	{
		char other[700];
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    data_s, "--checkpoint", other, NULL };

		snprintf(other, sizeof(other), "%s/forged.checkpoint",
		    gwt_path(&env, ""));
		/* A larger size under the same signature. */
		snprintf(cmd, sizeof(cmd), "sed '2s/$/0/' '%s' > '%s'", live_cp,
		    other);
		assert_int_equal(sh(cmd), 0);
		assert_int_equal(run(argv, NULL, &err), 1);
	}
	assert_non_null(err.data);
	assert_non_null(strstr(err.data, "not signed by this backup's audit key"));
	/* The refused copy stays, marked; the operator is told to remove it
	 * before the next try, and the next try says so too, rather than
	 * only that store.db exists. */
	assert_non_null(strstr(err.data, "keeps the refused copy"));
	buf_free(&err);
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    data_s, "--checkpoint", bk_cp, NULL };
		assert_int_equal(run(argv, NULL, &err), 1);
	}
	assert_non_null(err.data);
	assert_non_null(strstr(err.data, "holds the copy of an earlier restore"));
	assert_non_null(strstr(err.data, "rm -r"));
	/* Over a data directory in use: move it aside first. */
	buf_free(&err);
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    live, "--checkpoint", bk_cp, NULL };
		assert_int_equal(run(argv, NULL, &err), 1);
	}
	assert_non_null(err.data);
	assert_non_null(strstr(err.data, "holds a data directory already"));
	assert_null(strstr(err.data, "rm -r"));
	/* 5. With the backup's own checkpoint as the newest published one (no
	 * later one was ever published): restored, and the gateway starts and
	 * serves what the backup holds. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_s);
	assert_int_equal(sh(cmd), 0);
	buf_free(&out);
	buf_free(&err);
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    data_s, "--checkpoint", bk_cp, NULL };
		rc = run(argv, &out, &err);
		if (rc != 0)
			fail_msg("restore: %s", err.data ? err.data : "");
	}
	assert_non_null(strstr(out.data, "consistent with the published"));
	snprintf(cmd, sizeof(cmd), "%s/%s", data_s, "backup.info");
	assert_int_equal(stat(cmd, &sb), -1);
	/* docs/OPERATIONS.md, Restore step 3: to the gateway's account. */
	snprintf(cmd, sizeof(cmd), "chown -R --reference='%s' '%s'", live,
	    data_s);
	assert_int_equal(sh(cmd), 0);
	clear_log(&gw);
	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	put_record(&gw, "BK-0900");
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);

	/* Usage errors. */
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
		    data_s, NULL };
		assert_int_equal(run(argv, NULL, NULL), 2);
	}
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "restore",
		    live, gwt_path(&env, "x"), "--no-published-checkpoint", NULL };
		assert_int_equal(run(argv, NULL, NULL), 1);	/* not a backup */
	}
	buf_free(&out);
	buf_free(&err);
}

/* Run as root, visorctl restore reads and copies only a backup no other
 * user can change while it runs: the backup folder, every file in it and
 * every folder above it root's and writable by no one else (a sticky one
 * above excepted); and it checks the copy only in a data directory (or the
 * folder it is made in) of the same kind.  Otherwise the owner could swap
 * files during the restore, have root read for them what they cannot (a
 * link to a file of root's), and be given the restored directory.
 * Before, each of these was restored. */
static void
test_restore_as_root_untrusted_backup(void **state)
{
	char bk[600], data_s[600], live[600], f[700], cmd[4096];
	const char *argv[] = { gwt_prog(&env, "visorctl"), "restore", bk,
	    data_s, "--no-published-checkpoint", NULL };
	buf_t err = BUF_INIT, out = BUF_INIT;
	struct stat sb;
	int rc;

	(void)state;
	if (geteuid() != 0)
		skip();
	snprintf(live, sizeof(live), "%s", gwt_path(&env, "norfolk/data"));
	snprintf(data_s, sizeof(data_s), "%s", gwt_path(&env, "rt/data"));
	snprintf(bk, sizeof(bk), "%s", gwt_path(&env, "rt/backup"));
	snprintf(cmd, sizeof(cmd), "mkdir -p -m 700 '%s' && rm -rf '%s'",
	    gwt_path(&env, "rt"), bk);
	assert_int_equal(sh(cmd), 0);
	{
		const char *b[] = { gwt_prog(&env, "visorctl"), "backup", live,
		    bk, NULL };

		rc = run(b, NULL, &err);
		if (rc != 0)
			fail_msg("backup: %s", err.data ? err.data : "");
		buf_free(&err);
	}
	snprintf(cmd, sizeof(cmd), "chown -R root:root '%s'", bk);
	assert_int_equal(sh(cmd), 0);

	/* One file of another user's in a root folder. */
	snprintf(f, sizeof(f), "%s/audit.key", bk);
	assert_int_equal(chown(f, 65534, 65534), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(err.data);
	assert_non_null(strstr(err.data, "audit.key (uid 65534"));
	assert_int_equal(stat(data_s, &sb), -1);
	buf_free(&err);
	assert_int_equal(chown(f, 0, 0), 0);
	/* A file others may write. */
	snprintf(f, sizeof(f), "%s/store.db", bk);
	assert_int_equal(chmod(f, 0620), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(strstr(err.data, "store.db (uid 0, mode 0620)"));
	buf_free(&err);
	assert_int_equal(chmod(f, 0600), 0);
	/* A link in the backup, whatever it names. */
	snprintf(f, sizeof(f), "%s/extra", bk);
	assert_int_equal(symlink("/etc/hostname", f), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(strstr(err.data, "not a regular file of root's"));
	buf_free(&err);
	assert_int_equal(unlink(f), 0);
	/* The folder itself: another's, or one others may write, even
	 * sticky. */
	assert_int_equal(chown(bk, 65534, 65534), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(strstr(err.data, "run as root, refusing the backup"));
	buf_free(&err);
	assert_int_equal(chown(bk, 0, 0), 0);
	assert_int_equal(chmod(bk, 01777), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(strstr(err.data, "mode 1777"));
	buf_free(&err);
	assert_int_equal(chmod(bk, 0700), 0);
	/* A folder above it that another user may write (not sticky): they
	 * could rename the backup away and put their own in its place. */
	snprintf(f, sizeof(f), "%s", gwt_path(&env, "rt"));
	assert_int_equal(chmod(f, 0777), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(strstr(err.data, "is not a folder of root's"));
	buf_free(&err);
	assert_int_equal(chmod(f, 0700), 0);
	/* The data directory's place, or a data directory there already,
	 * likewise: the copy is checked in it. */
	assert_int_equal(mkdir(data_s, 0700), 0);
	assert_int_equal(chown(data_s, 65534, 65534), 0);
	assert_int_equal(run(argv, NULL, &err), 1);
	assert_non_null(strstr(err.data, "refusing the data directory"));
	buf_free(&err);
	assert_int_equal(rmdir(data_s), 0);
	assert_int_equal(stat(data_s, &sb), -1);
	/* All root's: restored, and the copy is root's until the operator
	 * gives it to the gateway's account. */
	rc = run(argv, &out, &err);
	if (rc != 0)
		fail_msg("restore: %s", err.data ? err.data : "");
	assert_int_equal(stat(data_s, &sb), 0);
	assert_int_equal(sb.st_uid, 0);
	buf_free(&out);
	buf_free(&err);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gwt_path(&env, "rt"));
	assert_int_equal(sh(cmd), 0);
}

/* A new data directory outside quickstart: keys, the empty log's
 * checkpoint, and the verifier key for the auditors. */
static void
test_init_data(void **state)
{
	char dir[600], vkey[600], *text = NULL;
	struct stat sb;
	size_t len;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", gwt_path(&env, "fresh/data"));
	snprintf(vkey, sizeof(vkey), "%s", gwt_path(&env, "fresh/audit.vkey"));
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "init-data", dir,
		    "--area", "norfolk", "--vkey", vkey, NULL };
		assert_int_equal(run(argv, NULL, NULL), 0);
		/* Never over existing keys. */
		assert_int_equal(run(argv, NULL, NULL), 1);
	}
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(file_read_all(vkey, 4096, &text, &len), 0);
	assert_non_null(strstr(text, "visor.norfolk/audit+"));
	assert_true(len > 0 && text[len - 1] == '\n');
	free(text);
	{
		char p[700];

		snprintf(p, sizeof(p), "%s/checkpoint.last", dir);
		assert_int_equal(stat(p, &sb), 0);
		snprintf(p, sizeof(p), "%s/audit.key", dir);
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "init-data", dir,
		    "--area", "Norfolk!", "--vkey", vkey, NULL };
		assert_int_equal(run(argv, NULL, NULL), 2);
	}
	/* A folder that was there, and that others may write: refused
	 * before any key is made, as the gateway would refuse it.  Before,
	 * it kept its mode and got the keys. */
	{
		char shared[600], p[700];
		const char *argv[] = { gwt_prog(&env, "visorctl"), "init-data",
		    shared, "--area", "norfolk", "--vkey", vkey, NULL };
		buf_t e;

		snprintf(shared, sizeof(shared), "%s", gwt_path(&env, "shared"));
		assert_int_equal(mkdir(shared, 0700), 0);
		assert_int_equal(chmod(shared, 0770), 0);
		buf_init(&e, 0);
		assert_int_equal(run(argv, NULL, &e), 1);
		if (e.data == NULL || strstr(e.data, "chmod 0700") == NULL)
			fail_msg("%s", e.data ? e.data : "(nothing on stderr)");
		buf_free(&e);
		snprintf(p, sizeof(p), "%s/store.key", shared);
		assert_int_equal(stat(p, &sb), -1);
	}
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "init-data", dir,
		    NULL };
		assert_int_equal(run(argv, NULL, NULL), 2);
	}
	/* A run that fails part way (the verifier key cannot be written, in
	 * a folder that does not exist) keeps nothing it made: neither the
	 * keys nor the folder it created, nor anything in a folder that was
	 * there; so the same command succeeds once the path is fixed.
	 * Before, the keys stayed and the second run was refused. */
	{
		char d2[600], d3[600], bad[600], good[600], p[700];
		const char *argv[] = { gwt_prog(&env, "visorctl"), "init-data", d2,
		    "--area", "norfolk", "--vkey", bad, NULL };
		const char *again[] = { gwt_prog(&env, "visorctl"), "init-data",
		    d2, "--area", "norfolk", "--vkey", good, NULL };
		const char *there[] = { gwt_prog(&env, "visorctl"), "init-data",
		    d3, "--area", "norfolk", "--vkey", bad, NULL };
		buf_t e;

		snprintf(d2, sizeof(d2), "%s", gwt_path(&env, "retry/data"));
		snprintf(d3, sizeof(d3), "%s", gwt_path(&env, "retry/there"));
		snprintf(bad, sizeof(bad), "%s", gwt_path(&env, "retry/no/vkey"));
		snprintf(good, sizeof(good), "%s", gwt_path(&env, "retry/vkey"));
		buf_init(&e, 0);
		assert_int_equal(run(argv, NULL, &e), 1);
		if (e.data == NULL || strstr(e.data, "nothing was kept") == NULL)
			fail_msg("%s", e.data ? e.data : "(nothing on stderr)");
		buf_free(&e);
		assert_int_equal(stat(d2, &sb), -1);
		assert_int_equal(run(again, NULL, NULL), 0);
		snprintf(p, sizeof(p), "%s/audit.key", d2);
		assert_int_equal(stat(p, &sb), 0);
		/* A folder that was there stays, empty. */
		assert_int_equal(mkdir(d3, 0700), 0);
		assert_int_equal(run(there, NULL, NULL), 1);
		assert_int_equal(stat(d3, &sb), 0);
		snprintf(p, sizeof(p), "%s/store.key", d3);
		assert_int_equal(stat(p, &sb), -1);
		snprintf(p, sizeof(p), "%s/audit.key", d3);
		assert_int_equal(stat(p, &sb), -1);
		snprintf(p, sizeof(p), "%s/checkpoint.last", d3);
		assert_int_equal(stat(p, &sb), -1);
		/* A checkpoint without keys is another log's, not replaced. */
		assert_int_equal(file_write_atomic(p, "x\n", 2, 0600), 0);
		snprintf(bad, sizeof(bad), "%s", gwt_path(&env, "retry/vkey3"));
		buf_init(&e, 0);
		assert_int_equal(run(there, NULL, &e), 1);
		assert_non_null(e.data);
		assert_non_null(strstr(e.data, "refusing to overwrite"));
		buf_free(&e);
		snprintf(p, sizeof(p), "%s/store.key", d3);
		assert_int_equal(stat(p, &sb), -1);
	}
}

static int
setup(void **state)
{
	(void)state;
	return gwt_env_setup(&env, "norfolk");
}

static int
teardown(void **state)
{
	(void)state;
	gwt_env_cleanup(&env);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backup_and_restore),
		cmocka_unit_test(test_restore_as_root_untrusted_backup),
		cmocka_unit_test(test_init_data),
	};

	return gwt_exit(cmocka_run_group_tests_name("backup", tests, setup,
	    teardown));
}
