/*
 * rfc3339: see rfc3339.h.
 */
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

static void
put_digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
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
	put_digits(out, y, 4);
	out[4] = '-';
	put_digits(out + 5, mo, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, h, 2);
	out[13] = ':';
	put_digits(out + 14, mi, 2);
	out[16] = ':';
	put_digits(out + 17, sec, 2);
	out[19] = '.';
	put_digits(out + 20, ms, 3);
	out[23] = 'Z';
	out[24] = '\0';
	return 0;
}
