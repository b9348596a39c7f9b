/*
 * store: the gateway's durable state in one SQLite database
 * (<data_dir>/store.db, WAL, synchronous=FULL): versioned records encrypted
 * at rest, idempotency keys, the transfer outbox and inbound receipts, and
 * the audit log (leaves, Merkle nodes, signed checkpoints).  This is the one
 * module that includes sqlite3.h.
 *
 * Writes: callers build a job (a list of operations that must commit
 * together) and submit it.  One writer thread takes queued jobs in batches,
 * runs each job inside its own SAVEPOINT (a failing job rolls back alone),
 * commits the batch once (one fsync: group commit), then calls each job's
 * done callback, on the writer thread.  A job is reported STORE_OK only
 * after its commit is durable.  Audit entries get their seq (= leaf index)
 * and time from the writer, so the log is sequenced in commit order.
 *
 * Checkpoints: the writer signs a checkpoint over the durable size at most
 * checkpoint_interval_ms after new entries, stores it in the database and
 * also in <data_dir>/checkpoint.last (atomic file write), so that replacing
 * the database with an older copy is detected at start.
 *
 * Reads: each thread opens its own reader (a read-only connection).
 */
#ifndef GATEWAY_STORE_H
#define GATEWAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/merkle.h"
#include "gateway/audit_entry.h"
#include "util/buf.h"

typedef struct store store_t;
typedef struct store_reader store_reader_t;
typedef struct store_job store_job_t;

typedef struct {
	const char *data_dir;	/* holds store.db, store.key, audit.key */
	const char *area;	/* log origin is "visor.<area>/audit" */
	unsigned checkpoint_interval_ms;	/* 0: 1000 */
	size_t max_batch;	/* jobs per group commit; 0: 512 */
	size_t outbox_max;	/* queued transfers beyond this are STORE_FULL; 0: 100000 */
	unsigned busy_timeout_ms;	/* wait for a lock another process holds
					   on store.db, then fail the batch
					   (STORE_FAILED); 0: 5000 */
	unsigned audit_index_lag;	/* audit entries not yet in the record
					   index before a bulk fill; 0:
					   STORE_AUDIT_INDEX_LAG */
	size_t record_cache_bytes;	/* current records kept in memory,
					   sealed; 0: STORE_CACHE_DEFAULT_BYTES;
					   STORE_CACHE_NONE: no cache */
	int64_t idem_keep_ms;		/* idempotency keys are dropped once
					   this old (a sweep in a group commit
					   at most once a minute, or once per
					   keep if shorter; at the next commit
					   while a backlog remains); 0:
					   STORE_IDEM_KEEP_MS */
} store_options_t;

#define STORE_IDEM_KEEP_MS ((int64_t)7 * 24 * 3600 * 1000)

/* The record index of the audit log is filled in bulk, from the leaves,
 * once this many entries are not yet in it: one page per record touched
 * per fill rather than one random page per entry.  Search reads the
 * entries past the index from the leaves, so it never misses one. */
#define STORE_AUDIT_INDEX_LAG 16384
#define STORE_CACHE_DEFAULT_BYTES ((size_t)32 << 20)
#define STORE_CACHE_NONE SIZE_MAX

/* Status of a job. */
enum {
	STORE_OK = 0,
	STORE_CONFLICT,		/* expected version differs */
	STORE_NOT_FOUND,	/* record to change or erase does not exist (or is erased) */
	STORE_EXISTS,		/* create expected no record, one exists */
	STORE_IDEM_EXISTS,	/* idempotency key already used: job not applied */
	STORE_FULL,		/* outbox at its limit */
	STORE_FAILED		/* storage error: nothing of the job is durable */
};

#define STORE_VERSION_ANY UINT64_MAX	/* put: create or replace */
#define STORE_VERSION_ABSENT 0		/* put: only if no live record */

typedef struct {
	int status;
	uint64_t version;	/* version the job's record write got, else 0 */
	uint64_t audit_index;	/* seq of the job's first audit entry */
	uint64_t audit_size;	/* log size after the commit */
	char err[160];		/* for STORE_FAILED: what went wrong (no data) */
} store_result_t;

