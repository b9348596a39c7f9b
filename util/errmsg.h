/*
 * errmsg: the error-message convention of the codebase: functions that fail
 * write a human reason into a caller's (char *err, size_t errlen).
 */
#ifndef UTIL_ERRMSG_H
#define UTIL_ERRMSG_H

#include <stddef.h>

/* Format a message into err (always NUL-terminated, cut to errlen).  Does
 * nothing when err is NULL or errlen is 0. */
void errmsg_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
