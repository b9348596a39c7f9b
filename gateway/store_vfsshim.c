/* store_vfsshim: see store_vfsshim.h. */
#include "gateway/store_vfsshim.h"


static sqlite3_file *
real_of(sqlite3_file *f)
{
	return ((store_shim_file_t *)f)->real;
}

int
store_shim_open(sqlite3_vfs *real, const char *name, store_shim_file_t *f,
    size_t header, int flags, int *out_flags)
{
	int rc;

	f->real = (sqlite3_file *)((unsigned char *)f + header);
	rc = real->xOpen(real, name, f->real, flags, out_flags);
	/* Every method we offer needs the real file's (version 3). */
	if (rc == SQLITE_OK && (f->real->pMethods == NULL ||
	    f->real->pMethods->iVersion < 3)) {
		if (f->real->pMethods != NULL)
			f->real->pMethods->xClose(f->real);
		rc = SQLITE_CANTOPEN;
	}
	return rc;
}

int
store_shim_close(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);

	return r->pMethods != NULL ? r->pMethods->xClose(r) : SQLITE_OK;
}

int
store_shim_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
	return real_of(f)->pMethods->xRead(real_of(f), out, n, off);
}

int
store_shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

int
store_shim_lock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xLock(real_of(f), level);
}

int
store_shim_unlock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

int
store_shim_check_reserved(sqlite3_file *f, int *out)
{
	return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

int
store_shim_file_control(sqlite3_file *f, int op, void *arg)
{
	return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

int
store_shim_sector_size(sqlite3_file *f)
{
	return real_of(f)->pMethods->xSectorSize(real_of(f));
}

int
store_shim_device_characteristics(sqlite3_file *f)
{
	return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

int
store_shim_shm_map(sqlite3_file *f, int region, int size, int extend,
    void volatile **pp)
{
	return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend,
	    pp);
}

int
store_shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

void
store_shim_shm_barrier(sqlite3_file *f)
{
	real_of(f)->pMethods->xShmBarrier(real_of(f));
}

int
store_shim_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

int
store_shim_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	return real_of(f)->pMethods->xFetch(real_of(f), off, amt, pp);
}

int
store_shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}
