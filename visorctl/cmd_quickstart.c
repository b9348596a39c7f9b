/*
 * visorctl quickstart: a complete local setup (SPEC section 3): the PKI, one
 * gateway configuration, policy and data directory per area, every area a
 * peer of the others on 127.0.0.1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certs/pki.h"
#include "crypto/identity.h"
#include "gateway/store.h"
#include "policy/mappa_default.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "visorctl/commands.h"

#define QS_AREAS_MAX 16
#define QS_PATH_MAX 4096
#define QS_DIR_MAX 2048	/* leaves room for every name joined below */
#define QS_METRICS_OFFSET 1000
#define QS_ACCOUNT "visor-gw"	/* created (useradd --system) when missing */

static const char quickstart_usage[] =
    "usage: visorctl quickstart DIR [--areas norfolk,suffolk] [--base-port 8441]\n"
    "\n"
    "Create a complete working setup for local use and tests in DIR (which must\n"
    "not exist, or be an empty folder of yours; no other user may write it or\n"
    "a folder above it that is not sticky):\n"
    "  DIR/pki/root.crt, root.key            national root (key mode 0600)\n"
    "  DIR/pki/<area>/ca.crt ca.key crl.pem  area CA and its CRL\n"
    "  DIR/pki/<area>/gateway.crt .key       gateway (serverAuth+clientAuth)\n"
    "  DIR/pki/<area>/agency-<type>.crt .key one per agency type\n"
    "  DIR/pki/<area>/auditor.crt .key       urn:visor:<area>:auditor:lay-adviser-1\n"
    "  DIR/pki/<area>/audit.vkey             the area's audit-log verifier key\n"
    "  DIR/<area>/gateway.json policy.json   configuration and default MAPPA policy\n"
    "  DIR/<area>/data/                      store and keys (mode 0700)\n"
    "The first area listens on https://127.0.0.1:<base-port>, the next on\n"
    "base-port+1, ...; metrics on the listen port + 1000.\n"
    "\n"
    "Run as root, the gateways are set up to drop to the system account\n"
    "visor-gw (created with useradd --system if missing; quickstart stops if\n"
    "it cannot be had): \"user\" in each gateway.json, and the data directory\n"
    "and the gateway key owned by that account.  DIR and every folder above\n"
    "it must be searchable by it.\n";

struct qs {
	char dir[QS_DIR_MAX];		/* absolute */
	char areas[QS_AREAS_MAX][IDENTITY_PART_MAX];
	size_t n_areas;
	unsigned base_port;
	int drop;			/* run as root: gateways drop to user */
	char user[64];
	uid_t uid;
	gid_t gid;
};

static int
qs_path(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
qs_path(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outlen) {
		fprintf(stderr, "visorctl quickstart: path too long\n");
		return -1;
	}
	return 0;
}

