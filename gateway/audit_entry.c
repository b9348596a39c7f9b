#include "gateway/audit_entry.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/audit_verify.h"
#include "util/json.h"

_Static_assert(AUDIT_ENTRY_MAX_PARTS == AUDIT_VERIFY_MAX_LEAF - 128,
    "an entry must fit what the auditors' tools read");

/* Longest string member accepted in an entry: entries hold identifiers,
 * paths and hashes, never bodies; the justification (512 bytes by SPEC
 * section 5) is the longest legitimate member. */
#define AUDIT_MAX_STRING 4096
#define AUDIT_MAX_LIST 4096

/* Append s as a JSON string.  Only '"', '\\' and control characters are
 * escaped (control characters as \u00XX), so one string always has one
 * encoding.  Refuses invalid UTF-8: a leaf must be valid JSON. */
static int
json_str(buf_t *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = strlen(s), i, run;
	const unsigned char *p = (const unsigned char *)s;

	if (len > AUDIT_MAX_STRING || !json_utf8_valid(p, len))
		return -1;
	if (buf_append(out, "\"", 1) < 0)
		return -1;
	for (i = 0; i < len; ) {
		for (run = i; run < len && p[run] >= 0x20 && p[run] != '"' &&
		    p[run] != '\\'; run++)
			;
		if (run > i && buf_append(out, p + i, run - i) < 0)
			return -1;
		i = run;
		if (i == len)
			break;
		if (p[i] == '"' || p[i] == '\\') {
			char esc[2] = { '\\', (char)p[i] };

			if (buf_append(out, esc, 2) < 0)
				return -1;
		} else {
			char esc[6] = { '\\', 'u', '0', '0', hex[p[i] >> 4],
			    hex[p[i] & 15] };

			if (buf_append(out, esc, 6) < 0)
				return -1;
		}
		i++;
	}
	return buf_append(out, "\"", 1);
}

/* ,"name":[...] when the list is not empty. */
static int
member_list(buf_t *out, const char *name, const char *const *v, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	if (v == NULL || n > AUDIT_MAX_LIST)
		return -1;
	if (buf_append(out, ",\"", 2) < 0 || buf_puts(out, name) < 0 ||
	    buf_append(out, "\":[", 3) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] == NULL)
			return -1;
		if ((i > 0 && buf_append(out, ",", 1) < 0) ||
		    json_str(out, v[i]) < 0)
			return -1;
	}
	return buf_append(out, "]", 1);
}

/* p as a schema path: each element index dropped ("a[12].b" -> "a[].b"). */
static char *
schema_path(const char *p)
{
	char *s = malloc(strlen(p) + 1), *o = s;
	size_t k;

	if (s == NULL)
		return NULL;
	while (*p != '\0') {
		if (*p == '[') {
			k = strspn(p + 1, "0123456789");
			if (k > 0 && p[1 + k] == ']') {
				*o++ = '[';
				p += 1 + k;
				continue;
			}
		}
		*o++ = *p++;
	}
	*o = '\0';
	return s;
}

/* The list as distinct schema paths, in order of first appearance: for an
 * entry whose element paths (a record with thousands of elements, some
 * withheld) would not fit in a leaf.  Distinct schema paths are bounded by
 * the record schema, so the list is short. */
static int
member_list_schema(buf_t *out, const char *name, const char *const *v,
    size_t n)
{
	char **d = NULL, *s;
	size_t i, k, nd = 0;
	int ret = -1;

	if (n == 0)
		return 0;
	if (v == NULL || (d = calloc(n, sizeof(*d))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] == NULL || (s = schema_path(v[i])) == NULL)
			goto out;
		for (k = 0; k < nd && strcmp(d[k], s) != 0; k++)
			;
		if (k < nd)
			free(s);
		else
			d[nd++] = s;
	}
	ret = member_list(out, name, (const char *const *)d, nd);
out:
	for (i = 0; i < nd; i++)
		free(d[i]);
	free(d);
	return ret;
}

static int
put_u64(buf_t *out, uint64_t v)
{
	char tmp[21];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return buf_append(out, tmp + i, sizeof(tmp) - i);
}

/* ,"name":"value" when value is set.  name is a literal. */
#define MEMBER(out, name, value) \
	((value) == NULL ? 0 : (buf_append(out, ",\"" name "\":", \
	    sizeof(name) + 3) < 0 ? -1 : json_str(out, value)))

/* The members after version through the closing brace; with schema, the
 * field lists as schema paths. */
