/*
 * store_faultvfs: see store_faultvfs.h.  A shim VFS (store_vfsshim.h): each
 * file it opens is our header followed by the real (unix) file; every
 * method is forwarded, and the ones that write, sync, truncate or take a
 * writer's lock first ask fault_take() whether this call is to fail.
 */
#include "gateway/store_faultvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gateway/store_vfsshim.h"
#include "util/errmsg.h"
#include "util/log.h"

#define FV_NAME "visor-faults"
#define FV_CTL_MAX 511

enum { FV_OP_WRITE = 1, FV_OP_SYNC = 2, FV_OP_TRUNCATE = 4, FV_OP_LOCK = 8 };
enum { FV_DB = 1, FV_WAL = 2, FV_JOURNAL = 4 };
enum { FV_ERR_EIO, FV_ERR_FULL, FV_ERR_SHORT, FV_ERR_BUSY, FV_ERR_STALL };

/* How often a stalled call looks at the control file again. */
#define FV_STALL_POLL_MS 10

typedef struct {
	int active;
	unsigned ops, files;
	int err;
	unsigned long after, count;
} fault_spec_t;

/* A file of ours: the real file lives right after this header. */
typedef struct {
	store_shim_file_t shim;	/* first: store_vfsshim's pass-throughs */
	int kind;
} fv_file_t;

static struct {
	pthread_mutex_t mu;
	sqlite3_vfs *real;
	int registered;
	char ctl_path[PATH_MAX];
	char text[FV_CTL_MAX + 1];	/* the control text in force */
	size_t text_len;
	fault_spec_t spec;
	unsigned long seen;		/* matching calls since the text changed */
	unsigned long fired;
	unsigned long generation;	/* changes of the text since install */
} fv = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, "", "", 0,
	{ 0, 0, 0, 0, 0, 0 }, 0, 0, 0 };

static sqlite3_vfs fv_vfs;

/* ------------------------------------------------------------ control */

static int
parse_list(const char *v, size_t len, const char *const *names,
    const unsigned *bits, unsigned *out)
{
	size_t i = 0, n, k;

	*out = 0;
	while (i < len) {
		for (n = 0; i + n < len && v[i + n] != ','; n++)
			;
		for (k = 0; names[k] != NULL; k++)
			if (strlen(names[k]) == n && memcmp(names[k], v + i, n) == 0)
				break;
		if (names[k] == NULL)
			return -1;
		*out |= bits[k];
		i += n + 1;
	}
	return *out != 0 ? 0 : -1;
}

static int
parse_ulong(const char *v, size_t len, unsigned long *out)
{
	size_t i;

	*out = 0;
	if (len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned long)(v[i] - '0');
	}
	return 0;
}

/* Parse the control text; an empty text is "no fault".  0 or -1. */
static int
parse_spec(const char *t, size_t len, fault_spec_t *s)
{
	static const char *const op_names[] = { "write", "sync", "truncate",
	    "lock", NULL };
	static const unsigned op_bits[] = { FV_OP_WRITE, FV_OP_SYNC,
	    FV_OP_TRUNCATE, FV_OP_LOCK };
	static const char *const file_names[] = { "db", "wal", "journal",
	    "any", NULL };
	static const unsigned file_bits[] = { FV_DB, FV_WAL, FV_JOURNAL,
	    FV_DB | FV_WAL | FV_JOURNAL };
	size_t i = 0, w, eq;
	int ops_given = 0;

	memset(s, 0, sizeof(*s));
	s->ops = FV_OP_WRITE | FV_OP_SYNC;
	s->files = FV_DB | FV_WAL | FV_JOURNAL;
	s->err = FV_ERR_EIO;
	for (;;) {
		while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' ||
		    t[i] == '\r'))
			i++;
		if (i >= len)
			break;
		for (w = 0; i + w < len && t[i + w] != ' ' && t[i + w] != '\t' &&
		    t[i + w] != '\n' && t[i + w] != '\r'; w++)
			;
		for (eq = 0; eq < w && t[i + eq] != '='; eq++)
			;
		if (eq == w)
			return -1;
		s->active = 1;
