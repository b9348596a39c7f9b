#include "gateway/routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gateway.h"
#include "gateway/store.h"

int
routes_content_type_is(gw_request_t *r, const char *want)
{
	const char *ct = gw_req_header(r, "Content-Type");
	size_t n = strlen(want);

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* The query parameter key as a decimal integer (at most 19 digits, no sign
 * or space).  0 read, 1 absent and not required, -1 malformed or absent
 * when required. */
int
routes_query_u64(gw_request_t *r, const char *key, uint64_t *out, int required)
{
	const char *v = gw_req_query(r, key);
	char *end;
	unsigned long long x;

	if (v == NULL)
		return required ? -1 : 1;
	if (v[0] < '0' || v[0] > '9' || strlen(v) > 19)
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = x;
	return 0;
}

int
routes_valid_id(const char *s, size_t len, int allow_lower)
{
	size_t i;

	if (len < 3 || len > 64)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
			continue;
		if (allow_lower && c >= 'a' && c <= 'z')
			continue;
		return 0;
	}
	return 1;
}

static void
route_health(gw_request_t *r)
{
	gateway_t *gw = gw_req_gateway(r);
	char body[256];
	int n;

	n = snprintf(body, sizeof(body),
	    "{\"status\":\"ok\",\"area\":\"%s\",\"audit_size\":%llu}",
	    gw->cfg->area, (unsigned long long)store_audit_size(gw->store));
	gw_reply(r, 200, NULL, body, (size_t)n);
}

static int
is(const char *m, const char *want)
{
	return strcmp(m, want) == 0;
}

static void
method_not_allowed(gw_request_t *r, const char *allow)
{
	gw_reply_header(r, "Allow", allow);
	gw_reply_error(r, 405, "method-not-allowed", "%s is not allowed here",
	    gw_req_method(r));
}

void
routes_dispatch(gw_request_t *r)
{
	const char *path = gw_req_path(r), *m = gw_req_method(r), *rest, *slash;
	char id[80];
	size_t n;

	if (strcmp(path, "/v1/health") == 0) {
		gw_req_set_route(r, "health");
		if (!is(m, "GET"))
			return method_not_allowed(r, "GET");
		return route_health(r);
	}
	if (strcmp(path, "/v1/status") == 0) {
		gw_req_set_route(r, "status");
		if (!is(m, "GET"))
			return method_not_allowed(r, "GET");
		return route_status(r);
	}
	if (strncmp(path, "/v1/records/", 12) == 0) {
		rest = path + 12;
		slash = strchr(rest, '/');
		n = slash ? (size_t)(slash - rest) : strlen(rest);
		gw_req_set_route(r, slash ? "records_history" : "records");
		if (!routes_valid_id(rest, n, 0))
			return gw_reply_error(r, 400, "bad-id",
			    "record ids match [A-Z0-9-]{3,64}");
		memcpy(id, rest, n);
		id[n] = '\0';
		gw_req_audit_failures(r, id);
		if (slash == NULL)
			return route_record(r, id);
		if (strcmp(slash, "/history") == 0) {
			if (!is(m, "GET"))
				return method_not_allowed(r, "GET");
			return route_record_history(r, id);
		}
		gw_req_set_route(r, "not_found");
		return gw_reply_error(r, 404, "not-found", "no such resource");
	}
	if (strcmp(path, "/v1/transfers") == 0) {
		gw_req_set_route(r, "transfers");
		gw_req_audit_failures(r, NULL);
		if (!is(m, "POST"))
			return method_not_allowed(r, "POST");
		return route_transfers_post(r);
	}
	if (strncmp(path, "/v1/transfers/", 14) == 0) {
		rest = path + 14;
		gw_req_set_route(r, "transfers");
		gw_req_audit_failures(r, NULL);
		if (!routes_valid_id(rest, strlen(rest), 1))
			return gw_reply_error(r, 400, "bad-id", "malformed transfer id");
		if (!is(m, "GET"))
			return method_not_allowed(r, "GET");
		return route_transfer_get(r, rest);
	}
	if (strcmp(path, "/v1/peer/transfers") == 0) {
		gw_req_set_route(r, "peer_transfers");
		gw_req_audit_failures(r, NULL);
		if (!is(m, "POST"))
			return method_not_allowed(r, "POST");
		return route_peer_transfers(r);
	}
	if (strcmp(path, "/v1/peer/checkpoints") == 0) {
		gw_req_set_route(r, "peer_checkpoints");
		gw_req_audit_failures(r, NULL);
		if (!is(m, "POST"))
			return method_not_allowed(r, "POST");
		return route_peer_checkpoints(r);
	}
	if (strncmp(path, "/v1/audit/", 10) == 0) {
		gw_req_set_route(r, "audit");
		if (!is(m, "GET"))
			return method_not_allowed(r, "GET");
		return route_audit(r, path + 10);
	}
	gw_req_set_route(r, "not_found");
	gw_reply_error(r, 404, "not-found", "no such resource");
}
