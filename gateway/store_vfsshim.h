/*
 * store_vfsshim: what the store's SQLite VFS shims (store_faultvfs for
 * tests, store_walvfs for the writer) share.  Internal to the store.
 *
 * A shim's file is its own header, which starts with store_shim_file_t,
 * followed by the real file of the VFS below.  The methods a shim does not
 * change are these pass-throughs to the real file.
 */
#ifndef GATEWAY_STORE_VFSSHIM_H
#define GATEWAY_STORE_VFSSHIM_H

#include <stddef.h>

#include <sqlite3.h>

typedef struct {
	sqlite3_file base;	/* pMethods: the shim's */
	sqlite3_file *real;	/* right after the shim's header */
} store_shim_file_t;

/*
 * Open name on the VFS real into the real file placed header bytes after
 * f (the size of the shim's header), as xOpen would, and set f->real.
 * The real file must offer every method of io methods version 3, or it is
 * closed again and SQLITE_CANTOPEN returned.  f->base.pMethods is left for
 * the shim to set (to its methods on SQLITE_OK, NULL otherwise).
 */
int store_shim_open(sqlite3_vfs *real, const char *name, store_shim_file_t *f,
    size_t header, int flags, int *out_flags);

/* Pass-throughs, with the signatures of sqlite3_io_methods. */
int store_shim_close(sqlite3_file *f);
int store_shim_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off);
int store_shim_file_size(sqlite3_file *f, sqlite3_int64 *size);
int store_shim_lock(sqlite3_file *f, int level);
int store_shim_unlock(sqlite3_file *f, int level);
int store_shim_check_reserved(sqlite3_file *f, int *out);
int store_shim_file_control(sqlite3_file *f, int op, void *arg);
int store_shim_sector_size(sqlite3_file *f);
int store_shim_device_characteristics(sqlite3_file *f);
int store_shim_shm_map(sqlite3_file *f, int region, int size, int extend,
    void volatile **pp);
int store_shim_shm_lock(sqlite3_file *f, int offset, int n, int flags);
void store_shim_shm_barrier(sqlite3_file *f);
int store_shim_shm_unmap(sqlite3_file *f, int delete_flag);
int store_shim_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp);
int store_shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p);

#endif
