/*
 * store_walvfs: a SQLite VFS shim for the store's writer connection that
 * gathers the writes of a commit to the WAL into as few system calls as it
 * can.  Internal to the store; not for other modules.
 *
 * Why: SQLite writes each WAL frame as two calls (its 24-byte header, then
 * the page), so a group commit of 7 pages (a batch of GETs' consult
 * entries) made 14 pwrite calls and one of 28 pages (PUTs) 56, each paying
 * the system call and the hypervisor's interrupt handling on these
 * machines.  The shim keeps contiguous writes to a WAL file in a buffer and
 * writes them as one call, at most 64 KiB at a time (SQLite's unix VFS
 * cuts a single write at 128 KiB).
 *
 * Why it is safe: every buffered byte is written to the file before the
 * shim passes on any other call on that file (sync, read, truncate, size,
 * file control, close) and before a write that does not follow on.  SQLite
 * makes a WAL commit visible to other connections (the wal-index header,
 * in shared memory) only after it has synced the WAL, when the connection
 * runs with synchronous=FULL or EXTRA, as the writer always does
 * (store.c, writer_open_db): so no other connection can read a frame
 * before it is in the file.  A failed write of the buffer is returned by
 * the call that caused it (usually the commit's sync), which fails the
 * commit as a failed write would have; the buffer is dropped with it.
 * Other files (the database, its journal) pass straight through.
 *
 * It must not be used by a connection with synchronous=NORMAL or OFF: those
 * publish a commit without syncing the WAL first.
 */
#ifndef GATEWAY_STORE_WALVFS_H
#define GATEWAY_STORE_WALVFS_H

#define STORE_WALVFS_NAME "visor-wal"

/*
 * The VFS name to open the writer's connection with.  The first call
 * registers the shim (not as the default) over the default VFS of that
 * moment.  Returns NULL (open with the default VFS, as before) if it
 * cannot be registered, or if the default VFS has changed since (a test
 * installed the fault-injection VFS after the shim was registered): the
 * shim never bypasses the VFS below it.
 */
const char *store_walvfs_name(void);

#endif