static int
parse_areas(const char *s, struct qs *q)
{
	const char *p = s;
	size_t i;

	q->n_areas = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (!identity_valid_label(p, len)) {
			fprintf(stderr, "visorctl quickstart: bad area name '%.*s' "
			    "(want [a-z0-9-]{1,32})\n", (int)(len > 64 ? 64 : len), p);
			return -1;
		}
		if (q->n_areas == QS_AREAS_MAX) {
			fprintf(stderr, "visorctl quickstart: at most %d areas\n", QS_AREAS_MAX);
			return -1;
		}
		memcpy(q->areas[q->n_areas], p, len);
		q->areas[q->n_areas][len] = '\0';
		for (i = 0; i < q->n_areas; i++)
			if (strcmp(q->areas[i], q->areas[q->n_areas]) == 0) {
				fprintf(stderr, "visorctl quickstart: area '%s' given twice\n",
				    q->areas[i]);
				return -1;
			}
		q->n_areas++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

static int
parse_port(const char *s, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Nobody but us (and root) may change abs or a folder above it: quickstart
 * writes the configuration, policy and trust anchors there, and whoever can
 * rename an entry of DIR (its owner, or anyone who may write it or a folder
 * above it that is not sticky) could put their own in their place, for the
 * gateways to load at start or at the next SIGHUP.  abs is a real path. */
static int
check_dir_safe(const char *abs)
{
	char p[QS_DIR_MAX];
	struct stat st;
	char *slash;
	int top = 1;

	if (strlen(abs) >= sizeof(p))
		return -1;
	snprintf(p, sizeof(p), "%s", abs);
	for (;;) {
		if (lstat(p, &st) < 0) {
			fprintf(stderr, "visorctl quickstart: %s: %s\n", p,
			    strerror(errno));
			return -1;
		}
		if (top ? st.st_uid != geteuid() :
		    st.st_uid != 0 && st.st_uid != geteuid()) {
			fprintf(stderr, "visorctl quickstart: %s is owned by uid "
			    "%lu: that user could replace the files quickstart "
			    "writes in %s; use a folder that only you (or root) "
			    "control\n", p, (unsigned long)st.st_uid, abs);
			return -1;
		}
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
		    (top || !(st.st_mode & S_ISVTX))) {
			fprintf(stderr, "visorctl quickstart: %s (mode %04o) is "
			    "writable by other users, who could replace the files "
			    "quickstart writes in %s; use a folder that only you "
			    "(or root) control\n", p, (unsigned)(st.st_mode & 07777),
			    abs);
			return -1;
		}
		if (strcmp(p, "/") == 0)
			return 0;
		top = 0;
		if ((slash = strrchr(p, '/')) == p)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

/* DIR must not exist, or be an empty directory of ours that no other user
 * can change (check_dir_safe); created 0755 and made absolute into
 * q->dir. */
static int
prepare_dir(const char *dir, struct qs *q)
{
	struct dirent *e;
	DIR *d;
	char *abs;
	int created = 0;

	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
				closedir(d);
				fprintf(stderr, "visorctl quickstart: %s exists and is not "
				    "empty; refusing to overwrite\n", dir);
				return -1;
			}
		}
		closedir(d);
	} else if (errno != ENOENT) {
		fprintf(stderr, "visorctl quickstart: %s: %s\n", dir, strerror(errno));
		return -1;
	} else if (file_mkdirs(dir, 0755) < 0) {
		fprintf(stderr, "visorctl quickstart: cannot create %s: %s\n", dir,
		    strerror(errno));
		return -1;
	} else {
		created = 1;
	}
	if ((abs = realpath(dir, NULL)) == NULL) {
		fprintf(stderr, "visorctl quickstart: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (strlen(abs) >= sizeof(q->dir)) {
		fprintf(stderr, "visorctl quickstart: %s: path too long\n", abs);
		free(abs);
		return -1;
	}
	if (check_dir_safe(abs) < 0) {
		if (created)
			(void)rmdir(abs);
		free(abs);
		return -1;
	}
	snprintf(q->dir, sizeof(q->dir), "%s", abs);
	free(abs);
	return 0;
}

/* Run useradd for the gateways' system account; its exit status or -1. */
static int
run_useradd(const char *name)
{
	const char *argv[] = { "useradd", "--system", "--user-group",
	    "--no-create-home", "--home-dir", "/nonexistent", "--shell",
	    "/usr/sbin/nologin", "--comment", "visor-gw gateway", name, NULL };
	int status, fd;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		execv("/usr/sbin/useradd", (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* As root: the account the gateways drop to.  QS_ACCOUNT, created when
 * missing (another quickstart may be creating it at the same moment, or
 * hold the lock on /etc/passwd: retry, then look again).  No other account
 * will do: a shared one such as nobody would be given the gateway keys and
 * the store, and every other daemon running as it could read them. */
static int
choose_account(struct qs *q)
{
	struct timespec pause = { 0, 200 * 1000000L };
	const struct passwd *pw;
	int tries;

	for (tries = 0; (pw = getpwnam(QS_ACCOUNT)) == NULL && tries < 5; tries++)
		if (run_useradd(QS_ACCOUNT) != 0)
			nanosleep(&pause, NULL);
	if (pw == NULL) {
		fprintf(stderr, "visorctl quickstart: run as root, the gateways "
		    "drop to the system account %s, which does not exist and "
		    "useradd could not create: create it (useradd --system "
		    "--user-group %s), or run quickstart as an unprivileged "
		    "user\n", QS_ACCOUNT, QS_ACCOUNT);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		fprintf(stderr, "visorctl quickstart: the account %s has uid %u "
		    "and gid %u: the gateways cannot drop to root's uid or "
		    "group\n", QS_ACCOUNT, (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_gid);
		return -1;
	}
	snprintf(q->user, sizeof(q->user), "%s", pw->pw_name);
	q->uid = pw->pw_uid;
	q->gid = pw->pw_gid;
	q->drop = 1;
	return 0;
}

/* Give path to the gateways' account (as root only). */
static int
give(const struct qs *q, const char *path)
{
	if (!q->drop)
		return 0;
	if (chown(path, q->uid, q->gid) < 0) {
		fprintf(stderr, "visorctl quickstart: chown %s %s: %s\n", q->user,
		    path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Warn when a folder above DIR keeps the account out: the gateways would
 * then refuse to start (data_dir not reachable). */
static void
check_reachable(const struct qs *q)
{
	char p[QS_DIR_MAX];
	struct stat st;
	char *slash;

	snprintf(p, sizeof(p), "%s", q->dir);
	while ((slash = strrchr(p, '/')) != NULL) {
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(p, &st) == 0 && !(st.st_mode & S_IXOTH) &&
		    st.st_uid != q->uid)
			fprintf(stderr, "visorctl quickstart: warning: %s (mode %03o) "
			    "is not searchable by %s; the gateways cannot reach "
			    "their files until it is (chmod o+x %s)\n", p,
			    (unsigned)(st.st_mode & 0777), q->user, p);
		if (slash == p)
			break;
	}
}

static int
issue(const char *ca_dir, const char *identity, const char *prefix,
    const pki_leaf_opts_t *o)
{
	char err[512];

	if (pki_issue(ca_dir, identity, prefix, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl quickstart: %s: %s\n", identity, err);
		return -1;
	}
	return 0;
}

/* The area CA and every certificate of one area. */
static int
make_area_pki(const struct qs *q, const char *area)
{
	static const char *const dns[] = { "localhost" };
	static const char *const ips[] = { "127.0.0.1", "::1" };
	pki_leaf_opts_t gw = { .dns = dns, .n_dns = 1, .ips = ips, .n_ips = 2 };
	char root_dir[QS_PATH_MAX], ca_dir[QS_PATH_MAX], prefix[QS_PATH_MAX];
	char uri[IDENTITY_URI_MAX], err[512];
	size_t i;

	if (qs_path(root_dir, sizeof(root_dir), "%s/pki", q->dir) < 0 ||
	    qs_path(ca_dir, sizeof(ca_dir), "%s/pki/%s", q->dir, area) < 0)
		return -1;
	if (pki_area_ca_create(root_dir, area, ca_dir, 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl quickstart: area CA %s: %s\n", area, err);
		return -1;
	}
	snprintf(uri, sizeof(uri), "urn:visor:%s:gateway", area);
	if (qs_path(prefix, sizeof(prefix), "%s/gateway", ca_dir) < 0 ||
	    issue(ca_dir, uri, prefix, &gw) < 0)
		return -1;
	for (i = 0; identity_agency_types[i] != NULL; i++) {
		snprintf(uri, sizeof(uri), "urn:visor:%s:agency:%s", area,
		    identity_agency_types[i]);
		if (qs_path(prefix, sizeof(prefix), "%s/agency-%s", ca_dir,
		    identity_agency_types[i]) < 0 || issue(ca_dir, uri, prefix, NULL) < 0)
			return -1;
	}
	snprintf(uri, sizeof(uri), "urn:visor:%s:auditor:lay-adviser-1", area);
	if (qs_path(prefix, sizeof(prefix), "%s/auditor", ca_dir) < 0 ||
	    issue(ca_dir, uri, prefix, NULL) < 0)
		return -1;
	return 0;
}

/* A JSON array of the given strings. */
static cJSON *
string_array(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;

	for (i = 0; a != NULL && i < n; i++) {
		cJSON *s = cJSON_CreateString(v[i]);
		if (s == NULL || !cJSON_AddItemToArray(a, s)) {
			cJSON_Delete(s);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static int
add_number(cJSON *o, const char *key, double v)
{
	return cJSON_AddNumberToObject(o, key, v) != NULL ? 0 : -1;
}

static int
add_string(cJSON *o, const char *key, const char *v)
{
	return cJSON_AddStringToObject(o, key, v) != NULL ? 0 : -1;
}

static int
add_item(cJSON *o, const char *key, cJSON *item)
{
	if (item == NULL)
		return -1;
	if (!cJSON_AddItemToObject(o, key, item)) {
		cJSON_Delete(item);
		return -1;
	}
	return 0;
}

/* The configuration of area number k, as the gateway's loader expects. */
static cJSON *
gateway_config(const struct qs *q, size_t k)
{
	static const char *const ct[] = { "ct" };
	static const char *const peer_cl[] = { "ct", "level3" };
	const char *area = q->areas[k];
	char v[QS_PATH_MAX], v2[QS_PATH_MAX];
	cJSON *c, *tls = NULL, *cas = NULL, *crls = NULL, *peers = NULL, *cl = NULL;
	cJSON *limits = NULL, *audit = NULL, *transfer = NULL;
	size_t i;

	if ((c = cJSON_CreateObject()) == NULL)
		return NULL;
	if (add_string(c, "area", area) < 0)
		goto fail;
	snprintf(v, sizeof(v), "127.0.0.1:%u", q->base_port + (unsigned)k);
	if (add_string(c, "listen", v) < 0)
		goto fail;
	snprintf(v, sizeof(v), "127.0.0.1:%u",
	    q->base_port + (unsigned)k + QS_METRICS_OFFSET);
	if (add_string(c, "metrics_listen", v) < 0)
		goto fail;

	if ((tls = cJSON_CreateObject()) == NULL || add_item(c, "tls", tls) < 0)
		goto fail;
	snprintf(v, sizeof(v), "%s/pki/%s/gateway.crt", q->dir, area);
	snprintf(v2, sizeof(v2), "%s/pki/%s/gateway.key", q->dir, area);
	if (add_string(tls, "cert", v) < 0 || add_string(tls, "key", v2) < 0)
		goto fail;
	snprintf(v, sizeof(v), "%s/pki/root.crt", q->dir);
	if (add_string(tls, "root", v) < 0)
		goto fail;
	if ((cas = cJSON_CreateArray()) == NULL || add_item(tls, "cas", cas) < 0 ||
	    (crls = cJSON_CreateArray()) == NULL || add_item(tls, "crls", crls) < 0)
		goto fail;
	for (i = 0; i < q->n_areas; i++) {
		cJSON *s;
		snprintf(v, sizeof(v), "%s/pki/%s/ca.crt", q->dir, q->areas[i]);
		if ((s = cJSON_CreateString(v)) == NULL || !cJSON_AddItemToArray(cas, s)) {
			cJSON_Delete(s);
			goto fail;
		}
		snprintf(v, sizeof(v), "%s/pki/%s/crl.pem", q->dir, q->areas[i]);
		if ((s = cJSON_CreateString(v)) == NULL || !cJSON_AddItemToArray(crls, s)) {
			cJSON_Delete(s);
			goto fail;
		}
	}

	snprintf(v, sizeof(v), "%s/%s/policy.json", q->dir, area);
	snprintf(v2, sizeof(v2), "%s/%s/data", q->dir, area);
	if (add_string(c, "policy", v) < 0 || add_string(c, "data_dir", v2) < 0)
		goto fail;

	if ((peers = cJSON_CreateArray()) == NULL || add_item(c, "peers", peers) < 0 ||
	    (cl = cJSON_CreateObject()) == NULL || add_item(c, "clearances", cl) < 0)
		goto fail;
	snprintf(v, sizeof(v), "urn:visor:%s:agency:police", area);
	if (add_item(cl, v, string_array(ct, 1)) < 0)
		goto fail;
	for (i = 0; i < q->n_areas; i++) {
		cJSON *p;
		if (i == k)
			continue;
		if ((p = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(peers, p)) {
			cJSON_Delete(p);
			goto fail;
		}
		snprintf(v, sizeof(v), "https://127.0.0.1:%u", q->base_port + (unsigned)i);
		if (add_string(p, "area", q->areas[i]) < 0 || add_string(p, "url", v) < 0)
			goto fail;
		/* The peer's checkpoints are witnessed here (written by
		 * make_area_gateway for that area, before any gateway
		 * starts). */
		snprintf(v, sizeof(v), "%s/pki/%s/audit.vkey", q->dir, q->areas[i]);
		if (add_string(p, "audit_vkey", v) < 0)
			goto fail;
		snprintf(v, sizeof(v), "urn:visor:%s:gateway", q->areas[i]);
		if (add_item(cl, v, string_array(peer_cl, 2)) < 0)
			goto fail;
	}

	if ((limits = cJSON_CreateObject()) == NULL || add_item(c, "limits", limits) < 0 ||
	    add_number(limits, "max_body_bytes", 262144) < 0 ||
	    add_number(limits, "max_header_bytes", 16384) < 0 ||
	    add_number(limits, "max_connections", 4096) < 0 ||
	    add_number(limits, "header_timeout_ms", 10000) < 0 ||
	    add_number(limits, "body_timeout_ms", 30000) < 0 ||
	    add_number(limits, "idle_timeout_ms", 60000) < 0 ||
	    add_number(limits, "max_json_depth", 32) < 0)
		goto fail;
	if ((audit = cJSON_CreateObject()) == NULL || add_item(c, "audit", audit) < 0 ||
	    add_number(audit, "checkpoint_interval_ms", 1000) < 0)
		goto fail;
	if ((transfer = cJSON_CreateObject()) == NULL ||
	    add_item(c, "transfer", transfer) < 0 ||
	    add_number(transfer, "deadline_s", 86400) < 0 ||
	    add_number(transfer, "max_in_flight_per_peer", 8) < 0 ||
	    add_number(transfer, "retry_base_ms", 500) < 0 ||
	    add_number(transfer, "retry_max_ms", 60000) < 0 ||
	    add_number(transfer, "outbox_max", 100000) < 0)
		goto fail;
	if (add_number(c, "threads", 2) < 0)
		goto fail;
	if (q->drop && add_string(c, "user", q->user) < 0)
		goto fail;
	return c;
fail:
	cJSON_Delete(c);
	return NULL;
}

/* DIR/<area>/ with gateway.json, policy.json, data/ (keys), and the area's
 * audit.vkey under DIR/pki/<area>/. */
static int
make_area_gateway(const struct qs *q, size_t k)
{
	const char *area = q->areas[k];
	const char *policy = policy_mappa_default_json();
	char p[QS_PATH_MAX], data[QS_PATH_MAX], err[512];
	buf_t vkey = BUF_INIT, json = BUF_INIT;
	cJSON *cfg = NULL;
	char *text = NULL;
	int rc = -1;

	if (qs_path(p, sizeof(p), "%s/%s", q->dir, area) < 0 ||
	    qs_path(data, sizeof(data), "%s/%s/data", q->dir, area) < 0)
		return -1;
	if (file_mkdirs(p, 0755) < 0 || file_mkdirs(data, 0700) < 0 ||
	    chmod(data, 0700) < 0) {
		fprintf(stderr, "visorctl quickstart: cannot create %s: %s\n", data,
		    strerror(errno));
		return -1;
	}
	if (store_init_keys(data, area, &vkey, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl quickstart: %s keys: %s\n", area, err);
		goto out;
	}
	if (vkey.len == 0 || buf_puts(&vkey, "\n") < 0 ||
	    qs_path(p, sizeof(p), "%s/pki/%s/audit.vkey", q->dir, area) < 0 ||
	    file_write_atomic(p, vkey.data, vkey.len, 0644) < 0) {
		fprintf(stderr, "visorctl quickstart: cannot write %s/pki/%s/audit.vkey\n",
		    q->dir, area);
		goto out;
	}
	if (policy == NULL ||
	    qs_path(p, sizeof(p), "%s/%s/policy.json", q->dir, area) < 0 ||
	    file_write_atomic(p, policy, strlen(policy), 0644) < 0) {
		fprintf(stderr, "visorctl quickstart: cannot write %s/%s/policy.json\n",
		    q->dir, area);
		goto out;
	}
	if ((cfg = gateway_config(q, k)) == NULL || (text = cJSON_Print(cfg)) == NULL) {
		fprintf(stderr, "visorctl quickstart: out of memory\n");
		goto out;
	}
	if (buf_puts(&json, text) < 0 || buf_puts(&json, "\n") < 0 ||
	    qs_path(p, sizeof(p), "%s/%s/gateway.json", q->dir, area) < 0 ||
	    file_write_atomic(p, json.data, json.len, 0644) < 0) {
		fprintf(stderr, "visorctl quickstart: cannot write %s\n", p);
		goto out;
	}
	if (q->drop) {
		/* What the gateway reads or writes after dropping to the
		 * account: its data directory and keys, and the TLS key it
		 * re-reads on SIGHUP.  CA and agency keys stay root's. */
		static const char *const own[] = { "", "/store.key", "/audit.key",
		    "/checkpoint.last" };
		size_t i;

		for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
			if (qs_path(p, sizeof(p), "%s%s", data, own[i]) < 0 ||
			    give(q, p) < 0)
				goto out;
		if (qs_path(p, sizeof(p), "%s/pki/%s/gateway.key", q->dir, area) < 0 ||
		    give(q, p) < 0)
			goto out;
	}
	rc = 0;
out:
	cJSON_free(text);
	cJSON_Delete(cfg);
	buf_free(&vkey);
	buf_free(&json);
	return rc;
}

/* As root the PKI folders are made 0755: after the drop, a gateway re-reads
 * certificates and CRLs there on SIGHUP.  The keys in them stay 0600 and
 * root's, but for the gateway key (given to the account). */
static int
open_pki_folders(const struct qs *q)
{
	char p[QS_PATH_MAX];
	size_t k;

	snprintf(p, sizeof(p), "%s", q->dir);
	if (chmod(q->dir, 0755) < 0 ||
	    qs_path(p, sizeof(p), "%s/pki", q->dir) < 0 || chmod(p, 0755) < 0)
		goto fail;
	for (k = 0; k < q->n_areas; k++)
		if (qs_path(p, sizeof(p), "%s/pki/%s", q->dir, q->areas[k]) < 0 ||
		    chmod(p, 0755) < 0)
			goto fail;
	return 0;
fail:
	fprintf(stderr, "visorctl quickstart: chmod 0755 %s: %s\n", p,
	    strerror(errno));
	return -1;
}

int
cmd_quickstart(int argc, char **argv)
{
	struct qs *q;
	const char *dir = NULL, *areas = "norfolk,suffolk";
	char root_dir[QS_PATH_MAX], err[512];
	size_t k;
	int i, rc = 1;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(quickstart_usage, stdout);
			return 0;
		}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		fprintf(stderr, "visorctl quickstart: out of memory\n");
		return 1;
	}
	q->base_port = 8441;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--areas") == 0 && i + 1 < argc) {
			areas = argv[++i];
		} else if (strcmp(argv[i], "--base-port") == 0 && i + 1 < argc) {
			if (parse_port(argv[++i], &q->base_port) < 0) {
				fprintf(stderr, "visorctl quickstart: --base-port must be "
				    "1..65535\n");
				rc = 2;
				goto out;
			}
		} else if (strncmp(argv[i], "--", 2) == 0) {
			fprintf(stderr, "visorctl quickstart: unknown option or missing "
			    "value '%s'\n%s", argv[i], quickstart_usage);
			rc = 2;
			goto out;
		} else if (dir == NULL) {
			dir = argv[i];
		} else {
			fprintf(stderr, "visorctl quickstart: unexpected argument '%s'\n",
			    argv[i]);
			rc = 2;
			goto out;
		}
	}
	if (dir == NULL || dir[0] == '\0') {
		fputs(quickstart_usage, stderr);
		rc = 2;
		goto out;
	}
	if (parse_areas(areas, q) < 0) {
		rc = 2;
		goto out;
	}
	/* Every listen and metrics port must exist. */
	if (q->base_port + q->n_areas - 1 + QS_METRICS_OFFSET > 65535) {
		fprintf(stderr, "visorctl quickstart: --base-port %u too high for %zu "
		    "areas (metrics listen on port + %d)\n", q->base_port, q->n_areas,
		    QS_METRICS_OFFSET);
		rc = 2;
		goto out;
	}
	if (geteuid() == 0 && choose_account(q) < 0)
		goto out;
	if (prepare_dir(dir, q) < 0)
		goto out;
	if (qs_path(root_dir, sizeof(root_dir), "%s/pki", q->dir) < 0)
		goto out;
	if (pki_root_create(root_dir, 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl quickstart: root: %s\n", err);
		goto out;
	}
	for (k = 0; k < q->n_areas; k++)
		if (make_area_pki(q, q->areas[k]) < 0)
			goto incomplete;
	for (k = 0; k < q->n_areas; k++)
		if (make_area_gateway(q, k) < 0)
			goto incomplete;
	if (q->drop && open_pki_folders(q) < 0)
		goto incomplete;
	printf("quickstart: %zu area(s) in %s\n", q->n_areas, q->dir);
	for (k = 0; k < q->n_areas; k++)
		printf("  %-12s https://127.0.0.1:%u  metrics http://127.0.0.1:%u  "
		    "visor-gw --config %s/%s/gateway.json\n", q->areas[k],
		    q->base_port + (unsigned)k,
		    q->base_port + (unsigned)k + QS_METRICS_OFFSET, q->dir, q->areas[k]);
	printf("  trust anchor %s/pki/root.crt; client certificates in %s/pki/<area>/\n",
	    q->dir, q->dir);
	if (q->drop) {
		printf("  started as root, the gateways run as %s (uid %lu): \"user\" "
		    "in gateway.json\n", q->user, (unsigned long)q->uid);
		check_reachable(q);
	}
	rc = 0;
	goto out;
incomplete:
	fprintf(stderr, "visorctl quickstart: %s is incomplete; remove it before "
	    "running quickstart again\n", q->dir);
out:
	free(q);
	return rc;
}