typedef void (*store_done_fn)(void *arg, const store_result_t *r);

/*
 * Open the store: create the schema if new, load store.key and audit.key
 * (both must be mode 0600), then check the audit log: the stored leaves must
 * hash to the root of the last signed checkpoint (in the database and in
 * checkpoint.last, whichever is larger; a database behind checkpoint.last
 * was rolled back), and that checkpoint's signature must verify.  On any
 * mismatch it refuses with a message saying what is wrong (removed, altered
 * or rolled back, and at which index).  Then starts the writer thread.
 * Returns NULL with err on failure.
 */
store_t *store_open(const store_options_t *opt, char *err, size_t errlen);

/* A data directory written by store_backup holds this file; store_open
 * refuses such a directory (see store_backup). */
#define STORE_BACKUP_MARK "backup.info"

/* Drain queued jobs, sign a final checkpoint, stop the writer, close.
 * NULL does nothing. */
void store_close(store_t *s);

/* Create the data directory (0700 if missing; one that group or others
 * may write is refused) with the keys of a new gateway (store.key,
 * audit.key, mode 0600) and the signed checkpoint of the empty log
 * (checkpoint.last), and append the audit verifier key line (SPEC section
 * 8) to vkey.  Refuses if any of the three files exists, and places each
 * exclusively.  0, or -1 with err; on -1 the files it made, and the folder
 * if it made it, are removed again. */
int store_init_keys(const char *data_dir, const char *area, buf_t *vkey,
    char *err, size_t errlen);

/* Remove the three files store_init_keys made in data_dir, for a caller
 * whose own next step failed (writing the verifier key out): only right
 * just after store_init_keys returned 0 for data_dir, when those files are
 * the ones it made.  The folder stays (the caller knows whether it was
 * there before).  0, or -1 with err (the first file that could not be
 * removed; the others are still tried). */
int store_init_keys_undo(const char *data_dir, char *err, size_t errlen);

/* "visor.<area>/audit". */
const char *store_origin(const store_t *s);

/* Durable audit log size (leaves committed). */
uint64_t store_audit_size(const store_t *s);

/* Size of the latest signed checkpoint (0: none); entries beyond it wait
 * for the next signature (for metrics and /v1/status). */
uint64_t store_checkpoint_size(const store_t *s);

/* Milliseconds since the latest checkpoint was signed (for metrics); a
 * checkpoint from before store_open counts from the open; -1 if the log has
 * never been signed. */
int64_t store_checkpoint_age_ms(const store_t *s);

/* ---- writes ---- */

store_job_t *store_job_new(void);
void store_job_free(store_job_t *j);	/* only for a job never submitted */

/* Record an idempotency key (scope: the caller's identity URI) with the hash
 * of the request and the answer to replay.  Must be the job's first
 * operation; if (scope, key) exists the whole job is skipped with
 * STORE_IDEM_EXISTS.  The row notes the record the job writes or
 * transfers, and that record's erasure deletes it.  With replace, a row of (scope, key) for the same
 * request hash is replaced instead if, when the job runs, its answer names
 * a version the record of the job's write has left (checked by the writer:
 * a retry that replaced it first left a current answer, which stands);
 * one for another request is still STORE_IDEM_EXISTS. */
int store_job_idempotency(store_job_t *j, const char *scope, const char *key,
    const uint8_t req_hash[32], int http_status, const char *body, size_t len,
    int replace);

/* The same, for a job that writes a record (store_job_put_record): the
 * answer kept is {"id":"<id>","version":<v>}, v the version the write got
 * when the job ran (not one foreseen before it was submitted).  A job
 * that writes no record fails (STORE_FAILED). */
int store_job_idempotency_write(store_job_t *j, const char *scope,
    const char *key, const uint8_t req_hash[32], int http_status,
    int replace);

/* Write a new version of record id (plaintext JSON, encrypted by the store
 * with AAD = id || 0x00 || decimal version).  expect_version:
 * STORE_VERSION_ANY, STORE_VERSION_ABSENT, or the current version (else
 * STORE_CONFLICT).  The new version is current + 1 (1 for a new record; an
 * erased record's versions continue).  changed_paths is a JSON array of
 * paths, kept in the history. */
