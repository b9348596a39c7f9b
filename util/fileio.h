/*
 * fileio: bounded whole-file reads and crash-safe writes.
 */
#ifndef UTIL_FILEIO_H
#define UTIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Read a whole regular file of at most max bytes into a new NUL-terminated
 * buffer (*out, caller frees; *len excludes the NUL).  Returns 0, or -1 with
 * errno set (EFBIG when larger than max). */
int file_read_all(const char *path, size_t max, char **out, size_t *len);

/* Write data to path atomically: a new temporary file in the same folder
 * (an unguessable name, created exclusively, never through a symbolic link),
 * with the given mode, fsync'd, renamed over path, then the folder fsync'd.
 * Returns 0 or -1 with errno set.  On -1 path is unchanged, except when
 * only the folder's fsync failed: path then holds the new data, which may
 * not survive a crash. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* As file_write_atomic, but only if path does not exist: never replaces a
 * file, even one created at the same moment (EEXIST). */
int file_create_new(const char *path, const void *data, size_t len, mode_t mode);

/* 0 if path is a regular file not readable or writable by group or others
 * (the rule for private key files); -1 with errno set otherwise (EPERM for a
 * bad mode). */
int file_check_private(const char *path);

/* 0 if path is a directory neither group nor others may write (the rule
 * for a data directory, whose files whoever may write it could swap); -1
 * with errno set otherwise (ENOTDIR, or EPERM for a bad mode, its mode
 * then in *mode when mode is not NULL). */
int file_check_private_dir(const char *path, mode_t *mode);

/* file_read_all for a private file: opened without following a symlink,
 * and the mode checked on the open file (no window between the check and
 * the read).  -1 with errno EPERM if group or others may read or write it,
 * EMLINK if it has more than one name (a hard link). */
int file_read_private(const char *path, size_t max, char **out, size_t *len);

/* file_read_private for a file that must also belong to owner (checked on
 * the open file): -1 with errno EACCES if it does not. */
int file_read_private_owned(const char *path, uid_t owner, size_t max,
    char **out, size_t *len);

/* Whose file file_refusal speaks of. */
typedef enum {
	FILE_REFUSAL_KEY,	/* a key file named in the configuration */
	FILE_REFUSAL_IN_FOLDER	/* a file copied from a folder another
				 * account owns (a backup run as root) */
} file_refusal_t;

/* Why file_check_private, file_read_private or file_read_private_owned
 * refused a file, from the errno e it left, in words that say what is
 * wrong, for "path: words": EPERM (mode), ELOOP (a symbolic link),
 * EINVAL (not a regular file), EMLINK (a hard link); any other e
 * (EACCES of file_read_private_owned too, whose words need the owner):
 * strerror(e).  kind says what the advice is about.  A static string. */
const char *file_refusal(int e, file_refusal_t kind);

/* Create a directory (and its parents) with the given mode if missing.
 * Returns 0 or -1. */
int file_mkdirs(const char *path, mode_t mode);

/* Join dir and name into out (size outlen).  Returns 0, or -1 if it does not
 * fit. */
int file_join(char *out, size_t outlen, const char *dir, const char *name);

#endif
