/*
 * identity: the URI identities of SPEC section 3.
 *
 *   urn:visor:<area>:gateway
 *   urn:visor:<area>:agency:<type>[:<unit>]
 *   urn:visor:<area>:auditor:<name>
 *   urn:visor:<area>:ca
 *
 * <area>, <unit>, <name> match [a-z0-9-]{1,32}; <type> is one of the agency
 * types below.  Parsing is strict: anything else is refused.
 */
#ifndef CRYPTO_IDENTITY_H
#define CRYPTO_IDENTITY_H

#include <stddef.h>

#define IDENTITY_PART_MAX 33	/* 32 characters and a NUL */
#define IDENTITY_URI_MAX 160

typedef enum {
	IDENTITY_GATEWAY,
	IDENTITY_AGENCY,
	IDENTITY_AUDITOR,
	IDENTITY_CA
} identity_kind_t;

typedef struct {
	identity_kind_t kind;
	char area[IDENTITY_PART_MAX];
	char type[IDENTITY_PART_MAX];	/* agency type; "" otherwise */
	char unit[IDENTITY_PART_MAX];	/* agency unit or auditor name; "" if none */
	char uri[IDENTITY_URI_MAX];	/* the whole URI as parsed */
} identity_t;

/* The ten agency types, in SPEC order; NULL-terminated. */
extern const char *const identity_agency_types[];

/* 1 if s is one of the agency types. */
int identity_is_agency_type(const char *s);

/* 1 if s (len bytes) matches [a-z0-9-]{1,32}. */
int identity_valid_label(const char *s, size_t len);

/* Parse uri (len bytes, need not be NUL-terminated) into *out.  Returns 0, or
 * -1 with a reason in err (errlen > 0) for anything malformed. */
int identity_parse(const char *uri, size_t len, identity_t *out, char *err,
    size_t errlen);

/* Short name of the kind: "gateway", "agency", "auditor", "ca". */
const char *identity_kind_name(identity_kind_t kind);

#endif
