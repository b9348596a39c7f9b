#include "gateway/config.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/identity.h"
#include "crypto/note.h"
#include "util/fileio.h"
#include "util/json.h"

#define CONFIG_MAX_SIZE (1 << 20)

typedef struct {
	const char *dir;	/* folder of the config file */
	char *err;
	size_t errlen;
} ctx_t;

static int
fail(ctx_t *c, const char *key, const char *msg)
{
	snprintf(c->err, c->errlen, "%s: %s", key, msg);
	return -1;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int
check_keys(ctx_t *c, const cJSON *obj, const char *prefix,
    const char *const *allowed)
{
	const cJSON *it;
	size_t i;

	for (it = obj->child; it != NULL; it = it->next) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(it->string, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			snprintf(c->err, c->errlen, "%s%s%s: unknown key", prefix,
			    *prefix ? "." : "", it->string);
			return -1;
		}
	}
	return 0;
}

static int
get_string(ctx_t *c, const cJSON *obj, const char *key, const char *name,
    char *out, size_t outlen, int required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL) {
		if (required)
			return fail(c, name, "missing");
		return 1;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return fail(c, name, "must be a non-empty string");
	if (strlen(v->valuestring) >= outlen)
		return fail(c, name, "too long");
	memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
	return 0;
}

/* Resolve a file name against the config folder and check it exists. */
static int
get_file(ctx_t *c, const cJSON *obj, const char *key, const char *name,
    char *out, size_t outlen, int required)
{
	char raw[1024];
	struct stat st;
	int rc;

	if ((rc = get_string(c, obj, key, name, raw, sizeof(raw), required)) != 0)
		return rc;
	if (file_join(out, outlen, c->dir, raw) < 0)
		return fail(c, name, "path too long");
	if (stat(out, &st) < 0) {
		snprintf(c->err, c->errlen, "%s: %s: %s", name, out, strerror(errno));
		return -1;
	}
	return 0;
}

static int
get_uint(ctx_t *c, const cJSON *obj, const char *key, const char *name,
    int64_t min, int64_t max, int64_t def, int64_t *out)
{
	char msg[96];
	int rc = json_get_int(obj, key, min, max, out);

	if (rc == 1) {
		*out = def;
		return 0;
	}
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld",
		    (long long)min, (long long)max);
		return fail(c, name, msg);
	}
	return 0;
}

static int
parse_hostport(ctx_t *c, const char *name, const char *s, char *host,
    size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= hostlen)
		return fail(c, name, "must be host:port");
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || p < 1 || p > 65535)
		return fail(c, name, "port must be 1-65535");
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (int)p;
	return 0;
}

static int
get_file_list(ctx_t *c, const cJSON *obj, const char *key, const char *name,
    char **out, size_t *n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	char path[1024], label[96];
	struct stat st;

	*n = 0;
	if (arr == NULL)
		return 0;
	if (!cJSON_IsArray(arr))
		return fail(c, name, "must be an array of file names");
	cJSON_ArrayForEach(it, arr) {
		snprintf(label, sizeof(label), "%s[%zu]", name, *n);
		if (*n == CONFIG_MAX_FILES)
			return fail(c, name, "too many files");
		if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
			return fail(c, label, "must be a non-empty string");
		if (file_join(path, sizeof(path), c->dir, it->valuestring) < 0)
			return fail(c, label, "path too long");
		if (stat(path, &st) < 0) {
			snprintf(c->err, c->errlen, "%s: %s: %s", label, path,
			    strerror(errno));
			return -1;
		}
		if ((out[*n] = strdup(path)) == NULL)
			return fail(c, label, "out of memory");
		(*n)++;
	}
	return 0;
}

/*
 * A peer's audit verifier key (optional): the file holds SPEC 8's one
 * audit.vkey line, which must parse and name the peer's log
 * ("visor.<area>/audit"), or every checkpoint the peer sends would be
 * refused as forged.  The line is kept, not the file name: a reload that
 * does not restart reads the file again only with the peers (a restart
 * key, config_restart_changes).  0, or -1 with the key named.
 */