#define KEY(k) (eq == sizeof(k) - 1 && memcmp(t + i, k, eq) == 0)
		if (KEY("op")) {
			if (parse_list(t + i + eq + 1, w - eq - 1, op_names, op_bits,
			    &s->ops) < 0)
				return -1;
			ops_given = 1;
		} else if (KEY("file")) {
			if (parse_list(t + i + eq + 1, w - eq - 1, file_names,
			    file_bits, &s->files) < 0)
				return -1;
		} else if (KEY("err")) {
			const char *v = t + i + eq + 1;
			size_t vl = w - eq - 1;

			if (vl == 3 && memcmp(v, "eio", 3) == 0)
				s->err = FV_ERR_EIO;
			else if (vl == 4 && memcmp(v, "full", 4) == 0)
				s->err = FV_ERR_FULL;
			else if (vl == 5 && memcmp(v, "short", 5) == 0)
				s->err = FV_ERR_SHORT;
			else if (vl == 4 && memcmp(v, "busy", 4) == 0)
				s->err = FV_ERR_BUSY;
			else if (vl == 5 && memcmp(v, "stall", 5) == 0)
				s->err = FV_ERR_STALL;
			else
				return -1;
		} else if (KEY("after")) {
			if (parse_ulong(t + i + eq + 1, w - eq - 1, &s->after) < 0)
				return -1;
		} else if (KEY("count")) {
			if (parse_ulong(t + i + eq + 1, w - eq - 1, &s->count) < 0)
				return -1;
		} else if (!KEY("id")) {
			return -1;
		}
#undef KEY
		i += w;
	}
	if (s->err == FV_ERR_BUSY && !ops_given)
		s->ops = FV_OP_LOCK;
	return 0;
}

/* Read the control file again; a changed text is parsed and restarts the
 * counts.  Called with fv.mu held. */
static void
reload_locked(void)
{
	char text[FV_CTL_MAX + 1];
	ssize_t r;
	size_t len = 0;
	int fd;

	if (fv.ctl_path[0] == '\0')
		return;
	if ((fd = open(fv.ctl_path, O_RDONLY | O_CLOEXEC)) >= 0) {
		while (len < FV_CTL_MAX) {
			r = read(fd, text + len, FV_CTL_MAX - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		close(fd);
	}
	text[len] = '\0';
	if (len == fv.text_len && memcmp(text, fv.text, len) == 0)
		return;
	memcpy(fv.text, text, len + 1);
	fv.text_len = len;
	fv.seen = 0;
	fv.generation++;
	if (parse_spec(text, len, &fv.spec) < 0) {
		memset(&fv.spec, 0, sizeof(fv.spec));
		log_event(LOG_ERROR, "fault-vfs-bad-control", "file", fv.ctl_path,
		    NULL);
		return;
	}
	log_event(LOG_WARN, "fault-vfs-control", "faults",
	    fv.spec.active ? fv.text : "none", NULL);
}

static const char *
kind_name(int kind)
{
	return kind == FV_DB ? "db" : kind == FV_WAL ? "wal" : "journal";
}

/* 1 if this call must fail or stall (*err gets the kind of fault), else
 * 0. */
static int
fault_take(int kind, unsigned op, int *err)
{
	static const char *const errs[] = { "eio", "full", "short", "busy",
	    "stall" };
	unsigned long n;
	int hit = 0;

	pthread_mutex_lock(&fv.mu);
	reload_locked();
	if (fv.spec.active && (fv.spec.ops & op) && (fv.spec.files & kind) &&
	    (fv.spec.err == FV_ERR_BUSY) == (op == FV_OP_LOCK)) {
		n = fv.seen++;
		if (n >= fv.spec.after &&
		    (fv.spec.count == 0 || n - fv.spec.after < fv.spec.count)) {
			hit = 1;
			*err = fv.spec.err;
			fv.fired++;
		}
	}
	pthread_mutex_unlock(&fv.mu);
	if (hit)
		log_event(LOG_WARN, "fault-injected", "op", op == FV_OP_WRITE ?
		    "write" : op == FV_OP_SYNC ? "sync" : op == FV_OP_TRUNCATE ?
		    "truncate" : "lock", "file", kind_name(kind), "error",
		    errs[*err], NULL);
	return hit;
}

/* A stalled call: wait, without holding fv.mu (other threads' calls go
 * on, and stall too if they match), until the control text changes, as a
 * disk that stops answering holds the thread in write(2) or fdatasync(2)
 * until it comes back.  The caller then makes the real call. */
static void
fault_stall(void)
{
	unsigned long gen;

	pthread_mutex_lock(&fv.mu);
	gen = fv.generation;
	for (;;) {
		pthread_mutex_unlock(&fv.mu);
		usleep(FV_STALL_POLL_MS * 1000);
		pthread_mutex_lock(&fv.mu);
		reload_locked();
		if (fv.generation != gen)
			break;
	}
	pthread_mutex_unlock(&fv.mu);
}

unsigned long
store_faultvfs_fired(void)
{
	unsigned long n;

	pthread_mutex_lock(&fv.mu);
	n = fv.fired;
	pthread_mutex_unlock(&fv.mu);
	return n;
}

/* ------------------------------------------------------------- files */

static sqlite3_file *
real_of(sqlite3_file *f)
{
	return ((fv_file_t *)f)->shim.real;
}

static int
fv_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
	sqlite3_file *r = real_of(f);
	int err;

	if (fault_take(((fv_file_t *)f)->kind, FV_OP_WRITE, &err)) {
		if (err == FV_ERR_STALL) {
			fault_stall();
			return r->pMethods->xWrite(r, p, amt, off);
		}
		if (err == FV_ERR_SHORT) {
			/* Half the bytes reach the file: a torn write. */
			if (amt / 2 > 0)
				(void)r->pMethods->xWrite(r, p, amt / 2, off);
			return SQLITE_FULL;
		}
		return err == FV_ERR_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	}
	return r->pMethods->xWrite(r, p, amt, off);
}

static int
fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	sqlite3_file *r = real_of(f);
	int err;

	if (fault_take(((fv_file_t *)f)->kind, FV_OP_TRUNCATE, &err)) {
		if (err != FV_ERR_STALL)
			return err == FV_ERR_EIO ? SQLITE_IOERR_TRUNCATE :
			    SQLITE_FULL;
		fault_stall();
	}
	return r->pMethods->xTruncate(r, size);
}

