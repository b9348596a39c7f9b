#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int
read_all_fd(const char *path, int flags, int private_only, uid_t owner,
    size_t max, char **out, size_t *len)
{
	struct stat st;
	char *data = NULL;
	size_t off = 0;
	ssize_t r;
	int fd, saved;

	*out = NULL;
	/* O_NONBLOCK: a FIFO (or a device) in a file's place must not hold
	 * the open until someone writes; S_ISREG below then refuses it.  It
	 * changes nothing for a regular file. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags)) < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto err;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto err;
	}
	if (private_only && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		errno = EPERM;
		goto err;
	}
	/* A second name for a private file is a way in: whoever may write
	 * the folder (a gateway's account, for its data directory) could
	 * link another user's key there, to be read by root (a backup, a
	 * start before privileges are dropped) and handed back. */
	if (private_only && st.st_nlink != 1) {
		errno = EMLINK;
		goto err;
	}
	if (owner != (uid_t)-1 && st.st_uid != owner) {
		errno = EACCES;
		goto err;
	}
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto err;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL)
		goto err;
	while (off < (size_t)st.st_size) {
		r = read(fd, data + off, (size_t)st.st_size - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto err;	/* an I/O error is not a shorter file */
		if (r == 0)
			break;		/* shrank while read: what is there */
		off += (size_t)r;
	}
	data[off] = '\0';
	close(fd);
	*out = data;
	if (len != NULL)
		*len = off;
	return 0;
err:
	saved = errno;
	free(data);
	close(fd);
	errno = saved;
	return -1;
}

int
file_read_all(const char *path, size_t max, char **out, size_t *len)
{
	return read_all_fd(path, 0, 0, (uid_t)-1, max, out, len);
}

int
file_read_private(const char *path, size_t max, char **out, size_t *len)
{
	return read_all_fd(path, O_NOFOLLOW, 1, (uid_t)-1, max, out, len);
}

int
file_read_private_owned(const char *path, uid_t owner, size_t max,
    char **out, size_t *len)
{
	return read_all_fd(path, O_NOFOLLOW, 1, owner, max, out, len);
}

const char *
file_refusal(int e, file_refusal_t kind)
{
	int key = kind == FILE_REFUSAL_KEY;

	if (e == EPERM)
		return key ? "key file readable by group or others (must be "
		    "0600)" : "readable by group or others (must be 0600)";
	if (e == ELOOP)
		return key ? "a symbolic link: name the key file itself (keys "
		    "are not read through links, which whoever may write "
		    "their folder could point elsewhere)" : "a symbolic link, "
		    "not the file itself";
	if (e == EINVAL)
		return "not a regular file";
	if (e == EMLINK)
		return key ? "has another name (a hard link): keys are read "
		    "only from a file with one name, which no one else can "
		    "have put there" : "has another name (a hard link), which "
		    "whoever owns the folder could have pointed at another "
		    "user's file";
	return strerror(e);
}

static int
fsync_dir_of(const char *path)
{
	char tmp[4096];
	int fd, rc;

	if (strlen(path) >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, strlen(path) + 1);
	if ((fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Write data, fsync'd, to a new temporary file beside path; its name into
 * tmp.  A name nobody can guess, never a file that is there already or a
 * symbolic link: whoever may write in the folder must not be able to have
 * the data (a private key) written elsewhere, or keep it open to read.
 * 0 or -1 (nothing left behind). */
static int
write_temp(const char *path, const void *data, size_t len, mode_t mode,
    char *tmp, size_t tmplen)
{
	const char *p = data;
	size_t off = 0;
	ssize_t w;
	unsigned char rnd[8];
	int fd = -1, n, saved, tries;

	for (tries = 0; tries < 16 && fd < 0; tries++) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -1;
		n = snprintf(tmp, tmplen, "%s.tmp.%02x%02x%02x%02x%02x%02x"
		    "%02x%02x", path, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		    rnd[5], rnd[6], rnd[7]);
		if (n < 0 || (size_t)n >= tmplen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    mode);
		if (fd < 0 && errno != EEXIST)
			return -1;
	}
	if (fd < 0)
		return -1;
	/* The umask must not widen or narrow what the caller asked for. */
	if (fchmod(fd, mode) < 0)
		goto err;
	while (off < len) {
		w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto err;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto err;
	if (close(fd) < 0) {
		fd = -1;
		goto err;
	}
	return 0;
err:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/* The temporary file becomes path: rename(2) replaces what is there;
 * link(2), for exclusive, fails if anything is (EEXIST). */
static int
write_publish(const char *path, const void *data, size_t len, mode_t mode,
    int exclusive)
{
	char tmp[4096];
	int saved;

	if (write_temp(path, data, len, mode, tmp, sizeof(tmp)) < 0)
		return -1;
	if ((exclusive ? link(tmp, path) : rename(tmp, path)) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (exclusive)
		unlink(tmp);
	return fsync_dir_of(path);
}

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_publish(path, data, len, mode, 0);
}

int
file_create_new(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_publish(path, data, len, mode, 1);
}

int
file_check_private(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
file_check_private_dir(const char *path, mode_t *mode)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		if (mode != NULL)
			*mode = st.st_mode & 07777;
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
file_mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		if (i < n)
			tmp[i] = '/';
	}
	return 0;
}

int
file_join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n;

	if (name[0] == '/')
		n = snprintf(out, outlen, "%s", name);
	else
		n = snprintf(out, outlen, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}