static int
get_peer_vkey(ctx_t *c, const cJSON *obj, const char *label,
    config_peer_t *p)
{
	char *text = NULL, why[160], origin[64];
	note_verifier_t *v;
	size_t len;
	int rc;

	if ((rc = get_file(c, obj, "audit_vkey", label, p->audit_vkey_path,
	    sizeof(p->audit_vkey_path), 0)) != 0)
		return rc < 0 ? -1 : 0;
	if (file_read_all(p->audit_vkey_path, CONFIG_VKEY_MAX - 1, &text,
	    &len) < 0) {
		snprintf(c->err, c->errlen, "%s: %s: %s", label,
		    p->audit_vkey_path, errno == EFBIG ? "too large for a "
		    "verifier key line" : strerror(errno));
		return -1;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
	    text[len - 1] == ' '))
		len--;
	if ((v = note_verifier_parse(text, len, why, sizeof(why))) == NULL) {
		free(text);
		return fail(c, label, why);
	}
	snprintf(origin, sizeof(origin), "visor.%s/audit", p->area);
	rc = strcmp(note_verifier_name(v), origin);
	note_verifier_free(v);
	if (rc != 0) {
		free(text);
		snprintf(c->err, c->errlen, "%s: %s: is not the key of %s's "
		    "audit log (%s)", label, p->audit_vkey_path, p->area, origin);
		return -1;
	}
	memcpy(p->audit_vkey, text, len);
	p->audit_vkey[len] = '\0';
	free(text);
	return 0;
}

static int
parse_peers(ctx_t *c, config_t *cfg, const cJSON *arr)
{
	static const char *const keys[] = { "area", "url", "audit_vkey", NULL };
	const cJSON *it;
	char label[64];
	config_peer_t *p;
	const char *hp;
	char hostport[200];
	size_t i;

	if (arr == NULL)
		return 0;
	if (!cJSON_IsArray(arr))
		return fail(c, "peers", "must be an array");
	cJSON_ArrayForEach(it, arr) {
		snprintf(label, sizeof(label), "peers[%zu]", cfg->n_peers);
		if (cfg->n_peers == CONFIG_MAX_PEERS)
			return fail(c, "peers", "too many peers");
		if (!cJSON_IsObject(it))
			return fail(c, label, "must be an object");
		if (check_keys(c, it, label, keys) < 0)
			return -1;
		p = &cfg->peers[cfg->n_peers];
		snprintf(label, sizeof(label), "peers[%zu].area", cfg->n_peers);
		if (get_string(c, it, "area", label, p->area, sizeof(p->area), 1) < 0)
			return -1;
		if (!identity_valid_label(p->area, strlen(p->area)))
			return fail(c, label, "must match [a-z0-9-]{1,32}");
		if (strcmp(p->area, cfg->area) == 0)
			return fail(c, label, "a gateway is not its own peer");
		for (i = 0; i < cfg->n_peers; i++)
			if (strcmp(cfg->peers[i].area, p->area) == 0)
				return fail(c, label, "duplicate peer area");
		snprintf(label, sizeof(label), "peers[%zu].url", cfg->n_peers);
		if (get_string(c, it, "url", label, p->url, sizeof(p->url), 1) < 0)
			return -1;
		if (strncmp(p->url, "https://", 8) != 0)
			return fail(c, label, "must be an https:// URL");
		hp = p->url + 8;
		i = strcspn(hp, "/");
		if (i == 0 || i >= sizeof(hostport) || (hp[i] != '\0' &&
		    strcmp(hp + i, "/") != 0))
			return fail(c, label, "must be https://host:port with no path");
		memcpy(hostport, hp, i);
		hostport[i] = '\0';
		if (parse_hostport(c, label, hostport, p->host, sizeof(p->host),
		    &p->port) < 0)
			return -1;
		snprintf(label, sizeof(label), "peers[%zu].audit_vkey",
		    cfg->n_peers);
		if (get_peer_vkey(c, it, label, p) < 0)
			return -1;
		cfg->n_peers++;
	}
	return 0;
}

