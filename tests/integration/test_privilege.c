/*
 * Least privilege (gateway/privdrop.h, docs/OPERATIONS.md): started as
 * root, a quickstart gateway reads its keys, binds its sockets, then drops
 * to the unprivileged account named by "user" and serves (and reloads on
 * SIGHUP) as that account; without "user", or with root or an unknown
 * account, it refuses to start as root, and --check-config says why.
 * Started as an unprivileged account, it cannot name another one.
 *
 * Needs root (CI runs as root); skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tests/support/gwtest.h"
#include "util/fileio.h"

static gwt_env_t env;
static char account[64];
static uid_t account_uid;
static gid_t account_gid;

/* The value of "user" in the quickstart configuration. */
static int
read_account(void)
{
	char *text = NULL;
	size_t len;
	cJSON *root, *u;
	struct passwd *pw;
	int rc = -1;

	if (file_read_all(gwt_path(&env, "norfolk/gateway.json"), 1 << 20, &text,
	    &len) < 0)
		return -1;
	if ((root = cJSON_Parse(text)) != NULL &&
	    cJSON_IsString(u = cJSON_GetObjectItemCaseSensitive(root, "user")) &&
	    strlen(u->valuestring) < sizeof(account) &&
	    (pw = getpwnam(u->valuestring)) != NULL) {
		snprintf(account, sizeof(account), "%s", u->valuestring);
		account_uid = pw->pw_uid;
		account_gid = pw->pw_gid;
		rc = 0;
	}
	cJSON_Delete(root);
	free(text);
	return rc;
}

/* norfolk/<name>: the quickstart configuration with "user" and "group"
 * set to the given values (NULL: key removed). */
static const char *
config_variant(const char *name, const char *user, const char *group)
{
	static char path[700];
	char *text = NULL, *out;
	size_t len;
	cJSON *root;

	snprintf(path, sizeof(path), "%s", gwt_path(&env, "norfolk"));
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", name);
	assert_int_equal(file_read_all(gwt_path(&env, "norfolk/gateway.json"),
	    1 << 20, &text, &len), 0);
	assert_non_null(root = cJSON_Parse(text));
	free(text);
	cJSON_DeleteItemFromObjectCaseSensitive(root, "user");
	cJSON_DeleteItemFromObjectCaseSensitive(root, "group");
	if (user != NULL)
		assert_non_null(cJSON_AddStringToObject(root, "user", user));
	if (group != NULL)
		assert_non_null(cJSON_AddStringToObject(root, "group", group));
	assert_non_null(out = cJSON_Print(root));
	assert_int_equal(file_write_atomic(path, out, strlen(out), 0644), 0);
	cJSON_free(out);
	cJSON_Delete(root);
	return path;
}

/* Run visor-gw --config cfg [--check-config], as uid/gid when uid is not
 * 0; its stderr in *errout (caller frees).  The exit status, or -1. */
static int
run_gw(const char *cfg, int check, uid_t uid, gid_t gid, char **errout)
{
	char errpath[700];
	size_t len;
	int status, fd;
	pid_t pid;

	snprintf(errpath, sizeof(errpath), "%s", gwt_path(&env, "run-gw.err"));
	unlink(errpath);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if ((fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
			_exit(126);
		dup2(fd, 2);
		dup2(fd, 1);
		if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 ||
		    setuid(uid) < 0))
			_exit(125);
		{
			const char *args[] = { "--config", cfg,
			    check ? "--check-config" : NULL, NULL };
			gwt_exec_gw(&env, args);
		}
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	gwt_gw_reaped(pid, "norfolk", "run", status);
	*errout = NULL;
	if (file_read_all(errpath, 1 << 20, errout, &len) < 0)
		*errout = strdup("");
	return status;
}

/* "Uid:" or "Gid:" of /proc/<pid>/status: all four ids (real, effective,
 * saved, filesystem) must be want. */