static int
fv_sync(sqlite3_file *f, int flags)
{
	sqlite3_file *r = real_of(f);
	int err;

	/* The real fsync is not called: the data stays in the page cache,
	 * not durable, as after a real failed fsync. */
	if (fault_take(((fv_file_t *)f)->kind, FV_OP_SYNC, &err)) {
		if (err != FV_ERR_STALL)
			return err == FV_ERR_FULL ? SQLITE_FULL :
			    SQLITE_IOERR_FSYNC;
		fault_stall();
	}
	return r->pMethods->xSync(r, flags);
}

static int
fv_lock(sqlite3_file *f, int level)
{
	sqlite3_file *r = real_of(f);
	int err;

	if (level >= SQLITE_LOCK_RESERVED &&
	    fault_take(((fv_file_t *)f)->kind, FV_OP_LOCK, &err))
		return SQLITE_BUSY;
	return r->pMethods->xLock(r, level);
}

static int
fv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	sqlite3_file *r = real_of(f);
	int err;

	/* Slot 0 taken exclusively is the WAL write lock (BEGIN IMMEDIATE). */
	if (offset == 0 && n == 1 && (flags & SQLITE_SHM_LOCK) &&
	    (flags & SQLITE_SHM_EXCLUSIVE) &&
	    fault_take(((fv_file_t *)f)->kind, FV_OP_LOCK, &err))
		return SQLITE_BUSY;
	return r->pMethods->xShmLock(r, offset, n, flags);
}

/* Faults on writes, syncs, truncation and writers' locks; the rest passes
 * through (store_vfsshim). */
static const sqlite3_io_methods fv_io = {
	3, store_shim_close, store_shim_read, fv_write, fv_truncate, fv_sync,
	store_shim_file_size, fv_lock, store_shim_unlock,
	store_shim_check_reserved, store_shim_file_control,
	store_shim_sector_size, store_shim_device_characteristics,
	store_shim_shm_map, fv_shm_lock, store_shim_shm_barrier,
	store_shim_shm_unmap, store_shim_fetch, store_shim_unfetch
};

/* --------------------------------------------------------------- VFS */

static int
fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out_flags)
{
	fv_file_t *p = (fv_file_t *)f;
	int rc;

	(void)vfs;
	memset(p, 0, sizeof(*p));
	p->kind = (flags & SQLITE_OPEN_MAIN_DB) ? FV_DB :
	    (flags & SQLITE_OPEN_WAL) ? FV_WAL : FV_JOURNAL;
	rc = store_shim_open(fv.real, name, &p->shim, sizeof(*p), flags,
	    out_flags);
	p->shim.base.pMethods = rc == SQLITE_OK ? &fv_io : NULL;
	return rc;
}

static int
fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return fv.real->xDelete(fv.real, name, sync_dir);
}