static int
parse_clearances(ctx_t *c, config_t *cfg, const cJSON *obj)
{
	const cJSON *it, *g;
	config_clearance_t *cl;
	identity_t id;
	char label[200], why[128];

	if (obj == NULL)
		return 0;
	if (!cJSON_IsObject(obj))
		return fail(c, "clearances", "must be an object of identity: [clearances]");
	for (it = obj->child; it != NULL; it = it->next) {
		snprintf(label, sizeof(label), "clearances.%.150s", it->string);
		if (cfg->n_clearances == CONFIG_MAX_CLEARANCES)
			return fail(c, "clearances", "too many entries");
		if (identity_parse(it->string, strlen(it->string), &id, why,
		    sizeof(why)) < 0)
			return fail(c, label, why);
		if (!cJSON_IsArray(it))
			return fail(c, label, "must be an array of clearance names");
		cl = &cfg->clearances[cfg->n_clearances++];
		memcpy(cl->identity, id.uri, strlen(id.uri) + 1);
		cJSON_ArrayForEach(g, it) {
			if (cl->n_grants == CONFIG_MAX_GRANTS)
				return fail(c, label, "too many clearances");
			if (!cJSON_IsString(g) ||
			    !identity_valid_label(g->valuestring, strlen(g->valuestring)))
				return fail(c, label, "clearance names match [a-z0-9-]{1,32}");
			if ((cl->grants[cl->n_grants++] = strdup(g->valuestring)) == NULL)
				return fail(c, label, "out of memory");
		}
	}
	return 0;
}

/* The data directory holds the store and its keys: whoever may write in
 * it could delete or swap store.db, checkpoint.last or a key for their own
 * (the files' 0600 modes guard only their contents). */
static int
check_data_dir(ctx_t *c, const char *path)
{
	mode_t mode = 0;

	if (file_check_private_dir(path, &mode) == 0)
		return 0;
	if (errno == ENOTDIR)
		snprintf(c->err, c->errlen, "data_dir: %s is not a directory",
		    path);
	else if (errno == EPERM)
		snprintf(c->err, c->errlen, "data_dir: %s (mode %04o) is writable "
		    "by group or others, who could replace the store or its "
		    "keys: chmod 0700 %s", path, (unsigned)mode, path);
	else
		snprintf(c->err, c->errlen, "data_dir: %s: %s", path,
		    strerror(errno));
	return -1;
}

/* An account or group name as useradd(8) accepts it: the name is only
 * looked up (privdrop), but a clear error beats a failed lookup of junk. */
static int
get_account_name(ctx_t *c, const cJSON *root, const char *key, char *out,
    size_t outlen)
{
	size_t i, n;
	int rc;

	if ((rc = get_string(c, root, key, key, out, outlen, 0)) != 0)
		return rc < 0 ? -1 : 0;
	n = strlen(out);
	for (i = 0; i < n; i++) {
		char ch = out[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		    (ch == '-' && i > 0)))
			return fail(c, key, "must be an account name "
			    "([A-Za-z0-9_.-], 1-32 bytes, not starting with '-')");
	}
	return 0;
}

static int
parse_section(ctx_t *c, const cJSON *root, const char *key, const cJSON **out,
    const char *const *allowed)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, key);

	*out = NULL;
	if (s == NULL)
		return 0;
	if (!cJSON_IsObject(s))
		return fail(c, key, "must be an object");
	if (check_keys(c, s, key, allowed) < 0)
		return -1;
	*out = s;
	return 0;
}