static void
assert_ids(pid_t pid, const char *field, unsigned long want)
{
	char path[64], *text = NULL, *line;
	unsigned long id[4];
	size_t len;
	FILE *f;

	/* Not file_read_all: /proc files have no size. */
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(text = calloc(1, 65536));
	len = fread(text, 1, 65535, f);
	fclose(f);
	assert_true(len > 0);
	assert_non_null(line = strstr(text, field));
	assert_int_equal(sscanf(line + strlen(field), "%lu %lu %lu %lu", &id[0],
	    &id[1], &id[2], &id[3]), 4);
	assert_int_equal(id[0], want);
	assert_int_equal(id[1], want);
	assert_int_equal(id[2], want);
	assert_int_equal(id[3], want);
	/* No supplementary group 0 either. */
	assert_non_null(line = strstr(text, "Groups:"));
	line += strlen("Groups:");
	for (;;) {
		char *end;
		unsigned long g;

		while (*line == ' ' || *line == '\t')
			line++;
		if (*line < '0' || *line > '9')
			break;
		g = strtoul(line, &end, 10);
		assert_true(g != 0);
		line = end;
	}
	free(text);
}

static void
assert_owner(const char *rel, uid_t uid, unsigned mode)
{
	struct stat sb;

	assert_int_equal(stat(gwt_path(&env, rel), &sb), 0);
	if (sb.st_uid != uid)
		fail_msg("%s: owned by uid %lu, want %lu", rel,
		    (unsigned long)sb.st_uid, (unsigned long)uid);
	assert_int_equal(sb.st_mode & 07777, mode);
}

