/*
 * visorctl get: read one record (or its history) as policy lets the caller
 * see it, and print the body.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/mapping.h"
#include "client/https_client.h"
#include "util/buf.h"
#include "util/json.h"
#include "visorctl/cli_client.h"
#include "visorctl/commands.h"

static void
get_usage(FILE *f)
{
	fprintf(f,
	    "usage: visorctl get ID --gateway URL --cert FILE --actor STAFF\n"
	    "                   --purpose P [--justification TEXT]\n"
	    "                   [--history [--page N]]\n"
	    "                   [--key FILE] [--cacert FILE]\n"
	    "                   [--crl FILE... | --no-crl]\n"
	    "\n"
	    "Prints the record ID as the gateway's policy lets this certificate\n"
	    "see it for the purpose (or, with --history, its versions).  Exits 1\n"
	    "with the gateway's error on a refusal, 2 on bad usage.\n"
	    "%s"
	    "  --justification T   why (X-Visor-Justification, at most 512 bytes)\n"
	    "  --history           GET /v1/records/ID/history, every page\n"
	    "  --page N            versions per history request (1-1000; the\n"
	    "                      gateway's default is 1000)\n",
	    cli_client_usage);
}

/* At most this many pages (1,000 versions each): a gateway whose cursor
 * never reaches the first version is refused, not followed for ever. */
#define HISTORY_PAGES_MAX 100000

/*
 * The history a page at a time, newest first, following next_before, and
 * printed whole, oldest first, as one answer: {"id","versions"}.  Each
 * cursor must be below the one before.  0, or 1 (said on stderr).
 */
