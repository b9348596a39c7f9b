/*
 * Guard macros: the success path reads straight down; every failure jumps to
 * a cleanup label.  Used across the codebase (STYLE.md item 4).
 *
 *   ENSURE(cond, label)  if cond is false, goto label
 *   GUARD(expr, label)   if expr returns < 0, goto label
 *   GUARD_PTR(p, label)  if p is NULL, goto label
 */
#ifndef UTIL_GUARD_H
#define UTIL_GUARD_H

#define ENSURE(cond, label) do { if (!(cond)) goto label; } while (0)
#define GUARD(expr, label) do { if ((expr) < 0) goto label; } while (0)
#define GUARD_PTR(p, label) do { if ((p) == NULL) goto label; } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