static int
config_parse(ctx_t *c, config_t *cfg, const cJSON *root)
{
	static const char *const top[] = { "area", "listen", "metrics_listen",
	    "tls", "policy", "data_dir", "peers", "clearances", "limits", "audit",
	    "transfer", "threads", "user", "group", NULL };
	static const char *const tls_keys[] = { "cert", "key", "root", "cas",
	    "crls", NULL };
	static const char *const limit_keys[] = { "max_body_bytes",
	    "max_header_bytes", "max_connections", "header_timeout_ms",
	    "body_timeout_ms", "idle_timeout_ms", "max_json_depth",
	    "auth_fail_audit_per_second", "store_busy_timeout_ms",
	    "store_wait_max_ms",
	    "record_cache_mib", "idempotency_keep_hours",
	    "max_request_memory_mib", "identity_requests_per_second",
	    "identity_request_burst", NULL };
	static const char *const audit_keys[] = { "checkpoint_interval_ms",
	    "witness_interval_s", NULL };
	static const char *const transfer_keys[] = { "deadline_s",
	    "max_in_flight_per_peer", "retry_base_ms", "retry_max_ms",
	    "outbox_max", NULL };
	const cJSON *tls, *limits, *audit, *transfer;
	char buf[256];
	int64_t v;

	if (!cJSON_IsObject(root))
		return fail(c, "(top level)", "must be a JSON object");
	if (check_keys(c, root, "", top) < 0)
		return -1;
	if (get_string(c, root, "area", "area", cfg->area, sizeof(cfg->area), 1) < 0)
		return -1;
	if (!identity_valid_label(cfg->area, strlen(cfg->area)))
		return fail(c, "area", "must match [a-z0-9-]{1,32}");
	if (get_string(c, root, "listen", "listen", buf, sizeof(buf), 1) < 0 ||
	    parse_hostport(c, "listen", buf, cfg->listen_host,
	    sizeof(cfg->listen_host), &cfg->listen_port) < 0)
		return -1;
	if (get_string(c, root, "metrics_listen", "metrics_listen", buf,
	    sizeof(buf), 0) == 0) {
		if (parse_hostport(c, "metrics_listen", buf, cfg->metrics_host,
		    sizeof(cfg->metrics_host), &cfg->metrics_port) < 0)
			return -1;
		/* Metrics are plain HTTP: loopback only. */
		if (strcmp(cfg->metrics_host, "127.0.0.1") != 0 &&
		    strcmp(cfg->metrics_host, "::1") != 0 &&
		    strcmp(cfg->metrics_host, "localhost") != 0)
			return fail(c, "metrics_listen", "must be a loopback address");
		/* Caught here, not first at the bind of a start that
		 * --check-config said would work. */
		if (cfg->metrics_port == cfg->listen_port &&
		    (strcmp(cfg->metrics_host, cfg->listen_host) == 0 ||
		    strcmp(cfg->listen_host, "0.0.0.0") == 0 ||
		    strcmp(cfg->listen_host, "::") == 0 ||
		    strcmp(cfg->listen_host, "localhost") == 0 ||
		    strcmp(cfg->metrics_host, "localhost") == 0))
			return fail(c, "metrics_listen", "is the address and port "
			    "of listen: give the metrics listener a port of its own");
	} else if (c->err[0] != '\0') {
		return -1;
	}
	if (parse_section(c, root, "tls", &tls, tls_keys) < 0)
		return -1;
	if (tls == NULL)
		return fail(c, "tls", "missing");
	if (get_file(c, tls, "cert", "tls.cert", cfg->tls_cert,
	    sizeof(cfg->tls_cert), 1) < 0 ||
	    get_file(c, tls, "key", "tls.key", cfg->tls_key, sizeof(cfg->tls_key), 1) < 0 ||
	    get_file(c, tls, "root", "tls.root", cfg->tls_root,
	    sizeof(cfg->tls_root), 1) < 0)
		return -1;
	if (file_check_private(cfg->tls_key) < 0)
		return fail(c, "tls.key", file_refusal(errno, FILE_REFUSAL_KEY));
	if (get_file_list(c, tls, "cas", "tls.cas", cfg->tls_cas, &cfg->n_cas) < 0 ||
	    get_file_list(c, tls, "crls", "tls.crls", cfg->tls_crls,
	    &cfg->n_crls) < 0)
		return -1;
	if (cfg->n_cas == 0)
		return fail(c, "tls.cas", "at least the area's own CA certificate is needed");
	if (get_file(c, root, "policy", "policy", cfg->policy,
	    sizeof(cfg->policy), 1) < 0 ||
	    get_file(c, root, "data_dir", "data_dir", cfg->data_dir,
	    sizeof(cfg->data_dir), 1) < 0 ||
	    check_data_dir(c, cfg->data_dir) < 0)
		return -1;
	if (parse_peers(c, cfg, cJSON_GetObjectItemCaseSensitive(root, "peers")) < 0 ||
	    parse_clearances(c, cfg,
	    cJSON_GetObjectItemCaseSensitive(root, "clearances")) < 0)
		return -1;
	if (parse_section(c, root, "limits", &limits, limit_keys) < 0)
		return -1;
	if (get_uint(c, limits, "max_body_bytes", "limits.max_body_bytes", 1024,
	    64 << 20, 256 << 10, &v) < 0)
		return -1;
	cfg->max_body_bytes = (size_t)v;
	if (get_uint(c, limits, "max_header_bytes", "limits.max_header_bytes",
	    1024, 1 << 20, 16 << 10, &v) < 0)
		return -1;
	cfg->max_header_bytes = (size_t)v;
	if (get_uint(c, limits, "max_connections", "limits.max_connections", 1,
	    1000000, 4096, &v) < 0)
		return -1;
	cfg->max_connections = (unsigned)v;
	if (get_uint(c, limits, "header_timeout_ms", "limits.header_timeout_ms",
	    100, 600000, 10000, &v) < 0)
		return -1;
	cfg->header_timeout_ms = (unsigned)v;
	if (get_uint(c, limits, "body_timeout_ms", "limits.body_timeout_ms", 100,
	    600000, 30000, &v) < 0)
		return -1;
	cfg->body_timeout_ms = (unsigned)v;
	if (get_uint(c, limits, "idle_timeout_ms", "limits.idle_timeout_ms", 100,
	    3600000, 60000, &v) < 0)
		return -1;
	cfg->idle_timeout_ms = (unsigned)v;
	if (get_uint(c, limits, "max_json_depth", "limits.max_json_depth", 4,
	    256, JSON_DEFAULT_MAX_DEPTH, &v) < 0)
		return -1;
	cfg->max_json_depth = (int)v;
	if (get_uint(c, limits, "auth_fail_audit_per_second",
	    "limits.auth_fail_audit_per_second", 1, 1000000, 100, &v) < 0)
		return -1;
	cfg->auth_fail_audit_per_second = (unsigned)v;
	if (get_uint(c, limits, "store_busy_timeout_ms",
	    "limits.store_busy_timeout_ms", 10, 60000, 5000, &v) < 0)
		return -1;
	cfg->store_busy_timeout_ms = (unsigned)v;
	/* Under a second would refuse jobs that only wait for a busy
	 * writer's ordinary group commits; past ten minutes every client
	 * has given up long before. */
	if (get_uint(c, limits, "store_wait_max_ms",
	    "limits.store_wait_max_ms", 1000, 600000, 10000, &v) < 0)
		return -1;
	cfg->store_wait_max_ms = (unsigned)v;
	if (get_uint(c, limits, "record_cache_mib", "limits.record_cache_mib",
	    0, 65536, 32, &v) < 0)
		return -1;
	cfg->record_cache_mib = (unsigned)v;
	if (get_uint(c, limits, "idempotency_keep_hours",
	    "limits.idempotency_keep_hours", 1, 87600, 168, &v) < 0)
		return -1;
	cfg->idempotency_keep_hours = (unsigned)v;
	if (get_uint(c, limits, "max_request_memory_mib",
	    "limits.max_request_memory_mib", 1, 65536, 64, &v) < 0)
		return -1;
	cfg->max_request_memory_mib = (unsigned)v;
	/* Per client identity, every request but /v1/health (server.c, rate
	 * limits); changed by a reload. */
	if (get_uint(c, limits, "identity_requests_per_second",
	    "limits.identity_requests_per_second", 0, 1000000,
	    CONFIG_DEFAULT_IDENTITY_RATE, &v) < 0)
		return -1;
	cfg->identity_requests_per_second = (unsigned)v;
	if (get_uint(c, limits, "identity_request_burst",
	    "limits.identity_request_burst", 1, 1000000,
	    CONFIG_DEFAULT_IDENTITY_BURST, &v) < 0)
		return -1;
	cfg->identity_request_burst = (unsigned)v;
	if (parse_section(c, root, "audit", &audit, audit_keys) < 0 ||
	    get_uint(c, audit, "checkpoint_interval_ms",
	    "audit.checkpoint_interval_ms", 10, 3600000, 1000, &v) < 0)
		return -1;
	cfg->checkpoint_interval_ms = (unsigned)v;
	if (get_uint(c, audit, "witness_interval_s", "audit.witness_interval_s",
	    0, 86400, 10, &v) < 0)
		return -1;
	cfg->witness_interval_s = (unsigned)v;
	if (parse_section(c, root, "transfer", &transfer, transfer_keys) < 0)
		return -1;
	if (get_uint(c, transfer, "deadline_s", "transfer.deadline_s", 1,
	    30 * 86400, 86400, &v) < 0)
		return -1;
	cfg->transfer_deadline_s = (unsigned)v;
	if (get_uint(c, transfer, "max_in_flight_per_peer",
	    "transfer.max_in_flight_per_peer", 1, 256, 8, &v) < 0)
		return -1;
	cfg->max_in_flight_per_peer = (unsigned)v;
	if (get_uint(c, transfer, "retry_base_ms", "transfer.retry_base_ms", 10,
	    600000, 500, &v) < 0)
		return -1;
	cfg->retry_base_ms = (unsigned)v;
	if (get_uint(c, transfer, "retry_max_ms", "transfer.retry_max_ms", 10,
	    86400000, 60000, &v) < 0)
		return -1;
	cfg->retry_max_ms = (unsigned)v;
	if (cfg->retry_max_ms < cfg->retry_base_ms)
		return fail(c, "transfer.retry_max_ms", "must be >= retry_base_ms");
	if (get_uint(c, transfer, "outbox_max", "transfer.outbox_max", 1,
	    100000000, 100000, &v) < 0)
		return -1;
	cfg->outbox_max = (size_t)v;
	if (get_uint(c, root, "threads", "threads", 1, 64, 2, &v) < 0)
		return -1;
	cfg->threads = (unsigned)v;
	if (get_account_name(c, root, "user", cfg->user, sizeof(cfg->user)) < 0 ||
	    get_account_name(c, root, "group", cfg->group, sizeof(cfg->group)) < 0)
		return -1;
	if (cfg->group[0] != '\0' && cfg->user[0] == '\0')
		return fail(c, "group", "needs \"user\" (the account to drop to)");
	return 0;
}