int store_job_put_record(store_job_t *j, const char *id, uint64_t expect_version,
    int category, int level, const char *managing_area, const char *json,
    size_t len, const char *actor, const char *changed_paths_json);

/* Erase record id: every stored version's content is destroyed (history
 * metadata stays).  expect_version as above (ANY allowed, ABSENT refused).
 * The erasure is itself a new version (op "erase" in the history, no
 * content): the job's result.version and AUDIT_VERSION_ASSIGNED name it,
 * and a later put continues after it. */
int store_job_erase_record(store_job_t *j, const char *id,
    uint64_t expect_version, const char *actor);

/* The same, for a record of that category and level (1-255): the
 * erasure's version then keeps, sealed, the record's core (id, managing
 * area, category, level), so that the policy can still decide who may
 * read its history (store_record_version_get on the erasure's version). */
int store_job_erase_record_core(store_job_t *j, const char *id,
    uint64_t expect_version, const char *actor, int category, int level);

/* Append an audit entry (deep-copied).  seq and time are assigned at commit. */
int store_job_audit(store_job_t *j, const audit_entry_t *e);

/* Queue a transfer in the outbox (payload encrypted with AAD = transfer id).
 * STORE_FULL if outbox_max transfers are queued. */
int store_job_outbox_add(store_job_t *j, const char *transfer_id,
    const char *record_id, const char *to_area, const char *purpose,
    const char *initiator, const char *payload, size_t len, int64_t deadline_ms);

/* Update a transfer: status "queued", "delivered", "rejected", "failed";
 * receipt JSON may be NULL. */
int store_job_outbox_update(store_job_t *j, const char *transfer_id,
    const char *status, unsigned attempts, int64_t next_attempt_ms,
    const char *receipt, size_t receipt_len);

/* Remember an inbound transfer (from_area, transfer_id) with its digest and
 * received_at; audit_index is set to the job's first audit entry. */
int store_job_inbound_add(store_job_t *j, const char *from_area,
    const char *transfer_id, const char *digest, const char *received_at);

/* Store the signed receipt of an inbound transfer.  The first stored
 * receipt is kept: STORE_NOT_FOUND if there is no such inbound transfer or
 * it already has a receipt (a racing repeat signed first). */
int store_job_inbound_receipt(store_job_t *j, const char *from_area,
    const char *transfer_id, const char *receipt, size_t len);

/* Hold the signed checkpoint note (len bytes, at most 64 KiB) of peer
 * area's log, of size leaves and that root, as the latest witnessed
 * (gateway/witness.h): in place of the held one of held_size leaves
 * (which must be smaller), or as the first when held_size is -1.  The
 * caller has checked the note's signature and, against the held one, the
 * consistency proof.  STORE_CONFLICT (nothing changed) if the store holds
 * another by then (a request racing this one). */
int store_job_witness_put(store_job_t *j, const char *area, int64_t held_size,
    uint64_t size, const merkle_hash_t root, const char *note, size_t len);

/* Keep the signed note (len bytes, at most 64 KiB) of peer area's log that
 * was refused as not consistent with the one held, beside it, in place of
 * any kept before: with the held one, signed by the same key, it shows
 * the peer's log was rolled back or forked.  STORE_NOT_FOUND if nothing
 * is held for area. */
int store_job_witness_refused(store_job_t *j, const char *area,
    const char *note, size_t len);

/* Hand the job to the writer (ownership passes).  done(arg, result) is called
 * once, on the writer thread, after the commit is durable or has failed.
 * If the store is closing, done is called with STORE_FAILED at once.
 * done must be quick and must not wait for another job (the writer is
 * blocked while it runs); submitting a new job from it is fine.  A job whose
 * builder call failed is still accepted and ends STORE_FAILED. */
void store_submit(store_t *s, store_job_t *j, store_done_fn done, void *arg);