static int
get_history(https_client_t *c, const char *url, const char *id,
    const char *const *hdrs, long page_size)
{
	https_response_t r;
	buf_t u = BUF_INIT;
	cJSON *all = NULL, *page = NULL, *vs, *pv, *it;
	const cJSON *pid;
	int64_t before = 0, next;
	char err[512], *out = NULL;
	long pages;
	int rc = 1;

	memset(&r, 0, sizeof(r));
	for (pages = 0; pages < HISTORY_PAGES_MAX; pages++) {
		buf_reset(&u);
		if (buf_puts(&u, url) < 0 || (page_size > 0 &&
		    buf_printf(&u, "?limit=%ld", page_size) < 0) ||
		    (before > 0 && buf_printf(&u, "%cbefore=%lld",
		    page_size > 0 ? '&' : '?', (long long)before) < 0))
			goto oom;
		if (https_client_call(c, "GET", u.data, hdrs, NULL, 0, &r, err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "visorctl get: %s\n", err);
			goto out;
		}
		if (r.status < 200 || r.status >= 300) {
			cli_print_error("visorctl get", &r);
			goto out;
		}
		page = json_parse_strict(r.body.data ? r.body.data : "",
		    r.body.len, 8, err, sizeof(err));
		pid = page != NULL ? cJSON_GetObjectItemCaseSensitive(page,
		    "id") : NULL;
		pv = page != NULL ? cJSON_GetObjectItemCaseSensitive(page,
		    "versions") : NULL;
		next = 0;
		if (!cJSON_IsString(pid) || strcmp(pid->valuestring, id) != 0 ||
		    !cJSON_IsArray(pv) ||
		    (cJSON_GetObjectItemCaseSensitive(page, "next_before") !=
		    NULL && json_get_int(page, "next_before", 1,
		    before > 0 ? before - 1 : INT64_MAX, &next) != 0)) {
			fprintf(stderr, "visorctl get: the gateway's history "
			    "page %ld is not a page of %s below version %lld\n",
			    pages + 1, id, (long long)before);
			goto out;
		}
		https_response_free(&r);
		if (all == NULL) {
			all = page;
		} else {
			/* An older page goes before what was read. */
			vs = cJSON_GetObjectItemCaseSensitive(all, "versions");
			while ((it = cJSON_GetArrayItem(pv,
			    cJSON_GetArraySize(pv) - 1)) != NULL)
				if (!cJSON_InsertItemInArray(vs, 0,
				    cJSON_DetachItemViaPointer(pv, it))) {
					cJSON_Delete(it);
					goto oom;
				}
			cJSON_Delete(page);
		}
		page = NULL;
		if (next == 0)
			break;
		before = next;
	}
	if (pages == HISTORY_PAGES_MAX) {
		fprintf(stderr, "visorctl get: more than %d history pages: "
		    "stopped\n", HISTORY_PAGES_MAX);
		goto out;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(all, "next_before");
	if ((out = cJSON_PrintUnformatted(all)) == NULL)
		goto oom;
	rc = cli_print_json("visorctl get", out, strlen(out)) < 0;
	goto out;
oom:
	fprintf(stderr, "visorctl get: out of memory\n");
out:
	https_response_free(&r);
	free(out);
	cJSON_Delete(page);
	cJSON_Delete(all);
	buf_free(&u);
	return rc;
}

int
cmd_get(int argc, char **argv)
{
	cli_client_opts_t o;
	const char *id = NULL, *just = NULL;
	const char *hdrs[4];
	char h_actor[160], h_purpose[64], h_just[600], err[512];
	https_client_t *c = NULL;
	https_response_t r;
	buf_t url = BUF_INIT;
	int i, k, history = 0, rc = 2;
	long page_size = 0;
	char *end;

	cli_client_init(&o);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			get_usage(stdout);
			return 0;
		}
		k = cli_client_option(&o, argc, argv, &i, "visorctl get");
		if (k < 0)
			return 2;
		if (k > 0)
			continue;
		if (strcmp(argv[i], "--history") == 0)
			history = 1;
		else if (strcmp(argv[i], "--justification") == 0 && i + 1 < argc)
			just = argv[++i];
		else if (strcmp(argv[i], "--page") == 0 && i + 1 < argc) {
			page_size = strtol(argv[++i], &end, 10);
			if (argv[i][0] < '1' || argv[i][0] > '9' || *end != '\0' ||
			    page_size < 1 || page_size > 1000) {
				fprintf(stderr, "visorctl get: --page takes 1 "
				    "to 1000\n");
				return 2;
			}
		}
		else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else {
			get_usage(stderr);
			return 2;
		}
	}
	if (id == NULL || !mapping_valid_id(id)) {
		fprintf(stderr, "visorctl get: an ID ([A-Z0-9-]{3,64}) is "
		    "required\n");
		return 2;
	}
	if (just != NULL && !cli_valid_header_value(just, 512)) {
		fprintf(stderr, "visorctl get: --justification must be 1-512 "
		    "bytes without control characters\n");
		return 2;
	}
	if (page_size > 0 && !history) {
		fprintf(stderr, "visorctl get: --page goes with --history\n");
		return 2;
	}
	if (cli_client_finish(&o, "visorctl get") < 0)
		return 2;
	snprintf(h_actor, sizeof(h_actor), "X-Visor-Actor: %s", o.actor);
	snprintf(h_purpose, sizeof(h_purpose), "X-Visor-Purpose: %s", o.purpose);
	k = 0;
	hdrs[k++] = h_actor;
	hdrs[k++] = h_purpose;
	if (just != NULL) {
		snprintf(h_just, sizeof(h_just), "X-Visor-Justification: %s", just);
		hdrs[k++] = h_just;
	}
	hdrs[k] = NULL;
	if (buf_printf(&url, "%.*s/v1/records/%s%s",
	    (int)(strlen(o.gateway) - (o.gateway[strlen(o.gateway) - 1] == '/')),
	    o.gateway, id, history ? "/history" : "") < 0)
		return 2;
	if ((c = cli_client_new(&o, "visorctl get")) == NULL) {
		rc = 1;
		goto out;
	}
	if (history) {
		rc = get_history(c, url.data, id, hdrs, page_size);
		goto out;
	}
	if (https_client_call(c, "GET", url.data, hdrs, NULL, 0, &r, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "visorctl get: %s\n", err);
		https_response_free(&r);
		rc = 1;
		goto out;
	}
	if (r.status >= 200 && r.status < 300) {
		rc = cli_print_json("visorctl get", r.body.data, r.body.len) <
		    0;
	} else {
		cli_print_error("visorctl get", &r);
		rc = 1;
	}
	https_response_free(&r);
out:
	https_client_free(c);
	buf_free(&url);
	return rc;
}