config_t *
config_load(const char *path, char *err, size_t errlen)
{
	char dirbuf[1024], perr[160];
	char *text = NULL;
	size_t len;
	cJSON *root = NULL;
	config_t *cfg = NULL;
	ctx_t c;

	err[0] = '\0';
	if (strlen(path) >= sizeof(dirbuf)) {
		snprintf(err, errlen, "%s: path too long", path);
		return NULL;
	}
	memcpy(dirbuf, path, strlen(path) + 1);
	c.dir = dirname(dirbuf);
	c.err = err;
	c.errlen = errlen;
	if (file_read_all(path, CONFIG_MAX_SIZE, &text, &len) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((root = json_parse_strict(text, len, 16, perr, sizeof(perr))) == NULL) {
		snprintf(err, errlen, "%s: %s", path, perr);
		goto fail;
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (config_parse(&c, cfg, root) < 0)
		goto fail;
	cJSON_Delete(root);
	free(text);
	return cfg;
fail:
	config_free(cfg);
	cJSON_Delete(root);
	free(text);
	return NULL;
}

void
config_free(config_t *c)
{
	size_t i, k;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_cas; i++)
		free(c->tls_cas[i]);
	for (i = 0; i < c->n_crls; i++)
		free(c->tls_crls[i]);
	for (i = 0; i < c->n_clearances; i++)
		for (k = 0; k < c->clearances[i].n_grants; k++)
			free(c->clearances[i].grants[k]);
	free(c);
}

size_t
config_clearances_for(const config_t *c, const char *uri,
    const char *const **out)
{
	size_t i;

	for (i = 0; i < c->n_clearances; i++) {
		if (strcmp(c->clearances[i].identity, uri) == 0) {
			*out = (const char *const *)c->clearances[i].grants;
			return c->clearances[i].n_grants;
		}
	}
	*out = NULL;
	return 0;
}

const config_peer_t *
config_peer(const config_t *c, const char *area)
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (strcmp(c->peers[i].area, area) == 0)
			return &c->peers[i];
	return NULL;
}

