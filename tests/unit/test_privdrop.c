/*
 * privdrop: the decision (privdrop_plan) and the ownership checks
 * (privdrop_check_files), run in this process without switching anything.
 * privdrop_apply, which cannot be undone, runs in a forked child.  The
 * integration test (test_privilege) starts real gateways.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway/privdrop.h"
#include "util/fileio.h"

static config_t *
cfg_with(const char *user, const char *group)
{
	config_t *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	if (user != NULL)
		snprintf(c->user, sizeof(c->user), "%s", user);
	if (group != NULL)
		snprintf(c->group, sizeof(c->group), "%s", group);
	return c;
}

static void
test_plan_root(void **state)
{
	privdrop_plan_t p;
	char err[512];
	config_t *c;
	struct passwd *pw;

	(void)state;
	if (geteuid() != 0)
		skip();
	c = cfg_with(NULL, NULL);
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user: missing: visor-gw will not run as root"));
	free(c);

	c = cfg_with("root", NULL);
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user: 'root' has uid 0"));
	free(c);

	c = cfg_with("no-such-account-privdrop", NULL);
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user: no account named"));
	free(c);

	if ((pw = getpwnam("nobody")) == NULL)
		skip();
	c = cfg_with("nobody", "root");
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group: the group of 'nobody' is gid 0"));
	free(c);

	c = cfg_with("nobody", "no-such-group-privdrop");
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group: no group named"));
	free(c);

	c = cfg_with("nobody", NULL);
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), 0);
	assert_int_equal(p.drop, 1);
	assert_int_equal(p.uid, pw->pw_uid);
	assert_int_equal(p.gid, pw->pw_gid);
	assert_string_equal(p.user, "nobody");
	free(c);
}

/* The key and data directory must belong to the account. */
static void
test_check_files(void **state)
{
	char dir[] = "/tmp/visor-privdrop-XXXXXX", key[128], data[128];
	char err[512];
	privdrop_plan_t p;
	config_t *c;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof(key), "%s/gateway.key", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	assert_int_equal(file_write_atomic(key, "k", 1, 0600), 0);
	assert_int_equal(mkdir(data, 0700), 0);
	c = cfg_with("nobody", NULL);
	snprintf(c->tls_key, sizeof(c->tls_key), "%s", key);
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", data);
	assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), 0);
	assert_int_equal(privdrop_check_files(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "tls.key: "));
	assert_non_null(strstr(err, "re-reads it on SIGHUP"));
	assert_int_equal(chown(key, p.uid, p.gid), 0);
	assert_int_equal(privdrop_check_files(c, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "data_dir: "));
	assert_int_equal(chown(data, p.uid, p.gid), 0);
	assert_int_equal(privdrop_check_files(c, &p, err, sizeof(err)), 0);

	/* In a child: the drop takes, and root cannot be regained.  The
	 * folder is 0700 root: the account cannot reach the key, and apply
	 * says so after switching. */
	{
		pid_t pid = fork();
		int status;

		assert_true(pid >= 0);
		if (pid == 0) {
			int rc = privdrop_apply(c, &p, err, sizeof(err));
			_exit(rc == -1 && strstr(err, "tls.key: ") != NULL &&
			    strstr(err, "as 'nobody'") != NULL &&
			    geteuid() == p.uid && setuid(0) < 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(chmod(dir, 0755), 0);
	{
		pid_t pid = fork();
		int status;

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(privdrop_apply(c, &p, err, sizeof(err)) == 0 &&
			    getuid() == p.uid && getgid() == p.gid &&
			    setuid(0) < 0 && setgid(0) < 0 ? 0 : 1);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	free(c);
	unlink(key);
	rmdir(data);
	rmdir(dir);
}

/* Nothing to drop: a plan without "user" when not root, and apply then
 * does nothing. */
static void
test_no_drop(void **state)
{
	privdrop_plan_t p;
	char err[256];
	config_t *c = cfg_with(NULL, NULL);

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(privdrop_apply(c, &p, err, sizeof(err)), 0);
	assert_int_equal(privdrop_check_files(c, &p, err, sizeof(err)), 0);
	if (geteuid() != 0) {
		assert_int_equal(privdrop_plan(c, &p, err, sizeof(err)), 0);
		assert_int_equal(p.drop, 0);
	}
	free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_root),
		cmocka_unit_test(test_check_files),
		cmocka_unit_test(test_no_drop),
	};

	return cmocka_run_group_tests_name("privdrop", tests, NULL, NULL);
}
