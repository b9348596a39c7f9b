/*
 * store_walvfs: see store_walvfs.h.  Each file the shim opens is our header
 * followed by the real file; WAL files gather contiguous writes in a
 * buffer, everything else is passed through.
 */
#include "gateway/store_walvfs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gateway/store_vfsshim.h"

/* One write call at most: the unix VFS masks a write's length to 17 bits
 * (seekAndWriteFd), so a longer one would come back short. */
#define WAL_CHUNK (64u << 10)

typedef struct {
	store_shim_file_t shim;	/* first: store_vfsshim's pass-throughs */
	int wal;		/* gather writes (WAL files only) */
	unsigned char *buf;	/* WAL_CHUNK bytes, allocated on first use */
	size_t len;		/* bytes gathered */
	sqlite3_int64 off;	/* file offset of buf[0] */
} wal_file_t;

static struct {
	pthread_once_t once;
	sqlite3_vfs *real;	/* the default VFS when we registered */
	int ok;
} wv = { PTHREAD_ONCE_INIT, NULL, 0 };

static sqlite3_vfs wv_vfs;

static sqlite3_file *
real_of(sqlite3_file *f)
{
	return ((wal_file_t *)f)->shim.real;
}

static int
write_real(wal_file_t *p, const void *data, int n, sqlite3_int64 off)
{
	return p->shim.real->pMethods->xWrite(p->shim.real, data, n, off);
}

/* Write out what is gathered.  The buffer is emptied either way: after a
 * failed write SQLite fails the transaction and writes its frames again. */
static int
flush(wal_file_t *p)
{
	int rc;

	if (p->len == 0)
		return SQLITE_OK;
	rc = write_real(p, p->buf, (int)p->len, p->off);
	p->len = 0;
	return rc;
}

static int
wv_close(sqlite3_file *f)
{
	wal_file_t *p = (wal_file_t *)f;
	int rc = flush(p), rc2;

	rc2 = store_shim_close(f);
	if (p->buf != NULL) {
		/* Page images: ciphertext, and audit entries in the clear. */
		explicit_bzero(p->buf, WAL_CHUNK);
		free(p->buf);
		p->buf = NULL;
	}
	return rc != SQLITE_OK ? rc : rc2;
}

static int
wv_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
	int rc = flush((wal_file_t *)f);

	if (rc != SQLITE_OK)
		return rc;
	return store_shim_read(f, out, n, off);
}

static int
wv_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
	wal_file_t *p = (wal_file_t *)f;
	int rc;

	if (!p->wal || n <= 0)
		return write_real(p, data, n, off);
	if (p->len > 0 && (off != p->off + (sqlite3_int64)p->len ||
	    p->len + (size_t)n > WAL_CHUNK) && (rc = flush(p)) != SQLITE_OK)
		return rc;
	if ((size_t)n > WAL_CHUNK)
		return write_real(p, data, n, off);
	if (p->buf == NULL && (p->buf = malloc(WAL_CHUNK)) == NULL)
		return write_real(p, data, n, off);
	if (p->len == 0)
		p->off = off;
	memcpy(p->buf + p->len, data, (size_t)n);
	p->len += (size_t)n;
	return SQLITE_OK;
}

static int
wv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc = flush((wal_file_t *)f);

	if (rc != SQLITE_OK)
		return rc;
	return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int
wv_sync(sqlite3_file *f, int flags)
{
	int rc = flush((wal_file_t *)f);

	if (rc != SQLITE_OK)
		return rc;
	return real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int
wv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int rc = flush((wal_file_t *)f);

	if (rc != SQLITE_OK)
		return rc;
	return store_shim_file_size(f, size);
}

static int
wv_file_control(sqlite3_file *f, int op, void *arg)
{
	int rc = flush((wal_file_t *)f);

	if (rc != SQLITE_OK)
		return rc;
	return store_shim_file_control(f, op, arg);
}

/* The methods that touch no file contents pass through (store_vfsshim). */
static const sqlite3_io_methods wv_io = {
	3, wv_close, wv_read, wv_write, wv_truncate, wv_sync, wv_file_size,
	store_shim_lock, store_shim_unlock, store_shim_check_reserved,
	wv_file_control, store_shim_sector_size,
	store_shim_device_characteristics, store_shim_shm_map,
	store_shim_shm_lock, store_shim_shm_barrier, store_shim_shm_unmap,
	store_shim_fetch, store_shim_unfetch
};

static int
wv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out_flags)
{
	wal_file_t *p = (wal_file_t *)f;
	int rc;

	(void)vfs;
	memset(p, 0, sizeof(*p));
	p->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = store_shim_open(wv.real, name, &p->shim, sizeof(*p), flags,
	    out_flags);
	p->shim.base.pMethods = rc == SQLITE_OK ? &wv_io : NULL;
	return rc;
}

/* The VFS-level methods (delete, access, full path, time...) are the real
 * VFS's own: a copy of its structure with our name, file size and xOpen.
 * They get our VFS as their first argument; neither the unix VFS nor
 * store_faultvfs uses it beyond the fields copied. */
static void
register_once(void)
{
	if (sqlite3_initialize() != SQLITE_OK ||
	    (wv.real = sqlite3_vfs_find(NULL)) == NULL ||
	    wv.real->szOsFile < 0 ||
	    (size_t)wv.real->szOsFile > (size_t)1 << 20)
		return;
	wv_vfs = *wv.real;
	wv_vfs.pNext = NULL;
	wv_vfs.zName = STORE_WALVFS_NAME;
	wv_vfs.szOsFile = (int)sizeof(wal_file_t) + wv.real->szOsFile;
	wv_vfs.xOpen = wv_open;
	if (sqlite3_vfs_register(&wv_vfs, 0) != SQLITE_OK)
		return;
	wv.ok = 1;
}

const char *
store_walvfs_name(void)
{
	if (pthread_once(&wv.once, register_once) != 0 || !wv.ok ||
	    sqlite3_vfs_find(NULL) != wv.real)
		return NULL;
	return STORE_WALVFS_NAME;
}