int
config_peers_equal(const config_t *a, const config_t *b)
{
	const config_peer_t *q;
	size_t i;

	if (a->n_peers != b->n_peers)
		return 0;
	/* Areas are unique within a configuration (config_load). */
	for (i = 0; i < a->n_peers; i++)
		if ((q = config_peer(b, a->peers[i].area)) == NULL ||
		    strcmp(q->url, a->peers[i].url) != 0 ||
		    strcmp(q->audit_vkey, a->peers[i].audit_vkey) != 0)
			return 0;
	return 1;
}

/* Add key to the list in out (config_restart_changes). */
static void
changed(char *out, size_t outlen, size_t *n, const char *key)
{
	size_t len = strlen(out);

	if (len < outlen)
		snprintf(out + len, outlen - len, "%s%s", *n > 0 ? ", " : "",
		    key);
	(*n)++;
}

size_t
config_restart_changes(const config_t *a, const config_t *b, char *out,
    size_t outlen)
{
	size_t n = 0;

#define STR_KEY(f, key) do {						\
	if (strcmp(a->f, b->f) != 0)					\
		changed(out, outlen, &n, key);				\
} while (0)
#define NUM_KEY(f, key) do {						\
	if (a->f != b->f)						\
		changed(out, outlen, &n, key);				\
} while (0)
	if (outlen > 0)
		out[0] = '\0';
	STR_KEY(area, "area");
	if (strcmp(a->listen_host, b->listen_host) != 0 ||
	    a->listen_port != b->listen_port)
		changed(out, outlen, &n, "listen");
	if (strcmp(a->metrics_host, b->metrics_host) != 0 ||
	    a->metrics_port != b->metrics_port)
		changed(out, outlen, &n, "metrics_listen");
	STR_KEY(data_dir, "data_dir");
	if (!config_peers_equal(a, b))
		changed(out, outlen, &n, "peers");
	NUM_KEY(max_body_bytes, "limits.max_body_bytes");
	NUM_KEY(max_header_bytes, "limits.max_header_bytes");
	NUM_KEY(max_connections, "limits.max_connections");
	NUM_KEY(header_timeout_ms, "limits.header_timeout_ms");
	NUM_KEY(body_timeout_ms, "limits.body_timeout_ms");
	NUM_KEY(idle_timeout_ms, "limits.idle_timeout_ms");
	NUM_KEY(max_json_depth, "limits.max_json_depth");
	NUM_KEY(auth_fail_audit_per_second, "limits.auth_fail_audit_per_second");
	NUM_KEY(store_busy_timeout_ms, "limits.store_busy_timeout_ms");
	NUM_KEY(store_wait_max_ms, "limits.store_wait_max_ms");
	NUM_KEY(record_cache_mib, "limits.record_cache_mib");
	NUM_KEY(idempotency_keep_hours, "limits.idempotency_keep_hours");
	NUM_KEY(max_request_memory_mib, "limits.max_request_memory_mib");
	NUM_KEY(checkpoint_interval_ms, "audit.checkpoint_interval_ms");
	NUM_KEY(witness_interval_s, "audit.witness_interval_s");
	NUM_KEY(max_in_flight_per_peer, "transfer.max_in_flight_per_peer");
	NUM_KEY(retry_base_ms, "transfer.retry_base_ms");
	NUM_KEY(retry_max_ms, "transfer.retry_max_ms");
	NUM_KEY(outbox_max, "transfer.outbox_max");
	NUM_KEY(threads, "threads");
	STR_KEY(user, "user");
	STR_KEY(group, "group");
#undef STR_KEY
#undef NUM_KEY
	return n;
}