static int
encode_tail(const audit_entry_t *e, buf_t *tail, int schema)
{
	int (*list)(buf_t *, const char *, const char *const *, size_t) =
	    schema ? member_list_schema : member_list;

	if (MEMBER(tail, "purpose", e->purpose) < 0 ||
	    MEMBER(tail, "justification", e->justification) < 0 ||
	    MEMBER(tail, "recipient", e->recipient) < 0 ||
	    list(tail, "fields", e->fields, e->n_fields) < 0 ||
	    list(tail, "withheld", e->withheld, e->n_withheld) < 0 ||
	    list(tail, "transformed", e->transformed, e->n_transformed) < 0 ||
	    /* Says that "intelligence[]" may stand for some elements only. */
	    (schema && MEMBER(tail, "paths", "schema") < 0) ||
	    MEMBER(tail, "policy", e->policy) < 0 ||
	    member_list(tail, "rules", e->rules, e->n_rules) < 0 ||
	    MEMBER(tail, "result", e->result) < 0 ||
	    MEMBER(tail, "reason", e->reason) < 0 ||
	    MEMBER(tail, "digest", e->digest) < 0 ||
	    MEMBER(tail, "transfer", e->transfer) < 0 ||
	    MEMBER(tail, "signature", e->signature) < 0 ||
	    buf_append(tail, "}", 1) < 0)
		return -1;
	return 0;
}

int
audit_entry_encode_parts(const audit_entry_t *e, buf_t *head, buf_t *tail)
{
	size_t hmark = head->len, tmark = tail->len;

	if (e == NULL || e->op == NULL || e->actor_id == NULL ||
	    e->result == NULL)
		return -1;
	/* The tail (the field lists) of a consultation is 0.5-1 KB: one
	 * allocation rather than two doublings with copy and wipe. */
	if (buf_grow(tail, 1024) < 0)
		return -1;
	if (MEMBER(head, "request_id", e->request_id) < 0 ||
	    MEMBER(head, "op", e->op) < 0 ||
	    buf_puts(head, ",\"actor\":{\"id\":") < 0 ||
	    json_str(head, e->actor_id) < 0 ||
	    MEMBER(head, "cert", e->actor_cert) < 0 ||
	    MEMBER(head, "person", e->actor_person) < 0 ||
	    buf_append(head, "}", 1) < 0 ||
	    MEMBER(head, "record", e->record) < 0)
		goto err;
	/* Element paths when they fit (over AUDIT_MAX_LIST they fail), else
	 * schema paths: an entry too long to verify is refused by the store,
	 * and would refuse that read for good. */
	if (encode_tail(e, tail, 0) == 0 &&
	    (head->len - hmark) + (tail->len - tmark) <= AUDIT_ENTRY_MAX_PARTS)
		return 0;
	tail->len = tmark;
	if (tail->data != NULL)
		tail->data[tmark] = '\0';
	if (encode_tail(e, tail, 1) == 0)
		return 0;
err:
	/* Leave both as they were: a half-written leaf must never be stored. */
	head->len = hmark;
	if (head->data != NULL)
		head->data[hmark] = '\0';
	tail->len = tmark;
	if (tail->data != NULL)
		tail->data[tmark] = '\0';
	return -1;
}

int
audit_entry_assemble(uint64_t seq, const char *time, const char *head,
    size_t head_len, uint64_t version, const char *tail, size_t tail_len,
    buf_t *out)
{
	size_t mark = out->len;

	if (time == NULL || head == NULL || tail == NULL ||
	    version == AUDIT_VERSION_ASSIGNED)
		return -1;
	if (buf_append(out, "{\"seq\":", 7) < 0 || put_u64(out, seq) < 0 ||
	    buf_append(out, ",\"time\":", 8) < 0 || json_str(out, time) < 0 ||
	    buf_append(out, head, head_len) < 0 ||
	    (version != AUDIT_VERSION_NONE &&
	    (buf_append(out, ",\"version\":", 11) < 0 ||
	    put_u64(out, version) < 0)) ||
	    buf_append(out, tail, tail_len) < 0) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}

int
audit_entry_encode(const audit_entry_t *e, uint64_t seq, const char *time,
    uint64_t version, buf_t *out)
{
	buf_t head = BUF_INIT, tail = BUF_INIT;
	int ret = -1;

	if (version == AUDIT_VERSION_ASSIGNED)
		return -1;
	if (audit_entry_encode_parts(e, &head, &tail) == 0 &&
	    audit_entry_assemble(seq, time, head.data, head.len, version,
	    tail.data, tail.len, out) == 0)
		ret = 0;
	buf_free(&head);
	buf_free(&tail);
	return ret;
}
