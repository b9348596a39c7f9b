/*
 * store_faultvfs: a fault-injecting SQLite VFS for tests of the storage
 * failure paths (issue 8 item 3).  A shim over the default ("unix") VFS,
 * registered as "visor-faults": every call is passed through unless the
 * control file asks for a fault, in which case the call fails with the
 * error a broken disk would give (SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
 * SQLITE_FULL, a short write, SQLITE_BUSY...).
 *
 * It is never on in production: the gateway turns it on only when the
 * environment variable VISOR_TEST_FAULT_VFS is set to the exact data
 * directory of the store being opened (a test sets it for the gateway it
 * starts), and says so in its log at warning level.  Unset, empty, or
 * naming another directory: nothing is registered and SQLite is used as
 * always.
 *
 * Control: the file <data_dir>/faults.ctl (or the path given to
 * store_faultvfs_install), read again on every call that could fail, so a
 * test changes faults while the gateway runs by replacing it atomically
 * (write a temporary file, rename): each call sees either the old or the
 * new text, never a mix.  Missing or empty: no fault.  One line of
 * space-separated key=value words:
 *
 *   op=write,sync,truncate,lock   which calls fail (default write,sync;
 *                                 lock with err=busy)
 *   file=db,wal,journal,any       on which files (default any)
 *   err=eio|full|short|busy|stall eio: SQLITE_IOERR_WRITE/_FSYNC/_TRUNCATE;
 *                                 full: SQLITE_FULL; short: a write of the
 *                                 first half only, then SQLITE_FULL (what
 *                                 the unix VFS returns for a short write);
 *                                 busy: SQLITE_BUSY, on lock calls only
 *                                 (and the others only on the rest);
 *                                 stall: the call waits until the control
 *                                 file's text changes, then is made (a
 *                                 disk that stops answering, then comes
 *                                 back: nothing fails)
 *   after=N                       let the first N matching calls through
 *   count=N                       then fail N calls (0: until the file
 *                                 changes; the default)
 *   id=WORD                       ignored: a new id restarts the counts
 *
 * "lock" faults only the locks a writer takes (xLock at RESERVED or above
 * and the WAL write lock in shared memory), never readers' locks.  A
 * failed sync does not call the real fsync: what was written stays in the
 * page cache, as after a real failed fsync, and is not durable.  The
 * counts restart whenever the file's text changes.  A malformed file means
 * no fault (and a log line).
 */
#ifndef GATEWAY_STORE_FAULTVFS_H
#define GATEWAY_STORE_FAULTVFS_H

#include <stddef.h>

#define STORE_FAULTVFS_ENV "VISOR_TEST_FAULT_VFS"
#define STORE_FAULTVFS_CTL "faults.ctl"

/*
 * Called once by store_open before the database is opened.  If the
 * environment variable STORE_FAULTVFS_ENV names data_dir (the same path,
 * after resolving both), install the fault VFS as SQLite's default with
 * <data_dir>/faults.ctl as its control file and log a warning; otherwise
 * do nothing.  0, or -1 with err if it was asked for and cannot be
 * installed (the store must then not open).
 */
int store_faultvfs_setup(const char *data_dir, char *err, size_t errlen);

/*
 * Install the fault VFS as SQLite's default with ctl_path as its control
 * file (for unit tests; a later call changes the control path).  0 or -1.
 */
int store_faultvfs_install(const char *ctl_path);

/* Faults injected since the process started (for tests). */
unsigned long store_faultvfs_fired(void);

#endif
