/*
 * tmpdir: the scratch directories of tests and benchmarks that hold files
 * only (a store's data directory, a database and its WAL).
 */
#ifndef TESTS_SUPPORT_TMPDIR_H
#define TESTS_SUPPORT_TMPDIR_H

/* Remove every file directly in dir (names starting with '.' are left),
 * then dir itself.  Subdirectories are not descended into; a missing dir
 * does nothing. */
void tmpdir_remove(const char *dir);

#endif