/* Fail the jobs that have waited max_wait_ms or more for the writer to
 * take them (a disk that stalls holds the writer in one commit while the
 * queue grows): each is taken out of the queue before anything of it ran,
 * and its done is called, on the calling thread, with STORE_FAILED and a
 * message saying so.  Jobs the writer has taken are not touched.  Safe
 * from any thread.  Returns how many were failed (logged as
 * event=store-stalled). */
size_t store_expire_waiting(store_t *s, unsigned max_wait_ms);

/* ---- reads ---- */

/* A read-only connection for one thread at a time.  NULL with err.  No
 * reader may be used after store_close; freeing one after it is safe
 * (store_reader_free touches only the reader's own connection, on the
 * default VFS), which server_free relies on: the workers, and so their
 * readers, go after the store has drained. */
store_reader_t *store_reader_new(store_t *s, char *err, size_t errlen);
void store_reader_free(store_reader_t *r);

typedef struct {
	uint64_t version;
	int category, level;	/* 0 for an erased record (sealed with the content) */
	char managing_area[40];
	int erased;		/* 1: erased, json empty */
	buf_t json;		/* plaintext (caller frees with buf_free) */
} store_record_t;

/* Current version of a record.  0 found (json filled unless erased), 1 no
 * such record, -1 error (including a failed decryption). */
int store_record_get(store_reader_t *r, const char *id, store_record_t *out);

/* For a record store_record_get could not read: its clear columns
 * (version, erased, managing_area), read from the database, not the
 * cache, and *opens 1 if its sealed content opens after all (out filled
 * as store_record_get fills it), 0 if it does not (damaged at rest, or
 * sealed under another key: json empty, category and level 0).  0 found,
 * 1 no such record, -1 error. */
int store_record_get_clear(store_reader_t *r, const char *id,
    store_record_t *out, int *opens);

/* A record's history as a JSON array appended to out, oldest first:
 * [{"version":1,"time":"...","actor":"urn:...","op":"put|erase","changed":[...]}],
 * the newest limit versions numbered below before (before 0: no bound;
 * limit 0: no limit); reads only those rows.  0, 1 no such versions, -1
 * error. */
int store_record_history_page(store_reader_t *r, const char *id,
    uint64_t before, unsigned limit, buf_t *out);

/* The versions of a record's erasures, ascending, into *vers (to be freed;
 * NULL when none) and *n.  0 or -1. */
int store_record_erasures(store_reader_t *r, const char *id, int64_t **vers,
    size_t *n);

/* One version of a record, opened as store_record_get opens the current
 * one (managing_area is left empty: the clear column is the current
 * version's; the sealed JSON holds each version's own).  An erasure's
 * version holds the erased record's core when the erasure said it
 * (store_job_erase_record_core).  0 found, 1 no such version or none of
 * its content kept (an erasure that kept no core, or any version of a
 * record erased since), -1 error (including a failed decryption). */
int store_record_version_get(store_reader_t *r, const char *id,
    uint64_t version, store_record_t *out);

/* Look up an idempotency key: 0 found (hash, status, body filled), 1 not
 * found, -1 error. */
int store_idem_get(store_reader_t *r, const char *scope, const char *key,
    uint8_t req_hash[32], int *http_status, buf_t *body);

/* The same, and record (room for record_len bytes, at least 1) gets the
 * id of the record the key's request wrote or transferred ("" if its row
 * names none: a row from before schema 4 whose answer did not open). */
int store_idem_get_record(store_reader_t *r, const char *scope,
    const char *key, uint8_t req_hash[32], int *http_status, buf_t *body,
    char *record, size_t record_len);

typedef struct {
	char transfer_id[80];
	char record_id[80];
	char to_area[40];
	char purpose[40];
	char initiator[160];
	char status[16];
	unsigned attempts;
	int64_t next_attempt_ms, deadline_ms, created_ms;
	buf_t payload;		/* decrypted; only filled by store_outbox_due */
	buf_t receipt;		/* receipt JSON if delivered */
	int unreadable;		/* the payload did not open (damaged at rest):
				 * empty, not to be sent */
} store_transfer_t;