static void
test_serves_as_account(void **state)
{
	const char *hdrs[] = { "X-Visor-Actor: PRB-0001",
	    "X-Visor-Purpose: risk-management", NULL };
	const char *body = "{\"id\":\"PRIV-0001\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"EXAMPLE\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\"}}";
	gwt_resp_t resp;
	gwt_gw_t gw;
	char err[256];

	(void)state;
	if (geteuid() != 0)
		skip();
	/* What quickstart gave the account, and what it kept root's. */
	assert_owner("norfolk/data", account_uid, 0700);
	assert_owner("norfolk/data/store.key", account_uid, 0600);
	assert_owner("norfolk/data/audit.key", account_uid, 0600);
	assert_owner("norfolk/data/checkpoint.last", account_uid, 0600);
	assert_owner("pki/norfolk/gateway.key", account_uid, 0600);
	assert_owner("pki/norfolk/ca.key", 0, 0600);
	assert_owner("pki/root.key", 0, 0600);
	assert_owner("pki/norfolk", 0, 0755);
	assert_owner("pki", 0, 0755);

	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	assert_ids(gw.pid, "Uid:", account_uid);
	assert_ids(gw.pid, "Gid:", account_gid);
	assert_true(gwt_log_contains(&gw, "event=privileges-dropped"));
	/* It serves, and writes its store, as the account. */
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(gwt_request(&env, &gw, "norfolk", "agency-probation",
	    "PUT", "/v1/records/PRIV-0001", hdrs, body, strlen(body), &resp, err,
	    sizeof(err)), 0);
	assert_int_equal(resp.status, 201);
	gwt_resp_free(&resp);
	assert_owner("norfolk/data/store.db", account_uid, 0600);
	/* SIGHUP re-reads the TLS key, certificates and CRLs as the account. */
	assert_int_equal(gwt_gw_hup(&gw), 0);
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(gwt_request(&env, &gw, "norfolk", "agency-police", "GET",
	    "/v1/health", NULL, NULL, 0, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	gwt_resp_free(&resp);
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
}

static void
test_root_needs_user(void **state)
{
	const char *cfg;
	char *out = NULL;

	(void)state;
	if (geteuid() != 0)
		skip();
	cfg = config_variant("no-user.json", NULL, NULL);
	assert_int_equal(run_gw(cfg, 0, 0, 0, &out), 1);
	if (strstr(out, "user: missing: visor-gw will not run as root") == NULL)
		fail_msg("start without user: %s", out);
	free(out);
	assert_int_equal(run_gw(cfg, 1, 0, 0, &out), 1);
	if (strstr(out, "user: missing: visor-gw will not run as root") == NULL)
		fail_msg("--check-config without user: %s", out);
	free(out);
	/* With it, --check-config names the account. */
	assert_int_equal(run_gw(gwt_path(&env, "norfolk/gateway.json"), 1, 0, 0,
	    &out), 0);
	assert_non_null(strstr(out, "runs as "));
	assert_non_null(strstr(out, account));
	free(out);
}

static void
test_bad_accounts(void **state)
{
	char *out = NULL;
	struct stat sb;
	const char *key;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(run_gw(config_variant("root.json", "root", NULL), 0, 0,
	    0, &out), 1);
	assert_non_null(strstr(out, "user: 'root' has uid 0"));
	free(out);
	assert_int_equal(run_gw(config_variant("unknown.json",
	    "no-such-visor-account", NULL), 1, 0, 0, &out), 1);
	assert_non_null(strstr(out, "user: no account named "
	    "'no-such-visor-account'"));
	free(out);
	assert_int_equal(run_gw(config_variant("rootgroup.json", account, "root"),
	    0, 0, 0, &out), 1);
	assert_non_null(strstr(out, "group: the group of"));
	free(out);
	assert_int_equal(run_gw(config_variant("badname.json", "-x", NULL), 1, 0,
	    0, &out), 1);
	assert_non_null(strstr(out, "user: must be an account name"));
	free(out);
	assert_int_equal(run_gw(config_variant("grouponly.json", NULL, "staff"),
	    1, 0, 0, &out), 1);
	assert_non_null(strstr(out, "group: needs \"user\""));
	free(out);

	/* A TLS key the account could not re-read on SIGHUP is refused up
	 * front, naming the key and the fix. */
	key = gwt_path(&env, "pki/norfolk/gateway.key");
	assert_int_equal(stat(key, &sb), 0);
	assert_int_equal(chown(key, 0, 0), 0);
	assert_int_equal(run_gw(gwt_path(&env, "norfolk/gateway.json"), 1, 0, 0,
	    &out), 1);
	if (strstr(out, "tls.key: ") == NULL ||
	    strstr(out, "re-reads it on SIGHUP") == NULL)
		fail_msg("root-owned tls.key: %s", out);
	free(out);
	assert_int_equal(run_gw(gwt_path(&env, "norfolk/gateway.json"), 0, 0, 0,
	    &out), 1);
	assert_non_null(strstr(out, "tls.key: "));
	free(out);
	assert_int_equal(chown(key, sb.st_uid, sb.st_gid), 0);
}

/* Started as the account itself (as systemd's User= does), "user" naming
 * it is accepted; naming another account is an error, since only root can
 * switch. */
static void
test_unprivileged_start(void **state)
{
	char *out = NULL;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(run_gw(gwt_path(&env, "norfolk/gateway.json"), 1,
	    account_uid, account_gid, &out), 0);
	assert_non_null(strstr(out, "configuration valid"));
	assert_null(strstr(out, "runs as "));
	free(out);
	assert_int_equal(run_gw(config_variant("self-nouser.json", NULL, NULL), 1,
	    account_uid, account_gid, &out), 0);
	free(out);
	assert_int_equal(run_gw(config_variant("other.json", "root", NULL), 1,
	    account_uid, account_gid, &out), 1);
	assert_non_null(strstr(out, "has uid 0"));
	free(out);
	assert_int_equal(run_gw(config_variant("other2.json", "daemon", NULL), 1,
	    account_uid, account_gid, &out), 1);
	if (strstr(out, "only a gateway started as root can switch") == NULL)
		fail_msg("other account: %s", out);
	free(out);
}

static int
setup(void **state)
{
	(void)state;
	if (geteuid() != 0)
		return 0;	/* each test skips itself */
	if (gwt_env_setup(&env, "norfolk") < 0)
		return -1;
	return read_account();
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
		cmocka_unit_test(test_serves_as_account),
		cmocka_unit_test(test_root_needs_user),
		cmocka_unit_test(test_bad_accounts),
		cmocka_unit_test(test_unprivileged_start),
	};

	return gwt_exit(cmocka_run_group_tests_name("privilege", tests, setup,
	    teardown));
}
