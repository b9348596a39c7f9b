/*
 * rfc3339: see rfc3339.h.
 */
#include <stdio.h>
#include <string.h>

#include "util/rfc3339.h"

static int
days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

static int
digits(const char *p, size_t n, int *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

int
rfc3339_canonical(const char *in, char out[25])
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, fd;
	size_t len = strlen(in), i;

	if (len < 10 || digits(in, 4, &y) < 0 || in[4] != '-' ||
	    digits(in + 5, 2, &mo) < 0 || in[7] != '-' ||
	    digits(in + 8, 2, &d) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	if (len > 10) {
		if (len < 20 || (in[10] != 'T' && in[10] != 't') ||
		    digits(in + 11, 2, &h) < 0 || in[13] != ':' ||
		    digits(in + 14, 2, &mi) < 0 || in[16] != ':' ||
		    digits(in + 17, 2, &sec) < 0)
			return -1;
		if (h > 23 || mi > 59 || sec > 60)
			return -1;
		i = 19;
		if (in[i] == '.') {
			i++;
			for (fd = 0; i < len && in[i] >= '0' && in[i] <= '9';
			    i++, fd++) {
				if (fd >= 3)
					return -1;
				ms = ms * 10 + (in[i] - '0');
			}
			if (fd == 0)
				return -1;
			for (; fd < 3; fd++)
				ms *= 10;
		}
		if (i + 1 != len || (in[i] != 'Z' && in[i] != 'z'))
			return -1;
	}
	/* Every field was read from its fixed number of digits: 24 bytes. */
	snprintf(out, 25, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h,
	    mi, sec, ms);
	return 0;
}

int
rfc3339_in_range(const char *t, const char *since, const char *until)
{
	char c[25];

	return t != NULL && rfc3339_canonical(t, c) == 0 &&
	    (since == NULL || strcmp(c, since) >= 0) &&
	    (until == NULL || strcmp(c, until) < 0);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's
 * days_from_civil). */
static long long
days_from_civil(int y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
rfc3339_epoch_ms(const char *in, long long *ms)
{
	char base[21], c[25];
	int y, mo, d, h, mi, sec, frac = 0, fd = 0, oh, om;
	long long off;
	size_t len = strlen(in), i = 19;

	/* The date and time to the second, checked as rfc3339_canonical
	 * checks an entry's time. */
	if (len < 20)
		return -1;
	memcpy(base, in, 19);
	memcpy(base + 19, "Z", 2);
	if (rfc3339_canonical(base, c) < 0)
		return -1;
	if (in[i] == '.') {
		for (i++; i < len && in[i] >= '0' && in[i] <= '9'; i++, fd++)
			if (fd < 3)
				frac = frac * 10 + (in[i] - '0');
		if (fd == 0)
			return -1;
		for (; fd < 3; fd++)
			frac *= 10;
	}
	/* time-offset: "Z", or the local time's offset from UTC. */
	if (i + 1 == len && (in[i] == 'Z' || in[i] == 'z'))
		off = 0;
	else if (i + 6 == len && (in[i] == '+' || in[i] == '-') &&
	    digits(in + i + 1, 2, &oh) == 0 && in[i + 3] == ':' &&
	    digits(in + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59)
		off = (in[i] == '-' ? -1 : 1) * (oh * 60LL + om) * 60000LL;
	else
		return -1;
	/* The canonical form's fields are at fixed places and were checked. */
	(void)digits(c, 4, &y);
	(void)digits(c + 5, 2, &mo);
	(void)digits(c + 8, 2, &d);
	(void)digits(c + 11, 2, &h);
	(void)digits(c + 14, 2, &mi);
	(void)digits(c + 17, 2, &sec);
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000LL +
	    sec * 1000LL + frac - off;
	return 0;
}