/* A transfer by id.  0 found, 1 not, -1 error.  Caller buf_free()s. */
int store_transfer_get(store_reader_t *r, const char *transfer_id,
    store_transfer_t *out);

/* Up to max queued transfers with next_attempt_ms <= now_ms, oldest first,
 * payloads decrypted.  Sets *n.  0 or -1.  Caller buf_free()s each. */
int store_outbox_due(store_reader_t *r, int64_t now_ms, store_transfer_t *out,
    size_t max, size_t *n);

/* The same for one peer area only (so that a peer that is down cannot
 * starve the others), and due as well if next_attempt_ms > latest_ms: the
 * caller's bound on how far ahead a retry can be set, past which a retry
 * time was set before the wall clock went back. */
int store_outbox_due_for(store_reader_t *r, const char *area, int64_t now_ms,
    int64_t latest_ms, store_transfer_t *out, size_t max, size_t *n);

/* Up to max of one peer area's queued transfers with deadline_ms <= now_ms,
 * earliest deadline first, payloads decrypted, due or not: the outbox
 * fails them while the peer is down and they are not tried. */
int store_outbox_expired_for(store_reader_t *r, const char *area,
    int64_t now_ms, store_transfer_t *out, size_t max, size_t *n);

/* Outbox depth and the age of the oldest queued transfer, per peer area:
 * calls fn for each area.  0 or -1. */
int store_outbox_stats(store_reader_t *r,
    void (*fn)(void *ctx, const char *area, uint64_t depth, int64_t oldest_ms),
    void *ctx);

/* Inbound transfer: 0 found (digest, received_at, audit_index, receipt (may
 * be empty if not yet signed) filled), 1 not found, -1 error. */
int store_inbound_get(store_reader_t *r, const char *from_area,
    const char *transfer_id, char digest[65], char received_at[32],
    uint64_t *audit_index, buf_t *receipt);

/* 1 if this gateway delivered a transfer of record_id to area (the person
 * lived there after living here), 0 if not, -1 on error. */
int store_record_sent_to(store_reader_t *r, const char *record_id,
    const char *area);

/* Latest signed checkpoint (the signed note) appended to out.  0, 1 none yet,
 * -1 error. */
int store_checkpoint_latest(store_reader_t *r, buf_t *out);

/* The checkpoint held for peer area (store_job_witness_put): its size,
 * root, and, if note is not NULL, the signed note appended to note, and,
 * if time is not NULL, when it was stored (RFC 3339).  0, 1 none, -1. */
int store_witness_get(store_reader_t *r, const char *area, uint64_t *size,
    merkle_hash_t root, buf_t *note, char time[32]);

/* One held peer checkpoint (store_witness_list). */
typedef struct {
	const char *area;
	uint64_t size;
	const char *note;	/* the signed note as received */
	size_t note_len;
	const char *time;	/* when it was stored */
	const char *refused;	/* the latest note refused as not consistent
				 * with it (store_job_witness_refused), or
				 * NULL */
	size_t refused_len;
	const char *refused_time;
} store_witnessed_t;

/* Calls fn for each held peer checkpoint, by area (w valid during the
 * call).  0 or -1 (also when fn returns < 0). */
int store_witness_list(store_reader_t *r,
    int (*fn)(void *ctx, const store_witnessed_t *w), void *ctx);

/* Leaf bytes of entry index appended to out.  0, 1 beyond size, -1. */
int store_audit_leaf(store_reader_t *r, uint64_t index, buf_t *out);

/* Calls fn for each leaf in [start, end) in order; stops on fn < 0. */
int store_audit_entries(store_reader_t *r, uint64_t start, uint64_t end,
    int (*fn)(void *ctx, uint64_t index, const void *leaf, size_t len),
    void *ctx);

/* Proofs over the durable tree (size <= store_audit_size).  0 or -1. */
int store_audit_inclusion(store_reader_t *r, uint64_t index, uint64_t size,
    merkle_hash_t *proof, size_t *n);
int store_audit_consistency(store_reader_t *r, uint64_t m, uint64_t n,
    merkle_hash_t *proof, size_t *count);

