#include "crypto/identity.h"

#include <stdio.h>
#include <string.h>

const char *const identity_agency_types[] = {
	"police", "probation", "prison", "youth-justice", "health",
	"social-care", "housing", "education", "dwp", "ems", NULL
};

int
identity_is_agency_type(const char *s)
{
	size_t i;

	for (i = 0; identity_agency_types[i] != NULL; i++)
		if (strcmp(s, identity_agency_types[i]) == 0)
			return 1;
	return 0;
}

int
identity_valid_label(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

const char *
identity_kind_name(identity_kind_t kind)
{
	switch (kind) {
	case IDENTITY_GATEWAY: return "gateway";
	case IDENTITY_AGENCY: return "agency";
	case IDENTITY_AUDITOR: return "auditor";
	case IDENTITY_CA: return "ca";
	}
	return "?";
}

/* Split into at most 6 colon-separated parts. */
static int
split(const char *s, size_t len, const char *part[6], size_t plen[6])
{
	size_t i, start = 0;
	int n = 0;

	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == ':') {
			if (n == 6)
				return -1;
			part[n] = s + start;
			plen[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static void
copy_part(char dst[IDENTITY_PART_MAX], const char *src, size_t len)
{
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int
identity_parse(const char *uri, size_t len, identity_t *out, char *err,
    size_t errlen)
{
	const char *part[6];
	size_t plen[6];
	char type[IDENTITY_PART_MAX];
	int n;

	memset(out, 0, sizeof(*out));
	if (len >= IDENTITY_URI_MAX) {
		snprintf(err, errlen, "identity URI too long");
		return -1;
	}
	if (memchr(uri, '\0', len) != NULL) {
		snprintf(err, errlen, "NUL in identity URI");
		return -1;
	}
	if ((n = split(uri, len, part, plen)) < 4) {
		snprintf(err, errlen, "identity URI has too few parts");
		return -1;
	}
	if (plen[0] != 3 || memcmp(part[0], "urn", 3) != 0 ||
	    plen[1] != 5 || memcmp(part[1], "visor", 5) != 0) {
		snprintf(err, errlen, "identity URI does not start urn:visor:");
		return -1;
	}
	if (!identity_valid_label(part[2], plen[2])) {
		snprintf(err, errlen, "bad area in identity URI");
		return -1;
	}
	copy_part(out->area, part[2], plen[2]);
	if (plen[3] == 7 && memcmp(part[3], "gateway", 7) == 0 && n == 4) {
		out->kind = IDENTITY_GATEWAY;
	} else if (plen[3] == 2 && memcmp(part[3], "ca", 2) == 0 && n == 4) {
		out->kind = IDENTITY_CA;
	} else if (plen[3] == 7 && memcmp(part[3], "auditor", 7) == 0 && n == 5) {
		if (!identity_valid_label(part[4], plen[4])) {
			snprintf(err, errlen, "bad auditor name in identity URI");
			return -1;
		}
		out->kind = IDENTITY_AUDITOR;
		copy_part(out->unit, part[4], plen[4]);
	} else if (plen[3] == 6 && memcmp(part[3], "agency", 6) == 0 &&
	    (n == 5 || n == 6)) {
		if (!identity_valid_label(part[4], plen[4])) {
			snprintf(err, errlen, "bad agency type in identity URI");
			return -1;
		}
		copy_part(type, part[4], plen[4]);
		if (!identity_is_agency_type(type)) {
			snprintf(err, errlen, "unknown agency type in identity URI");
			return -1;
		}
		if (n == 6 && !identity_valid_label(part[5], plen[5])) {
			snprintf(err, errlen, "bad agency unit in identity URI");
			return -1;
		}
		out->kind = IDENTITY_AGENCY;
		memcpy(out->type, type, sizeof(type));
		if (n == 6)
			copy_part(out->unit, part[5], plen[5]);
	} else {
		snprintf(err, errlen, "unknown identity form");
		return -1;
	}
	memcpy(out->uri, uri, len);
	out->uri[len] = '\0';
	return 0;
}