static int
fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fv.real->xAccess(fv.real, name, flags, out);
}

static int
fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return fv.real->xFullPathname(fv.real, name, n, out);
}

static void *
fv_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fv.real->xDlOpen(fv.real, name);
}

static void
fv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	fv.real->xDlError(fv.real, n, msg);
}

static void
(*fv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return fv.real->xDlSym(fv.real, h, sym);
}

static void
fv_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	fv.real->xDlClose(fv.real, h);
}

static int
fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv.real->xRandomness(fv.real, n, out);
}

static int
fv_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fv.real->xSleep(fv.real, us);
}

static int
fv_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fv.real->xCurrentTime(fv.real, out);
}

static int
fv_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv.real->xGetLastError ? fv.real->xGetLastError(fv.real, n, out) : 0;
}

static int
fv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return fv.real->xCurrentTimeInt64(fv.real, out);
}

/* Register once (under fv.mu). */
static int
register_locked(void)
{
	if (fv.registered)
		return 0;
	if (sqlite3_initialize() != SQLITE_OK ||
	    (fv.real = sqlite3_vfs_find(NULL)) == NULL ||
	    fv.real->iVersion < 2 || fv.real->xCurrentTimeInt64 == NULL)
		return -1;
	memset(&fv_vfs, 0, sizeof(fv_vfs));
	fv_vfs.iVersion = 2;
	fv_vfs.szOsFile = (int)sizeof(fv_file_t) + fv.real->szOsFile;
	fv_vfs.mxPathname = fv.real->mxPathname;
	fv_vfs.zName = FV_NAME;
	fv_vfs.xOpen = fv_open;
	fv_vfs.xDelete = fv_delete;
	fv_vfs.xAccess = fv_access;
	fv_vfs.xFullPathname = fv_full_pathname;
	fv_vfs.xDlOpen = fv_dlopen;
	fv_vfs.xDlError = fv_dlerror;
	fv_vfs.xDlSym = fv_dlsym;
	fv_vfs.xDlClose = fv_dlclose;
	fv_vfs.xRandomness = fv_randomness;
	fv_vfs.xSleep = fv_sleep;
	fv_vfs.xCurrentTime = fv_current_time;
	fv_vfs.xGetLastError = fv_last_error;
	fv_vfs.xCurrentTimeInt64 = fv_current_time64;
	if (sqlite3_vfs_register(&fv_vfs, 1) != SQLITE_OK)
		return -1;
	fv.registered = 1;
	return 0;
}

int
store_faultvfs_install(const char *ctl_path)
{
	int rc;

	if (ctl_path == NULL || strlen(ctl_path) >= sizeof(fv.ctl_path))
		return -1;
	pthread_mutex_lock(&fv.mu);
	rc = register_locked();
	if (rc == 0) {
		memcpy(fv.ctl_path, ctl_path, strlen(ctl_path) + 1);
		fv.text[0] = '\0';
		fv.text_len = 0;
		memset(&fv.spec, 0, sizeof(fv.spec));
		fv.seen = 0;
	}
	pthread_mutex_unlock(&fv.mu);
	return rc;
}

int
store_faultvfs_setup(const char *data_dir, char *err, size_t errlen)
{
	const char *want = getenv(STORE_FAULTVFS_ENV);
	char a[PATH_MAX], b[PATH_MAX], ctl[PATH_MAX + 16];
	int n;

	if (want == NULL || want[0] == '\0')
		return 0;
	/* Only the exact directory named: a variable left over in some
	 * environment cannot turn faults on for another store. */
	if (realpath(want, a) == NULL || realpath(data_dir, b) == NULL ||
	    strcmp(a, b) != 0) {
		log_event(LOG_WARN, "fault-vfs-ignored", "reason", STORE_FAULTVFS_ENV
		    " names another directory", NULL);
		return 0;
	}
	n = snprintf(ctl, sizeof(ctl), "%s/%s", b, STORE_FAULTVFS_CTL);
	if (n < 0 || (size_t)n >= sizeof(ctl) || store_faultvfs_install(ctl) < 0) {
		errmsg_set(err, errlen, "%s: cannot install the fault-injecting "
		    "VFS", STORE_FAULTVFS_ENV);
		return -1;
	}
	log_event(LOG_WARN, "fault-vfs-enabled", "control", ctl, "note",
	    "storage fault injection for tests is ON (" STORE_FAULTVFS_ENV
	    "); never in production", NULL);
	return 0;
}