typedef struct {
	const char *record, *actor, *op;	/* NULL: any */
	const char *since, *until;	/* time in [since, until): YYYY-MM-DD or
					   RFC 3339 in UTC ("Z", up to ms);
					   NULL: open */
	size_t limit;			/* 0: 1000 */
	uint64_t from;			/* first index to consider (paging) */
	uint64_t below;			/* with bounded: only indices below it
					   (the size the answer names) */
	int bounded;			/* 0: below the durable size now */
} store_audit_query_t;

/* Leaves matching q, in index order, up to q->limit.  0; -1 on a storage
 * error; STORE_BAD_QUERY if q is not a query (a bound that is not a UTC
 * date/time, a record, actor or op too long to match anything): the
 * caller's mistake, not the store's. */
#define STORE_BAD_QUERY (-2)
int store_audit_search(store_reader_t *r, const store_audit_query_t *q,
    int (*fn)(void *ctx, uint64_t index, const void *leaf, size_t len),
    void *ctx);

/* ---- operations, tests and benchmarks (extension of the contract) ---- */

/*
 * Consistent online copy of a data directory (visorctl backup), safe while a
 * gateway runs on it: first checkpoint.last (if any), then store.db through
 * SQLite's online backup API (one read snapshot, so the copy holds every
 * leaf that checkpoint covers), then store.key and audit.key; every file
 * mode 0600, written atomically.  out_dir is created (0700) if missing and
 * must not hold a store.db already.  out_dir/STORE_BACKUP_MARK is written
 * first and completed last with when the copy was made and the log size it
 * holds; store_open refuses a directory carrying it (see store_check and
 * visorctl restore), so not even a partial copy can be started.  Each
 * source file must be a regular file with one name, not a symbolic link;
 * the keys mode 0600, store.db owned by the owner of data_dir (run as
 * root, the copy is given to that owner).  0, or -1 with err (a partial
 * copy, marked, may be left in out_dir).
 */
int store_backup(const char *data_dir, const char *out_dir, char *err,
    size_t errlen);

/*
 * The start-up check of store_open, without starting anything and without
 * the STORE_BACKUP_MARK refusal: keys load, and the audit log matches the
 * signed checkpoints in store.db and checkpoint.last (the larger one; a
 * database behind checkpoint.last is refused as rolled back).  Sets the
 * durable log size and the latest signed checkpoint size (either pointer may
 * be NULL).  store.db must exist.  0, or -1 with the same messages as
 * store_open.
 */
int store_check(const char *data_dir, const char *area, uint64_t *audit_size,
    uint64_t *checkpoint_size, char *err, size_t errlen);

typedef struct {
	uint64_t jobs;		/* jobs finished (any status) */
	uint64_t commits;	/* batch transactions committed */
	uint64_t failed_commits;	/* batches that failed as a whole */
	uint64_t checkpoints;	/* checkpoints signed since open */
	uint64_t wal_checkpoints;	/* WAL copied back by the checkpointer */
	uint64_t index_fills;		/* bulk fills of the audit record index */
	uint64_t ids_absent;	/* record reads answered "no such record"
				 * by the id filter, without SQLite */
	uint64_t wait_expired;	/* jobs failed by store_expire_waiting */
	uint64_t queued;	/* now: jobs waiting for the writer */
	int64_t oldest_wait_ms;	/* now: how long the oldest has waited */
} store_stats_t;

/* Counters since store_open (for metrics and the group-commit test). */
void store_stats(store_t *s, store_stats_t *out);

/* Make the next n batch commits fail as a storage error would (the commit
 * is turned into a rollback): for tests of the failure path. */
void store_fault_inject(store_t *s, unsigned n);

/* Reference for benchmarks: in a scratch database dir/bench-ref.db (removed
 * afterwards), commit one row of row_len bytes per transaction (WAL,
 * synchronous=FULL) for about seconds; *per_s gets commits per second.
 * 0 or -1. */
int store_bench_reference_commits(const char *dir, double seconds,
    size_t row_len, double *per_s);

#endif
