#include "gateway/audit_entry.h"

#include <stdlib.h>
#include <string.h>

#include "util/json.h"

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
	if (MEMBER(tail, "purpose", e->purpose) < 0 ||
	    MEMBER(tail, "justification", e->justification) < 0 ||
	    MEMBER(tail, "recipient", e->recipient) < 0 ||
	    member_list(tail, "fields", e->fields, e->n_fields) < 0 ||
	    member_list(tail, "withheld", e->withheld, e->n_withheld) < 0 ||
	    MEMBER(tail, "policy", e->policy) < 0 ||
	    member_list(tail, "rules", e->rules, e->n_rules) < 0 ||
	    MEMBER(tail, "result", e->result) < 0 ||
	    MEMBER(tail, "reason", e->reason) < 0 ||
	    MEMBER(tail, "digest", e->digest) < 0 ||
	    MEMBER(tail, "transfer", e->transfer) < 0 ||
	    buf_append(tail, "}", 1) < 0)
		goto err;
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

static int
dup_str(const char **dst, const char *src)
{
	char *p;

	*dst = NULL;
	if (src == NULL)
		return 0;
	if ((p = strdup(src)) == NULL)
		return -1;
	*dst = p;
	return 0;
}

static int
dup_list(const char *const **dst, const char *const *src, size_t n)
{
	const char **v;
	size_t i;

	*dst = NULL;
	if (n == 0)
		return 0;
	if (src == NULL || n > AUDIT_MAX_LIST)
		return -1;
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return -1;
	*dst = v;
	for (i = 0; i < n; i++)
		if (src[i] == NULL || dup_str(&v[i], src[i]) < 0)
			return -1;
	return 0;
}

static void
free_list(const char *const *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free((void *)(uintptr_t)v[i]);
	free((void *)(uintptr_t)v);
}

audit_entry_t *
audit_entry_copy(const audit_entry_t *e)
{
	audit_entry_t *c;

	if (e == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->version = e->version;
	/* Counts are set before the lists so a partial copy frees cleanly. */
	c->n_fields = e->fields != NULL ? e->n_fields : 0;
	c->n_withheld = e->withheld != NULL ? e->n_withheld : 0;
	c->n_rules = e->rules != NULL ? e->n_rules : 0;
	if (dup_str(&c->op, e->op) < 0 ||
	    dup_str(&c->request_id, e->request_id) < 0 ||
	    dup_str(&c->actor_id, e->actor_id) < 0 ||
	    dup_str(&c->actor_cert, e->actor_cert) < 0 ||
	    dup_str(&c->actor_person, e->actor_person) < 0 ||
	    dup_str(&c->record, e->record) < 0 ||
	    dup_str(&c->purpose, e->purpose) < 0 ||
	    dup_str(&c->justification, e->justification) < 0 ||
	    dup_str(&c->recipient, e->recipient) < 0 ||
	    dup_list(&c->fields, e->fields, c->n_fields) < 0 ||
	    dup_list(&c->withheld, e->withheld, c->n_withheld) < 0 ||
	    dup_str(&c->policy, e->policy) < 0 ||
	    dup_list(&c->rules, e->rules, c->n_rules) < 0 ||
	    dup_str(&c->result, e->result) < 0 ||
	    dup_str(&c->reason, e->reason) < 0 ||
	    dup_str(&c->digest, e->digest) < 0 ||
	    dup_str(&c->transfer, e->transfer) < 0) {
		audit_entry_free_copy(c);
		return NULL;
	}
	if ((e->n_fields > 0 && e->fields == NULL) ||
	    (e->n_withheld > 0 && e->withheld == NULL) ||
	    (e->n_rules > 0 && e->rules == NULL)) {
		audit_entry_free_copy(c);
		return NULL;
	}
	return c;
}

void
audit_entry_free_copy(audit_entry_t *e)
{
	if (e == NULL)
		return;
	free((void *)(uintptr_t)e->op);
	free((void *)(uintptr_t)e->request_id);
	free((void *)(uintptr_t)e->actor_id);
	free((void *)(uintptr_t)e->actor_cert);
	free((void *)(uintptr_t)e->actor_person);
	free((void *)(uintptr_t)e->record);
	free((void *)(uintptr_t)e->purpose);
	free((void *)(uintptr_t)e->justification);
	free((void *)(uintptr_t)e->recipient);
	free_list(e->fields, e->n_fields);
	free_list(e->withheld, e->n_withheld);
	free((void *)(uintptr_t)e->policy);
	free_list(e->rules, e->n_rules);
	free((void *)(uintptr_t)e->result);
	free((void *)(uintptr_t)e->reason);
	free((void *)(uintptr_t)e->digest);
	free((void *)(uintptr_t)e->transfer);
	free(e);
}
