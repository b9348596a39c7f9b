/*
 * store_walvfs: see store_walvfs.h.  Each file the shim opens is our header
 * followed by the real file; WAL files gather contiguous writes in a
 * buffer, everything else is passed through.
 */
#include "gateway/store_walvfs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

/* One write call at most: the unix VFS masks a write's length to 17 bits
 * (seekAndWriteFd), so a longer one would come back short. */
#define WAL_CHUNK (64u << 10)

typedef struct {
	sqlite3_file base;
	sqlite3_file *real;
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
	return ((wal_file_t *)f)->real;
}

/* Write out what is gathered.  The buffer is emptied either way: after a
 * failed write SQLite fails the transaction and writes its frames again. */
static int
flush(wal_file_t *p)
{
	int rc;

	if (p->len == 0)
		return SQLITE_OK;
	rc = p->real->pMethods->xWrite(p->real, p->buf, (int)p->len, p->off);
	p->len = 0;
	return rc;
}

static int
wv_close(sqlite3_file *f)
{
	wal_file_t *p = (wal_file_t *)f;
	int rc = flush(p), rc2;

	rc2 = p->real->pMethods->xClose(p->real);
	if (p->buf != NULL) {
		/* Page images: ciphertext, and audit entries in the clear. */
		OPENSSL_cleanse(p->buf, WAL_CHUNK);
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
	return real_of(f)->pMethods->xRead(real_of(f), out, n, off);
}

static int
wv_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
	wal_file_t *p = (wal_file_t *)f;
	int rc;

	if (!p->wal || n <= 0)
		return p->real->pMethods->xWrite(p->real, data, n, off);
	if (p->len > 0 && (off != p->off + (sqlite3_int64)p->len ||
	    p->len + (size_t)n > WAL_CHUNK) && (rc = flush(p)) != SQLITE_OK)
		return rc;
	if ((size_t)n > WAL_CHUNK)
		return p->real->pMethods->xWrite(p->real, data, n, off);
	if (p->buf == NULL && (p->buf = malloc(WAL_CHUNK)) == NULL)
		return p->real->pMethods->xWrite(p->real, data, n, off);
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
	return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int
wv_file_control(sqlite3_file *f, int op, void *arg)
{
	int rc = flush((wal_file_t *)f);

	if (rc != SQLITE_OK)
		return rc;
	return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

/* The rest touch no file contents: passed through. */

static int
wv_lock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int
wv_unlock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int
wv_check_reserved(sqlite3_file *f, int *out)
{
	return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int
wv_sector_size(sqlite3_file *f)
{
	return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int
wv_device_characteristics(sqlite3_file *f)
{
	return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int
wv_shm_map(sqlite3_file *f, int region, int size, int extend,
    void volatile **pp)
{
	return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend,
	    pp);
}

static int
wv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void
wv_shm_barrier(sqlite3_file *f)
{
	real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int
wv_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int
wv_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	return real_of(f)->pMethods->xFetch(real_of(f), off, amt, pp);
}

static int
wv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods wv_io = {
	3, wv_close, wv_read, wv_write, wv_truncate, wv_sync, wv_file_size,
	wv_lock, wv_unlock, wv_check_reserved, wv_file_control, wv_sector_size,
	wv_device_characteristics, wv_shm_map, wv_shm_lock, wv_shm_barrier,
	wv_shm_unmap, wv_fetch, wv_unfetch
};

static int
wv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out_flags)
{
	wal_file_t *p = (wal_file_t *)f;
	int rc;

	(void)vfs;
	memset(p, 0, sizeof(*p));
	p->real = (sqlite3_file *)(p + 1);
	p->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = wv.real->xOpen(wv.real, name, p->real, flags, out_flags);
	/* Every method we offer needs the real file's (version 3). */
	if (rc == SQLITE_OK && (p->real->pMethods == NULL ||
	    p->real->pMethods->iVersion < 3)) {
		if (p->real->pMethods != NULL)
			p->real->pMethods->xClose(p->real);
		rc = SQLITE_CANTOPEN;
	}
	p->base.pMethods = rc == SQLITE_OK ? &wv_io : NULL;
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
