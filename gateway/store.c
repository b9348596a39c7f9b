/*
 * store: lifecycle, the writer thread (group commit), audit sequencing and
 * checkpoints, and the start-up check of the log (and, through
 * store_writelog.c, of the records table against it).  Readers are in
 * store_read.c; all share store_int.h.
 *
 * Tables (store.db):
 *   records          current row per id: version, category, level,
 *                    managing_area, erased
 *   record_versions  (id, version): time, actor, op put|erase, changed paths,
 *                    content = AES-256-GCM(JSON, AAD id 0x00 version);
 *                    erasure sets every put's content of the id to
 *                    NULL; an erasure's own keeps the erased core
 *   idempotency      (scope, key): request hash, status, sealed answer
 *                    (AAD "idem" 0x00 scope 0x00 key), and the id of the
 *                    record the request wrote or transferred, so that its
 *                    erasure deletes the row (NULL in rows from before
 *                    schema 4, filled at open: idem_fill_records)
 *   outbox           transfers; payload sealed (AAD "outbox" 0x00 id);
 *                    counters.outbox_queued kept by triggers
 *   inbound          (from_area, transfer_id): digest, audit index, receipt
 *   audit_leaves     idx = seq: exact leaf bytes, leaf hash, and the record,
 *                    actor, op and time columns that search uses (actor
 *                    and op indexed)
 *   audit_records    (record, idx): the record index of the log, filled in
 *                    bulk from the leaves at or past counters.audit_indexed
 *                    once STORE_AUDIT_INDEX_LAG of them wait (index_fill);
 *                    search reads those from the leaves
 *   merkle_nodes     (level >= STORE_NODE_MIN_LEVEL, idx): hash of every
 *                    complete subtree of 16 leaves or more, so a proof
 *                    costs O(log n) reads; the levels below are hashed
 *                    from the leaf hashes (at most 8 reads per node)
 *                    rather than stored: one row per 16 leaves instead
 *                    of one per leaf.  Older stores have rows for levels
 *                    1-3 too; they are neither read nor needed.
 *   checkpoints      size: signed note, time
 *   witnessed        area: the latest checkpoint of that peer's log this
 *                    gateway verified (size, root, the signed note as
 *                    received, time), and the latest one refused as not
 *                    consistent with it (the evidence); schema 5
 *                    (gateway/witness.h)
 *
 * Invariants: the writer's frontier always describes exactly the committed
 * leaves (a failed batch restores it); a checkpoint is signed only over the
 * frontier, so only over committed leaves; checkpoint.last is written before
 * the checkpoints row, so the file is never behind the database.
 */
#include "gateway/store.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/aead.h"
#include "crypto/audit_verify.h"
#include "crypto/keyfile.h"
#include "crypto/merkle.h"
#include "crypto/note.h"
#include "gateway/store_faultvfs.h"
#include "gateway/store_cache.h"
#include "gateway/store_ids.h"
#include "gateway/store_walvfs.h"
#include "gateway/store_int.h"
#include "util/errmsg.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log.h"

#define STORE_SCHEMA_VERSION 5
#define STORE_PATH_MAX 4096

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS records("
    " id TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " category INTEGER NOT NULL, level INTEGER NOT NULL,"
    " managing_area TEXT NOT NULL, erased INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS record_versions("
    " id TEXT NOT NULL, version INTEGER NOT NULL, time TEXT NOT NULL,"
    " actor TEXT NOT NULL, op TEXT NOT NULL, changed TEXT,"
    " content BLOB, PRIMARY KEY(id, version));"
    /* A record's erasures, for its history read a page at a time. */
    "CREATE INDEX IF NOT EXISTS record_erasures ON record_versions(id,"
    " version) WHERE op = 'erase';"
    "CREATE TABLE IF NOT EXISTS idempotency("
    " scope TEXT NOT NULL, key TEXT NOT NULL, req_hash BLOB NOT NULL,"
    " status INTEGER NOT NULL, body BLOB NOT NULL, time TEXT NOT NULL,"
    " record TEXT, PRIMARY KEY(scope, key));"
    /* For the retention sweep (idem_expire). */
    "CREATE INDEX IF NOT EXISTS idempotency_time ON idempotency(time);"
    /* For the erasure of a record (W_IDEM_ERASE). */
    "CREATE INDEX IF NOT EXISTS idempotency_record ON idempotency(record)"
    " WHERE record IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS outbox("
    " transfer_id TEXT PRIMARY KEY, record_id TEXT NOT NULL,"
    " to_area TEXT NOT NULL, purpose TEXT NOT NULL, initiator TEXT NOT NULL,"
    " status TEXT NOT NULL, attempts INTEGER NOT NULL,"
    " next_attempt_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, payload BLOB NOT NULL, receipt BLOB);"
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_ms);"
    /* For the deadline sweep while a peer is down (store_outbox_expired_for). */
    "CREATE INDEX IF NOT EXISTS outbox_deadline ON outbox(status, to_area,"
    " deadline_ms);"
    /* For the order of one record's transfers to a peer (store_read.c,
     * OUTBOX_NO_EARLIER). */
    "CREATE INDEX IF NOT EXISTS outbox_record ON outbox(record_id, to_area)"
    " WHERE status = 'queued';"
    /* The queued count is kept by triggers so that outbox_max costs one
     * read per add and follows savepoint rollbacks exactly. */
    "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY,"
    " n INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO counters VALUES('outbox_queued', 0);"
    "CREATE TRIGGER IF NOT EXISTS outbox_ins AFTER INSERT ON outbox"
    " WHEN NEW.status = 'queued' BEGIN"
    " UPDATE counters SET n = n + 1 WHERE name = 'outbox_queued'; END;"
    "CREATE TRIGGER IF NOT EXISTS outbox_upd AFTER UPDATE OF status ON outbox"
    " WHEN OLD.status <> NEW.status BEGIN"
    " UPDATE counters SET n = n + (NEW.status = 'queued')"
    " - (OLD.status = 'queued') WHERE name = 'outbox_queued'; END;"
    "CREATE TRIGGER IF NOT EXISTS outbox_del AFTER DELETE ON outbox"
    " WHEN OLD.status = 'queued' BEGIN"
    " UPDATE counters SET n = n - 1 WHERE name = 'outbox_queued'; END;"
    "CREATE TABLE IF NOT EXISTS inbound("
    " from_area TEXT NOT NULL, transfer_id TEXT NOT NULL,"
    " digest TEXT NOT NULL, received_at TEXT NOT NULL,"
    " audit_index INTEGER NOT NULL, receipt BLOB,"
    " PRIMARY KEY(from_area, transfer_id));"
    "CREATE TABLE IF NOT EXISTS audit_leaves("
    " idx INTEGER PRIMARY KEY, data BLOB NOT NULL, hash BLOB NOT NULL,"
    " record TEXT, actor TEXT NOT NULL, op TEXT NOT NULL, time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit_records("
    " record TEXT NOT NULL, idx INTEGER NOT NULL,"
    " PRIMARY KEY(record, idx)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO counters VALUES('audit_indexed', 0);"
    "CREATE INDEX IF NOT EXISTS audit_by_actor ON audit_leaves(actor);"
    /* Every read adds a consult entry: the op index leaves them out (a
     * search for op=consult alone scans), and there is no time index:
     * times never decrease with idx (run_batch), so a time range is two
     * binary searches over idx (store_read.c). */
    "CREATE INDEX IF NOT EXISTS audit_by_op_rare ON audit_leaves(op)"
    " WHERE op <> 'consult';"
    "CREATE TABLE IF NOT EXISTS merkle_nodes("
    " level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY(level, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS checkpoints("
    " size INTEGER PRIMARY KEY, note BLOB NOT NULL, time TEXT NOT NULL);"
    /* Schema 5: the peers' checkpoints this gateway witnesses. */
    "CREATE TABLE IF NOT EXISTS witnessed(area TEXT PRIMARY KEY,"
    " size INTEGER NOT NULL, root BLOB NOT NULL, note BLOB NOT NULL,"
    " time TEXT NOT NULL, refused_note BLOB, refused_time TEXT);"
    /* A known value sealed with the data key (check_data_key). */
    "CREATE TABLE IF NOT EXISTS key_check(id INTEGER PRIMARY KEY"
    " CHECK (id = 1), sealed BLOB NOT NULL);";

/* Writer statements, prepared once per connection. */
enum {
	W_BEGIN, W_COMMIT, W_ROLLBACK, W_SAVEPOINT, W_RELEASE, W_ROLLBACK_TO,
	W_IDEM_GET, W_IDEM_ROW, W_IDEM_DEL, W_IDEM_PUT, W_REC_GET, W_REC_PUT, W_REC_ERASE, W_VER_PUT,
	W_VER_WIPE, W_IDEM_ERASE, W_OUT_QUEUED_OF, W_OUT_CANCEL, W_OUT_WIPE, W_LEAF_PUT, W_NODE_PUT,
	W_OUT_COUNT, W_OUT_ADD, W_OUT_UPD,
	W_IN_ADD, W_IN_RCPT, W_CKPT_PUT, W_SECDEL_ON, W_SECDEL_FAST,
	W_IDX_GET, W_IDX_FILL, W_IDX_MARK, W_IDEM_EXPIRE, W_WIT_INS, W_WIT_UPD,
	W_WIT_REFUSED, W_NSTMT
};

static const char *const writer_sql[W_NSTMT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_SAVEPOINT] = "SAVEPOINT job",
	[W_RELEASE] = "RELEASE job",
	[W_ROLLBACK_TO] = "ROLLBACK TO job",
	[W_IDEM_GET] = "SELECT 1 FROM idempotency WHERE scope = ?1 AND key = ?2",
	[W_IDEM_ROW] = "SELECT req_hash, status, body FROM idempotency"
	    " WHERE scope = ?1 AND key = ?2",
	[W_IDEM_DEL] = "DELETE FROM idempotency WHERE scope = ?1 AND key = ?2"
	    " AND req_hash = ?3",
	[W_IDEM_PUT] = "INSERT INTO idempotency(scope, key, req_hash, status,"
	    " body, time, record) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[W_REC_GET] = "SELECT version, erased, managing_area FROM records"
	    " WHERE id = ?1",
	[W_REC_PUT] = "INSERT INTO records(id, version, category, level,"
	    " managing_area, erased) VALUES(?1, ?2, ?3, ?4, ?5, 0)"
	    " ON CONFLICT(id) DO UPDATE SET version = excluded.version,"
	    " category = excluded.category, level = excluded.level,"
	    " managing_area = excluded.managing_area, erased = 0",
	[W_REC_ERASE] = "UPDATE records SET version = ?2, erased = 1"
	    " WHERE id = ?1",
	[W_VER_PUT] = "INSERT INTO record_versions(id, version, time, actor, op,"
	    " changed, content) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	/* An earlier erasure's version keeps its core (erase_tombstone): it
	 * still decides who may read the versions of the record it erased. */
	[W_VER_WIPE] = "UPDATE record_versions SET content = NULL"
	    " WHERE id = ?1 AND content IS NOT NULL AND op <> 'erase'",
	/* The keys of the writes and transfers of an erased record: the
	 * request hash (of a body that may hold one date or postcode), the
	 * key (visorctl push derives it from the body) and the answer would
	 * outlive the erasure by their retention, up to a week. */
	[W_IDEM_ERASE] = "DELETE FROM idempotency WHERE record = ?1",
	/* An erased record's transfers: the queued ones are not sent, and
	 * no row keeps its content (the payload is the sealed record). */
	[W_OUT_QUEUED_OF] = "SELECT transfer_id FROM outbox"
	    " WHERE record_id = ?1 AND status = 'queued' ORDER BY transfer_id",
	[W_OUT_CANCEL] = "UPDATE outbox SET status = 'failed'"
	    " WHERE record_id = ?1 AND status = 'queued'",
	[W_OUT_WIPE] = "UPDATE outbox SET payload = x''"
	    " WHERE record_id = ?1 AND length(payload) > 0",
	[W_LEAF_PUT] = "INSERT INTO audit_leaves(idx, data, hash, record, actor,"
	    " op, time) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[W_NODE_PUT] = "INSERT INTO merkle_nodes(level, idx, hash)"
	    " VALUES(?1, ?2, ?3)",
	[W_OUT_COUNT] = "SELECT n FROM counters WHERE name = 'outbox_queued'",
	[W_OUT_ADD] = "INSERT INTO outbox(transfer_id, record_id, to_area,"
	    " purpose, initiator, status, attempts, next_attempt_ms,"
	    " deadline_ms, created_ms, payload) VALUES(?1, ?2, ?3, ?4, ?5,"
	    " 'queued', 0, ?6, ?7, ?6, ?8)",
	/* An outcome applies to a transfer still queued: one an erasure
	 * cancelled while its delivery was in flight (W_OUT_CANCEL) is not
	 * queued again, nor failed or rejected a second time (NOT_FOUND rolls
	 * back the outcome's audit entry).  A receipt is kept even then: the
	 * peer has the record, and the log must say so. */
	[W_OUT_UPD] = "UPDATE outbox SET status = ?2, attempts = ?3,"
	    " next_attempt_ms = ?4, receipt = coalesce(?5, receipt)"
	    " WHERE transfer_id = ?1"
	    " AND (status = 'queued' OR ?2 = 'delivered')"
	    " AND (?2 <> 'queued' OR length(payload) > 0)",
	[W_IN_ADD] = "INSERT INTO inbound(from_area, transfer_id, digest,"
	    " received_at, audit_index) VALUES(?1, ?2, ?3, ?4, ?5)",
	/* The first receipt stays: a repeat is answered with the same bytes. */
	[W_IN_RCPT] = "UPDATE inbound SET receipt = ?3"
	    " WHERE from_area = ?1 AND transfer_id = ?2 AND receipt IS NULL",
	[W_CKPT_PUT] = "INSERT OR REPLACE INTO checkpoints(size, note, time)"
	    " VALUES(?1, ?2, ?3)",
	[W_SECDEL_ON] = "PRAGMA secure_delete=ON",
	[W_SECDEL_FAST] = "PRAGMA secure_delete=FAST",
	[W_IDX_GET] = "SELECT n FROM counters WHERE name = 'audit_indexed'",
	/* In key order, so the B-tree is walked once. */
	[W_IDX_FILL] = "INSERT INTO audit_records(record, idx)"
	    " SELECT record, idx FROM audit_leaves WHERE idx >= ?1"
	    " AND record IS NOT NULL ORDER BY record, idx",
	[W_IDX_MARK] = "UPDATE counters SET n = ?1 WHERE name = 'audit_indexed'",
	/* A bounded share per sweep, so a backlog never makes one commit
	 * long: the next sweeps take the rest (idem_expire). */
	[W_IDEM_EXPIRE] = "DELETE FROM idempotency WHERE rowid IN (SELECT rowid"
	    " FROM idempotency WHERE time < ?1 ORDER BY time LIMIT ?2)",
	/* A peer's first witnessed checkpoint, and a newer one in place of
	 * the one held: only in place of the size the caller verified the
	 * consistency proof from (two requests racing cannot put a checkpoint
	 * that was checked against another one). */
	[W_WIT_INS] = "INSERT INTO witnessed(area, size, root, note, time)"
	    " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(area) DO NOTHING",
	[W_WIT_UPD] = "UPDATE witnessed SET size = ?2, root = ?3, note = ?4,"
	    " time = ?5 WHERE area = ?1 AND size = ?6 AND size < ?2",
	[W_WIT_REFUSED] = "UPDATE witnessed SET refused_note = ?2,"
	    " refused_time = ?3 WHERE area = ?1",
};

typedef enum {
	OP_IDEM, OP_PUT, OP_ERASE, OP_AUDIT, OP_OUT_ADD, OP_OUT_UPD, OP_IN_ADD,
	OP_IN_RCPT, OP_WITNESS, OP_WITNESS_REFUSED
} op_kind_t;

/* One operation of a job.  The string slots are named for the record
 * operations; the other kinds document their use in the job builders. */
typedef struct {
	op_kind_t kind;
	char *id, *area, *actor, *changed, *s4, *s5;
	char *blob;		/* plaintext content, payload, body or receipt */
	size_t blob_len;
	int has_blob;
	uint8_t hash[32];
	int cat, lvl;
	uint64_t version;
	int64_t t1, t2;
	buf_t head, tail;	/* audit: the leaf around seq, time, version */
} store_op_t;

/* A record state the writer publishes to the cache once the job's batch
 * is durable (store_cache.h). */
typedef struct cache_pub {
	struct cache_pub *next;
	char *id;
	store_cache_meta_t meta;
	buf_t sealed;
} cache_pub_t;

struct store_job {
	store_op_t *ops;
	size_t n, cap;
	size_t n_audit;
	int bad;		/* a builder call failed: the job fails */
	cache_pub_t *pubs;	/* publications, in order */
	store_done_fn done;
	void *arg;
	store_result_t res;
	int64_t queued_ms;	/* monotonic; when store_submit queued it */
	struct store_job *next;
};

struct store {
	char *data_dir, *area, *origin, *db_path, *ckpt_path;
	unsigned interval_ms;
	size_t max_batch, outbox_max;
	unsigned busy_ms;		/* writer's busy timeout */
	uint8_t key[AEAD_KEY_LEN];
	note_signer_t *signer;
	store_cache_t *cache;		/* current records, sealed */
	store_ids_t *ids;		/* ids that may exist (store_open) */
	int lock_fd;			/* store.lock, held while open; -1 */
	char last_time[25];		/* time of the newest committed entry */
	sqlite3 *keeper;		/* holds the WAL index (keep_wal_index) */

	/* Writer thread state (only the writer touches these after open). */
	sqlite3 *db;
	sqlite3_stmt *st[W_NSTMT];
	int db_broken;
	merkle_frontier_t tree;		/* durable tree */
	uint64_t signed_size;
	int64_t last_sign_ms;		/* monotonic; 0: never */
	int commit_failing;		/* armed for the batch COMMIT only */
	uint64_t indexed;		/* audit_records holds every leaf below;
					   the counter audit_indexed on disk */
	unsigned index_lag;		/* fill the index at this many more */
	int64_t idem_keep_ms;		/* idempotency keys kept this long */
	int64_t idem_swept_ms;		/* monotonic; last retention sweep */
	int wal_wipe_pending;		/* an erasure's old frames may remain
					   in the WAL (wal_wipe) */
	int64_t wal_wipe_ms;		/* monotonic; last wal_wipe attempt */
	int wal_wipe_failing;		/* logged once per failing spell */

	/* Shared, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	store_job_t *head, *tail;	/* queued, not yet taken by the writer */
	size_t n_queued;
	int closing, started;
	pthread_t thread;
	uint64_t durable_size;
	int64_t signed_wall_ms;		/* monotonic time of the last signature */
	int have_signed;
	uint64_t pub_signed_size;	/* size of the latest signed checkpoint */
	unsigned fault_commits;
	store_stats_t stats;

	/* WAL checkpointer thread (wal_hook, ckpt_main). */
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
	int ckpt_wanted, ckpt_stop;	/* under ckpt_mu */
	int ckpt_started;		/* set before the writer starts */
	pthread_t ckpt_thread;
};

/* ---------------------------------------------------------------- utils */


static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sqlite3_int64
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
path_in(const char *dir, const char *name)
{
	char p[STORE_PATH_MAX];

	if (file_join(p, sizeof(p), dir, name) < 0)
		return NULL;
	return strdup(p);
}

static void
free_secret(char *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

const char *
store_int_db_path(const store_t *s)
{
	return s->db_path;
}

store_cache_t *
store_int_cache(const store_t *s)
{
	return s->cache;
}

store_ids_t *
store_int_ids(const store_t *s)
{
	return s->ids;
}

const uint8_t *
store_int_data_key(const store_t *s)
{
	return s->key;
}

size_t
store_int_record_aad(const char *id, uint64_t version, char *aad,
    size_t aadlen)
{
	size_t idlen = strlen(id);
	int n;

	if (idlen > STORE_MAX_ID || idlen + 1 >= aadlen)
		return 0;
	memcpy(aad, id, idlen);
	aad[idlen] = '\0';
	n = snprintf(aad + idlen + 1, aadlen - idlen - 1, "%" PRIu64, version);
	if (n < 0 || (size_t)n >= aadlen - idlen - 1)
		return 0;
	return idlen + 1 + (size_t)n;
}

size_t
store_int_label_aad(const char *label, const char *a, const char *b,
    char *aad, size_t aadlen)
{
	size_t ll = strlen(label), al = strlen(a), bl = b ? strlen(b) : 0;
	size_t need = ll + 1 + al + (b ? 1 + bl : 0);

	if (need > aadlen)
		return 0;
	memcpy(aad, label, ll);
	aad[ll] = '\0';
	memcpy(aad + ll + 1, a, al);
	if (b != NULL) {
		aad[ll + 1 + al] = '\0';
		memcpy(aad + ll + 2 + al, b, bl);
	}
	return need;
}

size_t
store_int_idem_aad(const char *scope, const char *key, const uint8_t hash[32],
    int status, char *aad, size_t aadlen)
{
	size_t n = store_int_label_aad("idem2", scope, key, aad, aadlen);
	uint32_t s = (uint32_t)status;

	if (n == 0 || n + 1 + 32 + 4 > aadlen)
		return 0;
	aad[n++] = '\0';
	memcpy(aad + n, hash, 32);
	n += 32;
	aad[n++] = (char)(s >> 24);
	aad[n++] = (char)(s >> 16);
	aad[n++] = (char)(s >> 8);
	aad[n++] = (char)s;
	return n;
}

int
store_int_idem_open(const store_t *s, const char *scope, const char *key,
    const uint8_t hash[32], int status, const void *p, size_t n, buf_t *body)
{
	char aad[STORE_IDEM_AAD_MAX];
	size_t aadlen;

	if (p == NULL || n == 0 || n > STORE_MAX_VALUE)
		return -1;
	aadlen = store_int_idem_aad(scope, key, hash, status, aad, sizeof(aad));
	if (aadlen != 0 && aead_open(s->key, aad, aadlen, p, n, body) == 0)
		return 0;
	aadlen = store_int_label_aad("idem", scope, key, aad, sizeof(aad));
	return aadlen != 0 && aead_open(s->key, aad, aadlen, p, n, body) == 0 ?
	    0 : -1;
}

sqlite3 *
store_int_connect(const char *path, int flags, const char *vfs, char *err,
    size_t errlen)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, vfs);
	if (rc != SQLITE_OK) {
		errmsg_set(err, errlen, "%s: %s", path,
		    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	if (sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_extended_result_codes(db, 1) != SQLITE_OK) {
		errmsg_set(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

int
store_int_prepare(sqlite3 *db, sqlite3_stmt **cache, const char *sql,
    char *err, size_t errlen)
{
	if (*cache != NULL) {
		sqlite3_reset(*cache);
		sqlite3_clear_bindings(*cache);
		return 0;
	}
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, cache,
	    NULL) != SQLITE_OK) {
		errmsg_set(err, errlen, "prepare: %s", sqlite3_errmsg(db));
		*cache = NULL;
		return -1;
	}
	return 0;
}

int
store_int_node(void *ctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	struct store_node_reader *nr = ctx;
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (index > (uint64_t)INT64_MAX || level > 63)
		return -1;
	if (level > 0 && level < STORE_NODE_MIN_LEVEL) {
		merkle_hash_t l, r;

		if (index > (uint64_t)INT64_MAX / 2 ||
		    store_int_node(ctx, level - 1, 2 * index, l) < 0 ||
		    store_int_node(ctx, level - 1, 2 * index + 1, r) < 0)
			return -1;
		merkle_node_hash(l, r, out);
		return 0;
	}
	if (level == 0) {
		if (store_int_prepare(nr->db, nr->leaf_hash,
		    "SELECT hash FROM audit_leaves WHERE idx = ?1", NULL, 0) < 0)
			return -1;
		st = *nr->leaf_hash;
		if (sqlite3_bind_int64(st, 1, (sqlite3_int64)index) != SQLITE_OK)
			goto out;
	} else {
		if (store_int_prepare(nr->db, nr->node_hash,
		    "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2",
		    NULL, 0) < 0)
			return -1;
		st = *nr->node_hash;
		if (sqlite3_bind_int(st, 1, (int)level) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, (sqlite3_int64)index) != SQLITE_OK)
			goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == MERKLE_HASH_LEN &&
	    sqlite3_column_type(st, 0) == SQLITE_BLOB) {
		memcpy(out, sqlite3_column_blob(st, 0), MERKLE_HASH_LEN);
		ret = 0;
	}
out:
	sqlite3_reset(st);
	return ret;
}

/* ------------------------------------------------------------ job build */

store_job_t *
store_job_new(void)
{
	return calloc(1, sizeof(store_job_t));
}

static void
op_clear(store_op_t *op)
{
	free(op->id);
	free(op->area);
	free(op->actor);
	free(op->changed);
	free(op->s4);
	free(op->s5);
	free_secret(op->blob, op->blob_len);
	buf_free(&op->head);
	buf_free(&op->tail);
}

static void
pubs_clear(store_job_t *j)
{
	cache_pub_t *p, *next;

	for (p = j->pubs; p != NULL; p = next) {
		next = p->next;
		free(p->id);
		buf_free(&p->sealed);
		free(p);
	}
	j->pubs = NULL;
}

void
store_job_free(store_job_t *j)
{
	size_t i;

	if (j == NULL)
		return;
	pubs_clear(j);
	for (i = 0; i < j->n; i++)
		op_clear(&j->ops[i]);
	free(j->ops);
	free(j);
}

static store_op_t *
job_add(store_job_t *j, op_kind_t kind)
{
	store_op_t *n;
	size_t cap;

	if (j == NULL)
		return NULL;
	if (j->n == j->cap) {
		cap = j->cap ? j->cap * 2 : 4;
		if ((n = realloc(j->ops, cap * sizeof(*n))) == NULL) {
			j->bad = 1;
			return NULL;
		}
		j->ops = n;
		j->cap = cap;
	}
	n = &j->ops[j->n];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	return n;
}

/* Copy s (at most max bytes, NUL-free) into *dst.  Unless optional, s must
 * be given and non-empty; if optional, NULL (left NULL) and "" are allowed. */
static int
copy_str(char **dst, const char *s, size_t max, int optional)
{
	size_t len;

	*dst = NULL;
	if (s == NULL)
		return optional ? 0 : -1;
	len = strlen(s);
	if (len > max || (len == 0 && !optional))
		return -1;
	return (*dst = strdup(s)) != NULL ? 0 : -1;
}

static int
copy_blob(store_op_t *op, const void *p, size_t len)
{
	if (len > STORE_MAX_VALUE || (p == NULL && len > 0))
		return -1;
	if ((op->blob = malloc(len + 1)) == NULL)
		return -1;
	if (len > 0)
		memcpy(op->blob, p, len);
	op->blob[len] = '\0';
	op->blob_len = len;
	op->has_blob = 1;
	return 0;
}

/* Undo a half-built op and mark the job failed. */
static int
job_op_fail(store_job_t *j)
{
	op_clear(&j->ops[j->n]);
	j->bad = 1;
	return -1;
}

int
store_job_idempotency(store_job_t *j, const char *scope, const char *key,
    const uint8_t req_hash[32], int http_status, const char *body, size_t len,
    int replace)
{
	store_op_t *op;

	if (j == NULL || j->n != 0 || req_hash == NULL) {
		if (j != NULL)
			j->bad = 1;
		return -1;
	}
	if ((op = job_add(j, OP_IDEM)) == NULL)
		return -1;
	/* id: scope, area: key */
	if (copy_str(&op->id, scope, STORE_MAX_KEY, 0) < 0 ||
	    copy_str(&op->area, key, STORE_MAX_KEY, 0) < 0 ||
	    http_status < 100 || http_status > 599 ||
	    copy_blob(op, body, len) < 0)
		return job_op_fail(j);
	memcpy(op->hash, req_hash, 32);
	op->cat = http_status;
	op->version = replace != 0;	/* 1: replace a stale answer */
	j->n++;
	return 0;
}

int
store_job_idempotency_write(store_job_t *j, const char *scope,
    const char *key, const uint8_t req_hash[32], int http_status, int replace)
{
	if (store_job_idempotency(j, scope, key, req_hash, http_status, "", 0,
	    replace) < 0)
		return -1;
	j->ops[j->n - 1].lvl = 1;	/* the answer names the job's write */
	return 0;
}

int
store_job_put_record(store_job_t *j, const char *id, uint64_t expect_version,
    int category, int level, const char *managing_area, const char *json,
    size_t len, const char *actor, const char *changed_paths_json)
{
	store_op_t *op;
	cJSON *changed = NULL;

	if ((op = job_add(j, OP_PUT)) == NULL)
		return -1;
	if (copy_str(&op->id, id, STORE_MAX_ID, 0) < 0 ||
	    copy_str(&op->area, managing_area, STORE_MAX_AREA, 0) < 0 ||
	    copy_str(&op->actor, actor, STORE_MAX_KEY, 0) < 0 ||
	    json == NULL || len == 0 || copy_blob(op, json, len) < 0)
		return job_op_fail(j);
	/* The history shows changed paths as JSON: accept only an array. */
	if (changed_paths_json != NULL) {
		changed = json_parse_strict(changed_paths_json,
		    strlen(changed_paths_json), 4, NULL, 0);
		if (changed == NULL || !cJSON_IsArray(changed) ||
		    (op->changed = json_print(changed)) == NULL) {
			cJSON_Delete(changed);
			return job_op_fail(j);
		}
		cJSON_Delete(changed);
	}
	op->version = expect_version;
	op->cat = category;
	op->lvl = level;
	j->n++;
	return 0;
}

int
store_job_erase_record(store_job_t *j, const char *id,
    uint64_t expect_version, const char *actor)
{
	return store_job_erase_record_core(j, id, expect_version, actor, 0, 0);
}

int
store_job_erase_record_core(store_job_t *j, const char *id,
    uint64_t expect_version, const char *actor, int category, int level)
{
	store_op_t *op;

	if ((op = job_add(j, OP_ERASE)) == NULL)
		return -1;
	if (expect_version == STORE_VERSION_ABSENT ||
	    category < 0 || category > 255 || level < 0 || level > 255 ||
	    (category == 0) != (level == 0) ||
	    copy_str(&op->id, id, STORE_MAX_ID, 0) < 0 ||
	    copy_str(&op->actor, actor, STORE_MAX_KEY, 0) < 0)
		return job_op_fail(j);
	op->version = expect_version;
	op->cat = category;	/* 0: no core kept */
	op->lvl = level;
	j->n++;
	return 0;
}

/* The sealed content of an erasure's version v of record id: the erased
 * record's core, so that who may read its history can still be decided.
 * 0 (out filled, or left empty when the erasure named no category), -1. */
static int
erase_tombstone(store_t *s, const store_op_t *op, const char *area,
    uint64_t v, buf_t *out)
{
	char aad[STORE_MAX_ID + 24];
	unsigned char head[2];
	buf_t pt = BUF_INIT;
	size_t aadlen;
	int rc = -1;

	if (op->cat == 0)
		return 0;
	head[0] = (unsigned char)op->cat;
	head[1] = (unsigned char)op->lvl;
	aadlen = store_int_record_aad(op->id, v, aad, sizeof(aad));
	if (aadlen != 0 && buf_append(&pt, head, 2) == 0 &&
	    buf_puts(&pt, "{\"id\":") == 0 &&
	    json_append_string(&pt, op->id) == 0 &&
	    buf_puts(&pt, ",\"managing_area\":") == 0 &&
	    json_append_string(&pt, area) == 0 &&
	    buf_printf(&pt, ",\"category\":%d,\"level\":%d}", op->cat,
	    op->lvl) == 0 &&
	    aead_seal(s->key, aad, aadlen, pt.data, pt.len, out) == 0)
		rc = 0;
	buf_free(&pt);
	return rc;
}

/* An entry longer than the auditors' tools read (AUDIT_ENTRY_MAX_PARTS,
 * even with schema paths) is refused here, before anything is written. */
int
store_job_audit(store_job_t *j, const audit_entry_t *e)
{
	store_op_t *op;

	if ((op = job_add(j, OP_AUDIT)) == NULL)
		return -1;
	/* Encoding here, on the submitting thread, is the deep copy: the
	 * writer only adds seq, time and version (and a bad entry fails now,
	 * not in the writer).  id: record, actor: actor id, area: op. */
	if (e == NULL || audit_entry_encode_parts(e, &op->head, &op->tail) < 0 ||
	    op->head.len + op->tail.len > AUDIT_ENTRY_MAX_PARTS ||
	    copy_str(&op->id, e->record, STORE_MAX_KEY, 1) < 0 ||
	    copy_str(&op->actor, e->actor_id, STORE_MAX_KEY, 0) < 0 ||
	    copy_str(&op->area, e->op, 32, 0) < 0)
		return job_op_fail(j);
	op->version = e->version;
	j->n++;
	j->n_audit++;
	return 0;
}

int
store_job_outbox_add(store_job_t *j, const char *transfer_id,
    const char *record_id, const char *to_area, const char *purpose,
    const char *initiator, const char *payload, size_t len, int64_t deadline_ms)
{
	store_op_t *op;

	if ((op = job_add(j, OP_OUT_ADD)) == NULL)
		return -1;
	/* id: transfer id, s4: record id, area: to_area, changed: purpose,
	 * actor: initiator */
	if (copy_str(&op->id, transfer_id, STORE_MAX_ID, 0) < 0 ||
	    copy_str(&op->s4, record_id, STORE_MAX_ID, 0) < 0 ||
	    copy_str(&op->area, to_area, STORE_MAX_AREA, 0) < 0 ||
	    copy_str(&op->changed, purpose, STORE_MAX_PURPOSE, 0) < 0 ||
	    copy_str(&op->actor, initiator, STORE_MAX_ACTOR, 0) < 0 ||
	    payload == NULL || copy_blob(op, payload, len) < 0)
		return job_op_fail(j);
	op->t2 = deadline_ms;
	j->n++;
	return 0;
}

static int
valid_status(const char *s)
{
	return s != NULL && (strcmp(s, "queued") == 0 ||
	    strcmp(s, "delivered") == 0 || strcmp(s, "rejected") == 0 ||
	    strcmp(s, "failed") == 0);
}

int
store_job_outbox_update(store_job_t *j, const char *transfer_id,
    const char *status, unsigned attempts, int64_t next_attempt_ms,
    const char *receipt, size_t receipt_len)
{
	store_op_t *op;

	if ((op = job_add(j, OP_OUT_UPD)) == NULL)
		return -1;
	/* id: transfer id, s4: status */
	if (copy_str(&op->id, transfer_id, STORE_MAX_ID, 0) < 0 ||
	    !valid_status(status) || copy_str(&op->s4, status, 15, 0) < 0 ||
	    (receipt != NULL && copy_blob(op, receipt, receipt_len) < 0))
		return job_op_fail(j);
	op->version = attempts;
	op->t1 = next_attempt_ms;
	j->n++;
	return 0;
}

int
store_job_inbound_add(store_job_t *j, const char *from_area,
    const char *transfer_id, const char *digest, const char *received_at)
{
	store_op_t *op;

	if ((op = job_add(j, OP_IN_ADD)) == NULL)
		return -1;
	/* area: from_area, id: transfer id, s4: digest, s5: received_at */
	if (copy_str(&op->area, from_area, STORE_MAX_AREA, 0) < 0 ||
	    copy_str(&op->id, transfer_id, STORE_MAX_ID, 0) < 0 ||
	    copy_str(&op->s4, digest, 64, 0) < 0 ||
	    copy_str(&op->s5, received_at, 31, 0) < 0)
		return job_op_fail(j);
	j->n++;
	return 0;
}

int
store_job_inbound_receipt(store_job_t *j, const char *from_area,
    const char *transfer_id, const char *receipt, size_t len)
{
	store_op_t *op;

	if ((op = job_add(j, OP_IN_RCPT)) == NULL)
		return -1;
	if (copy_str(&op->area, from_area, STORE_MAX_AREA, 0) < 0 ||
	    copy_str(&op->id, transfer_id, STORE_MAX_ID, 0) < 0 ||
	    receipt == NULL || copy_blob(op, receipt, len) < 0)
		return job_op_fail(j);
	j->n++;
	return 0;
}

int
store_job_witness_put(store_job_t *j, const char *area, int64_t held_size,
    uint64_t size, const merkle_hash_t root, const char *note, size_t len)
{
	store_op_t *op;

	if ((op = job_add(j, OP_WITNESS)) == NULL)
		return -1;
	if (held_size < -1 || size > (uint64_t)INT64_MAX ||
	    (held_size >= 0 && (uint64_t)held_size >= size) ||
	    copy_str(&op->area, area, STORE_MAX_AREA, 0) < 0 ||
	    note == NULL || len == 0 || len > 65536 ||
	    copy_blob(op, note, len) < 0)
		return job_op_fail(j);
	op->t1 = held_size;
	op->t2 = (int64_t)size;
	memcpy(op->hash, root, MERKLE_HASH_LEN);
	j->n++;
	return 0;
}

int
store_job_witness_refused(store_job_t *j, const char *area, const char *note,
    size_t len)
{
	store_op_t *op;

	if ((op = job_add(j, OP_WITNESS_REFUSED)) == NULL)
		return -1;
	if (copy_str(&op->area, area, STORE_MAX_AREA, 0) < 0 ||
	    note == NULL || len == 0 || len > 65536 ||
	    copy_blob(op, note, len) < 0)
		return job_op_fail(j);
	j->n++;
	return 0;
}

/* ------------------------------------------------------- writer: SQLite */

static void
writer_close_db(store_t *s)
{
	size_t i;

	for (i = 0; i < W_NSTMT; i++) {
		sqlite3_finalize(s->st[i]);
		s->st[i] = NULL;
	}
	if (s->db != NULL)
		sqlite3_close(s->db);
	s->db = NULL;
}

/*
 * WAL checkpoints.  A commit of the writer appends its pages to the WAL;
 * copying them back into the database file and syncing it is the
 * checkpointer thread's work, on a connection of its own, so that a
 * checkpoint (tens of milliseconds for a 32 MiB WAL) does not hold up the
 * group commits queued behind it.  The writer's WAL hook wakes it once the
 * WAL holds CKPT_PAGES pages.  Should the checkpointer fall behind, fail
 * or not run (store_check), the writer checkpoints itself once the WAL
 * holds CKPT_WRITER_PAGES, as SQLite's own autocheckpoint would.  A
 * checkpoint only copies pages already durable in the WAL: it has no say
 * in what is acknowledged or signed.
 */
#define CKPT_PAGES 8192
#define CKPT_WRITER_PAGES (4 * CKPT_PAGES)

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen);

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	store_t *s = arg;

	if (pages >= CKPT_WRITER_PAGES || (pages >= CKPT_PAGES &&
	    !s->ckpt_started)) {
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
		    NULL, NULL);
	} else if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&s->ckpt_mu);
		s->ckpt_wanted = 1;
		pthread_cond_signal(&s->ckpt_cv);
		pthread_mutex_unlock(&s->ckpt_mu);
	}
	return SQLITE_OK;
}

static sqlite3 *
ckpt_connect(store_t *s, char *err, size_t errlen)
{
	sqlite3 *db = store_int_connect(s->db_path, SQLITE_OPEN_READWRITE, NULL,
	    err, errlen);

	/* The database file is synced before the WAL may be reused. */
	if (db != NULL && exec_sql(db, "PRAGMA synchronous=FULL", err,
	    errlen) < 0) {
		sqlite3_close(db);
		db = NULL;
	}
	return db;
}

static void *
ckpt_main(void *arg)
{
	store_t *s = arg;
	sqlite3 *db = NULL;
	char err[256];
	int rc, failing = 0;

	(void)pthread_setname_np(pthread_self(), "gw-store-ckpt");
	pthread_mutex_lock(&s->ckpt_mu);
	for (;;) {
		while (!s->ckpt_wanted && !s->ckpt_stop)
			pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
		if (s->ckpt_stop)
			break;
		s->ckpt_wanted = 0;
		pthread_mutex_unlock(&s->ckpt_mu);
		err[0] = '\0';
		if (db == NULL)
			db = ckpt_connect(s, err, sizeof(err));
		rc = db == NULL ? SQLITE_CANTOPEN : sqlite3_wal_checkpoint_v2(db,
		    NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc == SQLITE_OK || rc == SQLITE_BUSY) {
			/* BUSY: the writer is checkpointing itself. */
			if (rc == SQLITE_OK) {
				pthread_mutex_lock(&s->mu);
				s->stats.wal_checkpoints++;
				pthread_mutex_unlock(&s->mu);
			}
			if (failing)
				log_msg(LOG_INFO, "wal-checkpoint", "working again");
			failing = 0;
		} else {
			/* Logged once per failing spell; the next commit past
			 * CKPT_PAGES asks again, on a new connection. */
			if (!failing)
				log_msg(LOG_WARN, "wal-checkpoint", "failed: %s",
				    err[0] != '\0' ? err : sqlite3_errmsg(db));
			failing = 1;
			sqlite3_close(db);
			db = NULL;
		}
		pthread_mutex_lock(&s->ckpt_mu);
	}
	pthread_mutex_unlock(&s->ckpt_mu);
	sqlite3_close(db);
	return NULL;
}

/* Stop and join the checkpointer (before the writer's connection closes,
 * so that the writer's is the last and removes the WAL). */
static void
ckpt_stop(store_t *s)
{
	if (!s->ckpt_started)
		return;
	pthread_mutex_lock(&s->ckpt_mu);
	s->ckpt_stop = 1;
	pthread_cond_signal(&s->ckpt_cv);
	pthread_mutex_unlock(&s->ckpt_mu);
	pthread_join(s->ckpt_thread, NULL);
	s->ckpt_started = 0;
}

/* The commit hook turns COMMIT into a rollback when a fault is injected. */
static int
commit_hook(void *arg)
{
	store_t *s = arg;

	return s->commit_failing;
}

static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		errmsg_set(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int create_schema(store_t *s, char *err, size_t errlen);
static int migrate_v1(store_t *s, char *err, size_t errlen);
static int migrate_v2(store_t *s, char *err, size_t errlen);
static int migrate_v3(store_t *s, char *err, size_t errlen);
static int idem_fill_records(store_t *s, char *err, size_t errlen);
static int check_data_key(store_t *s, int write, char *err, size_t errlen);
static int step_done(sqlite3_stmt *st);
static int bind_text(sqlite3_stmt *st, int i, const char *v);
static int load_indexed(store_t *s, char *err, size_t errlen);
static int load_last_time(store_t *s, char *err, size_t errlen);

/* Every commit durable before it is answered, and the WAL synced before a
 * commit is visible to other connections, which store_walvfs needs: the
 * writer runs synchronous=FULL (2) or EXTRA (3), checked, not assumed. */
static int
writer_syncs_commits(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int level = -1;

	if (sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		level = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (level != 2 && level != 3) {
		errmsg_set(err, errlen, "%s: the writer must run with "
		    "synchronous=FULL (got %d)", s->db_path, level);
		return -1;
	}
	return 0;
}

static int
writer_open_db(store_t *s, char *err, size_t errlen)
{
	size_t i;
	int fd;

	/* A new store.db is made 0600 here: SQLite would create it with the
	 * umask's mode, and whoever opened it before the chmod below could
	 * read it through that descriptor for good.  An existing one is not
	 * opened here (closing a descriptor of it would drop this process's
	 * SQLite locks on it). */
	if ((fd = open(s->db_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) >= 0) {
		close(fd);
	} else if (errno != EEXIST) {
		errmsg_set(err, errlen, "%s: %s", s->db_path, strerror(errno));
		return -1;
	}
	/* Only the writer gathers its WAL writes (store_walvfs.h): it alone
	 * writes frames, and always with synchronous=FULL (below), which
	 * that needs. */
	s->db = store_int_connect(s->db_path,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, store_walvfs_name(),
	    err, errlen);
	if (s->db == NULL)
		return -1;
	/* A lock held by another process (sqlite3 on the live file) is waited
	 * for this long, then the batch fails and its requests get 503. */
	if (sqlite3_busy_timeout(s->db, (int)s->busy_ms) != SQLITE_OK) {
		errmsg_set(err, errlen, "%s: %s", s->db_path, sqlite3_errmsg(s->db));
		goto err;
	}
	/* The files hold ciphertext and metadata: keep them private.  WAL and
	 * shared-memory files take the database file's mode. */
	if (chmod(s->db_path, 0600) < 0) {
		errmsg_set(err, errlen, "%s: %s", s->db_path, strerror(errno));
		goto err;
	}
	/* secure_delete=FAST zeroes deleted cells where that costs no extra
	 * I/O; erasure switches it fully on (freed pages zeroed too).
	 * temp_store=MEMORY keeps the per-job savepoint journals in memory
	 * (no temporary files); a larger cache and WAL checkpoint interval
	 * keep big group commits from spilling and re-checkpointing pages. */
	if (exec_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "PRAGMA secure_delete=FAST; PRAGMA foreign_keys=ON;"
	    "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;"
	    "PRAGMA journal_size_limit=67108864;",
	    err, errlen) < 0 || writer_syncs_commits(s, err, errlen) < 0 ||
	    create_schema(s, err, errlen) < 0)
		goto err;
	for (i = 0; i < W_NSTMT; i++)
		if (sqlite3_prepare_v3(s->db, writer_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			errmsg_set(err, errlen, "prepare: %s",
			    sqlite3_errmsg(s->db));
			goto err;
		}
	sqlite3_commit_hook(s->db, commit_hook, s);
	/* In place of SQLite's autocheckpoint (wal_hook above). */
	sqlite3_wal_hook(s->db, wal_hook, s);
	if (load_last_time(s, err, errlen) < 0 ||
	    load_indexed(s, err, errlen) < 0)
		goto err;
	s->db_broken = 0;
	return 0;
err:
	writer_close_db(s);
	return -1;
}

/* Where the record index stops (index_fill). */
static int
load_indexed(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->st[W_IDX_GET];
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW || sqlite3_column_int64(st, 0) < 0) {
		errmsg_set(err, errlen, "%s: audit index mark: %s", s->db_path,
		    rc == SQLITE_DONE ? "missing" : sqlite3_errmsg(s->db));
		sqlite3_reset(st);
		return -1;
	}
	s->indexed = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* The newest entry's time ("" for an empty log): batches never stamp an
 * earlier one (run_batch). */
static int
load_last_time(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	int rc;

	s->last_time[0] = '\0';
	if (sqlite3_prepare_v2(s->db, "SELECT time FROM audit_leaves"
	    " ORDER BY idx DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		errmsg_set(err, errlen, "%s: %s", s->db_path,
		    sqlite3_errmsg(s->db));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && (t = sqlite3_column_text(st, 0)) != NULL &&
	    sqlite3_column_bytes(st, 0) < (int)sizeof(s->last_time))
		memcpy(s->last_time, t, (size_t)sqlite3_column_bytes(st, 0) + 1);
	else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		errmsg_set(err, errlen, "%s: %s", s->db_path,
		    sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

static int
create_schema(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ver;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		errmsg_set(err, errlen, "%s: %s", s->db_path, sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	ver = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (ver > STORE_SCHEMA_VERSION) {
		errmsg_set(err, errlen, "%s: schema version %d is newer than this "
		    "program (%d)", s->db_path, ver, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if ((ver == 1 && migrate_v1(s, err, errlen) < 0) ||
	    (ver >= 1 && ver <= 3 && migrate_v3(s, err, errlen) < 0) ||
	    exec_sql(s->db, schema_sql, err, errlen) < 0 ||
	    ((ver == 1 || ver == 2) && migrate_v2(s, err, errlen) < 0) ||
	    /* The fill opens the answers: with another store.key it would
	     * open none and commit schema 4 with no row filled, for good.
	     * The key is checked first, and a wrong one leaves schema 3. */
	    (ver >= 1 && ver <= 3 && (check_data_key(s, 0, err, errlen) < 0 ||
	    idem_fill_records(s, err, errlen) < 0)) ||
	    /* 4 -> 5: the table witnessed, made by schema_sql. */
	    exec_sql(s->db, "PRAGMA user_version=5", err, errlen) < 0 ||
	    exec_sql(s->db, "COMMIT", err, errlen) < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/* Schema 1 -> 2: the op index without the consult entries replaces the
 * full one (schema_sql creates it), and the time index goes if the log's
 * times never decrease; a log whose clock once went back keeps it, and
 * its readers search by it (store_read.c). */
static int
migrate_v1(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int backwards;

	if (sqlite3_prepare_v2(s->db, "SELECT EXISTS(SELECT 1 FROM audit_leaves"
	    " a JOIN audit_leaves b ON b.idx = a.idx + 1 WHERE b.time < a.time)",
	    -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		errmsg_set(err, errlen, "%s: migration: %s", s->db_path,
		    sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	backwards = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (exec_sql(s->db, "DROP INDEX IF EXISTS audit_by_op", err, errlen) < 0 ||
	    (!backwards && exec_sql(s->db, "DROP INDEX IF EXISTS audit_by_time",
	    err, errlen) < 0))
		return -1;
	return 0;
}

/* Schema 2 -> 3: the record index becomes the table audit_records, filled
 * here from the leaves (schema_sql has created it, empty), and complete up
 * to the end of the log. */
static int
migrate_v2(store_t *s, char *err, size_t errlen)
{
	return exec_sql(s->db, "INSERT INTO audit_records(record, idx)"
	    " SELECT record, idx FROM audit_leaves WHERE record IS NOT NULL"
	    " ORDER BY record, idx;"
	    "UPDATE counters SET n = (SELECT coalesce(max(idx) + 1, 0)"
	    " FROM audit_leaves) WHERE name = 'audit_indexed';"
	    "DROP INDEX IF EXISTS audit_by_record;", err, errlen);
}

/* Schema 3 -> 4: idempotency rows name their record (for its erasure);
 * the column comes before schema_sql, whose index names it. */
static int
migrate_v3(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int has;

	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM"
	    " pragma_table_info('idempotency') WHERE name = 'record'", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		errmsg_set(err, errlen, "%s: migration: %s", s->db_path,
		    sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	has = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return has ? 0 : exec_sql(s->db, "ALTER TABLE idempotency ADD COLUMN"
	    " record TEXT", err, errlen);
}

/* The record of each idempotency row kept before schema 4: the id its
 * answer names (a record write), or the record of the transfer it names
 * (POST /v1/transfers).  Run once the data key is known to be the
 * store's (create_schema); a row whose answer does not open all the same
 * (damaged) stays without, and goes at its expiry. */
static int
idem_fill_records(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL, *out = NULL, *upd = NULL;
	buf_t body = BUF_INIT;
	int rc, ret = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT rowid, scope, key, req_hash,"
	    " status, body FROM idempotency WHERE record IS NULL", -1, &sel,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT record_id FROM outbox"
	    " WHERE transfer_id = ?1", -1, &out, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE idempotency SET record = ?2"
	    " WHERE rowid = ?1", -1, &upd, NULL) != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *scope = (const char *)sqlite3_column_text(sel, 1);
		const char *key = (const char *)sqlite3_column_text(sel, 2);
		const void *hash = sqlite3_column_blob(sel, 3);
		const void *p = sqlite3_column_blob(sel, 5);
		int n = sqlite3_column_bytes(sel, 5);
		const char *rec = NULL, *tid;
		cJSON *j = NULL;

		if (scope == NULL || key == NULL || hash == NULL ||
		    sqlite3_column_bytes(sel, 3) != 32 || n <= 0 ||
		    store_int_idem_open(s, scope, key, hash,
		    sqlite3_column_int(sel, 4), p, (size_t)n, &body) < 0 ||
		    (j = cJSON_ParseWithLength(body.data, body.len)) == NULL) {
			cJSON_Delete(j);
			goto next;
		}
		rec = json_get_str(j, "id");
		tid = json_get_str(j, "transfer_id");
		if (rec == NULL && tid != NULL) {
			if (bind_text(out, 1, tid) != SQLITE_OK)
				rc = SQLITE_ERROR;
			else if (sqlite3_step(out) == SQLITE_ROW)
				rec = (const char *)sqlite3_column_text(out, 0);
		}
		if (rec != NULL && (sqlite3_bind_int64(upd, 1,
		    sqlite3_column_int64(sel, 0)) != SQLITE_OK ||
		    bind_text(upd, 2, rec) != SQLITE_OK ||
		    step_done(upd) != SQLITE_OK))
			rc = SQLITE_ERROR;
		sqlite3_reset(out);
		cJSON_Delete(j);
		if (rc == SQLITE_ERROR)
			break;
next:
		OPENSSL_cleanse(body.data, body.len);
		buf_free(&body);
	}
	if (rc == SQLITE_DONE)
		ret = 0;
out:
	if (ret < 0)
		errmsg_set(err, errlen, "%s: migration: %s", s->db_path,
		    sqlite3_errmsg(s->db));
	if (body.data != NULL)
		OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	sqlite3_finalize(sel);
	sqlite3_finalize(out);
	sqlite3_finalize(upd);
	return ret;
}

/* Step a write statement to completion.  SQLITE_DONE or the error code. */
static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run a pragma statement (which answers with a row).  SQLITE_OK or error. */
static int
pragma_run(sqlite3_stmt *st)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
run_plain(store_t *s, int which)
{
	return step_done(s->st[which]);
}

/* ------------------------------------------------------- writer: ops */

typedef struct {
	store_t *s;
	store_job_t *j;
	const char *now;	/* commit time of the batch */
	uint64_t write_version;	/* version the job's record write got */
	int status;
	char err[160];
} job_ctx_t;

static int
job_fail(job_ctx_t *c, int status, const char *what)
{
	c->status = status;
	if (status == STORE_FAILED) {
		snprintf(c->err, sizeof(c->err), "%s: %s", what,
		    sqlite3_errmsg(c->s->db));
	}
	return -1;
}

static int
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int record_state(store_t *s, const char *id, uint64_t *version,
    int *erased, char *area);

/*
 * Replace (op->version 1): is the key's row still an answer of this same
 * request that names a version its record, still live, has left (an
 * erased record is not written again over its erasure)?  The route found it
 * so on its read snapshot, but a retry of the same request may have come
 * to the writer first and put a current answer in its place: that one
 * stands (this job is then STORE_IDEM_EXISTS and replays it), or both
 * retries would write.  Decided here, where jobs are serialised.  1 stale,
 * 0 not (or no row, or no record write in the job), -1 error.
 */
static int
idem_row_stale(job_ctx_t *c, const store_op_t *op)
{
	store_t *s = c->s;
	sqlite3_stmt *st = s->st[W_IDEM_ROW];
	const char *rec = NULL;
	size_t i;
	const void *p;
	buf_t body = BUF_INIT;
	cJSON *j = NULL;
	int64_t v;
	uint64_t cur;
	int rc, n, erased, status, ret = -1;

	for (i = 0; i < c->j->n && rec == NULL; i++)
		if (c->j->ops[i].kind == OP_PUT)
			rec = c->j->ops[i].id;
	if (rec == NULL)
		return 0;
	if (bind_text(st, 1, op->id) || bind_text(st, 2, op->area))
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	ret = 0;
	p = sqlite3_column_blob(st, 0);
	if (sqlite3_column_bytes(st, 0) != 32 || p == NULL ||
	    memcmp(p, op->hash, 32) != 0)
		goto out;		/* another request's: it stays */
	status = sqlite3_column_int(st, 1);
	p = sqlite3_column_blob(st, 2);
	n = sqlite3_column_bytes(st, 2);
	if (n <= 0 || store_int_idem_open(s, op->id, op->area, op->hash,
	    status, p, (size_t)n, &body) < 0)
		goto out;	/* does not open: kept, as the reader does */
	if ((j = cJSON_ParseWithLength(body.data, body.len)) == NULL ||
	    json_get_int(j, "version", 1, INT64_MAX, &v) != 0)
		goto out;
	if ((rc = record_state(s, rec, &cur, &erased, NULL)) < 0) {
		ret = -1;
		goto out;
	}
	ret = rc == 0 && !erased && cur != (uint64_t)v;
out:
	sqlite3_reset(st);
	cJSON_Delete(j);
	if (body.data != NULL)
		OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	return ret;
}

/* The record a job writes or transfers (the first), or NULL. */
static const char *
job_record(const store_job_t *j)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		if (j->ops[i].kind == OP_PUT || j->ops[i].kind == OP_ERASE)
			return j->ops[i].id;
		if (j->ops[i].kind == OP_OUT_ADD)
			return j->ops[i].s4;
	}
	return NULL;
}

/* The key's check, where the job's ops begin: a row of (scope, key) makes
 * the whole job STORE_IDEM_EXISTS before anything is written.  The row is
 * added by idem_insert, after the job's other ops. */
static int
op_idem(job_ctx_t *c, store_op_t *op)
{
	store_t *s = c->s;
	sqlite3_stmt *st = s->st[W_IDEM_GET];
	int rc;

	/* A stale answer of the same request goes (the job's savepoint
	 * brings it back if the job fails); another request's stays. */
	if (op->version == 1 && (rc = idem_row_stale(c, op)) != 0) {
		if (rc < 0)
			return job_fail(c, STORE_FAILED, "idempotency");
		st = s->st[W_IDEM_DEL];
		if (bind_text(st, 1, op->id) || bind_text(st, 2, op->area) ||
		    sqlite3_bind_blob(st, 3, op->hash, 32, SQLITE_STATIC) ||
		    step_done(st) != SQLITE_OK) {
			sqlite3_reset(st);
			return job_fail(c, STORE_FAILED, "idempotency");
		}
		st = s->st[W_IDEM_GET];
	}
	if (bind_text(st, 1, op->id) || bind_text(st, 2, op->area))
		return job_fail(c, STORE_FAILED, "idempotency");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return job_fail(c, STORE_IDEM_EXISTS, NULL);
	if (rc != SQLITE_DONE)
		return job_fail(c, STORE_FAILED, "idempotency");
	return 0;
}

/* The key's row, once the job's other ops have run: an answer of the
 * job's record write (op->lvl) names the version that write got, not one
 * the route foresaw on its read snapshot (an erasure and a new write
 * committed between the two move it on). */
static int
idem_insert(job_ctx_t *c, store_op_t *op)
{
	store_t *s = c->s;
	sqlite3_stmt *st = s->st[W_IDEM_PUT];
	char aad[STORE_IDEM_AAD_MAX];
	const char *rec = job_record(c->j);
	size_t aadlen;
	buf_t answer = BUF_INIT, sealed = BUF_INIT;
	const char *pt = op->blob;
	size_t ptlen = op->blob_len;
	int rc = -1;

	if (op->lvl) {
		if (c->write_version == 0 || rec == NULL) {
			c->status = STORE_FAILED;
			snprintf(c->err, sizeof(c->err), "idempotent answer "
			    "names the job's record write but the job wrote none");
			return -1;
		}
		if (buf_puts(&answer, "{\"id\":") < 0 ||
		    json_append_string(&answer, rec) < 0 ||
		    buf_printf(&answer, ",\"version\":%llu}",
		    (unsigned long long)c->write_version) < 0) {
			buf_free(&answer);
			return job_fail(c, STORE_FAILED, "idempotency");
		}
		pt = answer.data;
		ptlen = answer.len;
	}
	/* The replayed answer may echo request data: sealed like a record. */
	aadlen = store_int_idem_aad(op->id, op->area, op->hash, op->cat, aad,
	    sizeof(aad));
	if (aadlen == 0 || aead_seal(s->key, aad, aadlen, pt, ptlen,
	    &sealed) < 0) {
		job_fail(c, STORE_FAILED, "idempotency seal");
		goto out;
	}
	if (bind_text(st, 1, op->id) || bind_text(st, 2, op->area) ||
	    sqlite3_bind_blob(st, 3, op->hash, 32, SQLITE_STATIC) ||
	    sqlite3_bind_int(st, 4, op->cat) ||
	    sqlite3_bind_blob(st, 5, sealed.data ? sealed.data : "",
	    (int)sealed.len, SQLITE_STATIC) ||
	    bind_text(st, 6, c->now) || bind_text(st, 7, rec) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		job_fail(c, STORE_FAILED, "idempotency");
		goto out;
	}
	rc = 0;
out:
	buf_free(&answer);
	buf_free(&sealed);
	return rc;
}

/* Current version and state of a record: 0 found, 1 absent, -1 error.
 * area (room for 40 bytes, may be NULL) gets its managing area. */
static int
record_state(store_t *s, const char *id, uint64_t *version, int *erased,
    char *area)
{
	sqlite3_stmt *st = s->st[W_REC_GET];
	int rc, ret = -1;

	if (bind_text(st, 1, id) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sqlite3_int64 v = sqlite3_column_int64(st, 0);
		const unsigned char *a = sqlite3_column_text(st, 2);
		int alen = sqlite3_column_bytes(st, 2);

		if (v >= 0 && a != NULL && alen >= 0 && alen < 40) {
			*version = (uint64_t)v;
			*erased = sqlite3_column_int(st, 1) != 0;
			if (area != NULL) {
				memcpy(area, a, (size_t)alen);
				area[alen] = '\0';
			}
			ret = 0;
		}
	} else if (rc == SQLITE_DONE) {
		*version = 0;
		*erased = 0;
		ret = 1;
	}
	sqlite3_reset(st);
	return ret;
}

/* Queue id's new state for the cache and the id filter; published only
 * once the batch is durable (run_batch).  sealed is taken (left empty).  If
 * the publication cannot be queued the job fails: the cache must never keep
 * answering with the version this job replaces, nor the filter say that a
 * written id does not exist. */
static int
job_publish(job_ctx_t *c, const char *id, int state, uint64_t version,
    const char *area, buf_t *sealed)
{
	cache_pub_t *p, **pp;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->id = strdup(id)) == NULL) {
		free(p);
		c->status = STORE_FAILED;
		snprintf(c->err, sizeof(c->err), "record cache: out of memory");
		return -1;
	}
	p->meta.state = state;
	p->meta.version = version;
	snprintf(p->meta.managing_area, sizeof(p->meta.managing_area), "%s",
	    area != NULL ? area : "");
	if (sealed != NULL) {
		p->sealed = *sealed;
		memset(sealed, 0, sizeof(*sealed));
	}
	for (pp = &c->j->pubs; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = p;
	return 0;
}

static int
insert_version(job_ctx_t *c, const char *id, uint64_t v, const char *actor,
    const char *opname, const char *changed, const buf_t *content)
{
	sqlite3_stmt *st = c->s->st[W_VER_PUT];

	if (bind_text(st, 1, id) || sqlite3_bind_int64(st, 2,
	    (sqlite3_int64)v) || bind_text(st, 3, c->now) ||
	    bind_text(st, 4, actor) || bind_text(st, 5, opname) ||
	    bind_text(st, 6, changed) ||
	    (content != NULL ? sqlite3_bind_blob(st, 7, content->data,
	    (int)content->len, SQLITE_STATIC) : sqlite3_bind_null(st, 7)) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return -1;
	}
	return 0;
}

static int
op_put(job_ctx_t *c, store_op_t *op)
{
	store_t *s = c->s;
	sqlite3_stmt *st = s->st[W_REC_PUT];
	uint64_t cur, nv;
	int erased, r;
	char aad[STORE_MAX_ID + 24];
	size_t aadlen;
	buf_t sealed = BUF_INIT;

	if ((r = record_state(s, op->id, &cur, &erased, NULL)) < 0)
		return job_fail(c, STORE_FAILED, "record");
	if (op->version == STORE_VERSION_ABSENT) {
		if (r == 0 && !erased)
			return job_fail(c, STORE_EXISTS, NULL);
	} else if (op->version != STORE_VERSION_ANY) {
		if (r == 1 || erased)
			return job_fail(c, STORE_NOT_FOUND, NULL);
		if (cur != op->version)
			return job_fail(c, STORE_CONFLICT, NULL);
	}
	if (cur >= (uint64_t)INT64_MAX)
		return job_fail(c, STORE_FAILED, "record version");
	nv = cur + 1;
	aadlen = store_int_record_aad(op->id, nv, aad, sizeof(aad));
	/* Category and level travel inside the sealed content (two bytes
	 * before the JSON): in the clear they would tell whoever holds a copy
	 * of the database which records are terrorism cases.  The columns
	 * hold 0. */
	{
		buf_t pt = BUF_INIT;
		unsigned char head[2] = { (unsigned char)op->cat,
		    (unsigned char)op->lvl };

		if (op->cat < 0 || op->cat > 255 || op->lvl < 0 || op->lvl > 255 ||
		    buf_append(&pt, head, 2) < 0 ||
		    buf_append(&pt, op->blob, op->blob_len) < 0 || aadlen == 0 ||
		    aead_seal(s->key, aad, aadlen, pt.data, pt.len, &sealed) < 0) {
			buf_free(&pt);
			buf_free(&sealed);
			return job_fail(c, STORE_FAILED, "record seal");
		}
		buf_free(&pt);
	}
	if (bind_text(st, 1, op->id) || sqlite3_bind_int64(st, 2,
	    (sqlite3_int64)nv) || sqlite3_bind_int(st, 3, 0) ||
	    sqlite3_bind_int(st, 4, 0) || bind_text(st, 5, op->area) ||
	    step_done(st) != SQLITE_OK ||
	    insert_version(c, op->id, nv, op->actor, "put", op->changed,
	    &sealed) < 0) {
		sqlite3_reset(st);
		buf_free(&sealed);
		return job_fail(c, STORE_FAILED, "record");
	}
	r = job_publish(c, op->id, STORE_CACHE_LIVE, nv, op->area, &sealed);
	buf_free(&sealed);
	if (r < 0)
		return -1;
	c->write_version = nv;
	return 0;
}

static int append_leaf(job_ctx_t *c, const buf_t *head, const buf_t *tail,
    uint64_t version, const char *record, const char *actor, const char *op,
    buf_t *leaf);

/* The transfer-out entry of a transfer the erasure of record cancels, so
 * that its course in the log has an end: actor is who erased. */
static int
audit_cancelled(job_ctx_t *c, const char *record, const char *actor,
    const char *transfer_id, buf_t *leaf)
{
	audit_entry_t e;
	buf_t head = BUF_INIT, tail = BUF_INIT;
	int rc;

	memset(&e, 0, sizeof(e));
	e.op = "transfer-out";
	e.actor_id = actor;
	e.record = record;
	e.result = "failed";
	e.reason = "record-erased";
	e.transfer = transfer_id;
	if (audit_entry_encode_parts(&e, &head, &tail) < 0)
		rc = job_fail(c, STORE_FAILED, "audit entry encoding");
	else
		rc = append_leaf(c, &head, &tail, AUDIT_VERSION_NONE, record,
		    actor, e.op, leaf);
	buf_free(&head);
	buf_free(&tail);
	return rc;
}

/* The ids of record's queued transfers, into *ids (n of them; free each
 * and the array).  0 or -1. */
static int
queued_transfers(store_t *s, const char *record, char ***ids, size_t *n)
{
	sqlite3_stmt *st = s->st[W_OUT_QUEUED_OF];
	char **v = NULL, **nv;
	size_t k = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (bind_text(st, 1, record) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t == NULL || (nv = realloc(v, (k + 1) * sizeof(*v))) == NULL)
			break;
		v = nv;
		if ((v[k] = strdup(t)) == NULL)
			break;
		k++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		while (k > 0)
			free(v[--k]);
		free(v);
		return -1;
	}
	*ids = v;
	*n = k;
	return 0;
}

static int
op_erase(job_ctx_t *c, store_op_t *op)
{
	static const int wipes[] = { W_VER_WIPE, W_IDEM_ERASE, W_OUT_CANCEL,
	    W_OUT_WIPE };
	store_t *s = c->s;
	sqlite3_stmt *st;
	uint64_t cur;
	int erased, r, ret = -1;
	size_t i, n_cancel = 0;
	char area[40], **cancel = NULL;
	buf_t leaf = BUF_INIT, tomb = BUF_INIT;

	if ((r = record_state(s, op->id, &cur, &erased, area)) < 0)
		return job_fail(c, STORE_FAILED, "record");
	if (r == 1 || erased)
		return job_fail(c, STORE_NOT_FOUND, NULL);
	if (op->version != STORE_VERSION_ANY && op->version != cur)
		return job_fail(c, STORE_CONFLICT, NULL);
	if (cur >= (uint64_t)INT64_MAX)
		return job_fail(c, STORE_FAILED, "record version");
	/* The record's queued transfers, cancelled below: each gets its
	 * own entry after the erasure. */
	if (queued_transfers(s, op->id, &cancel, &n_cancel) < 0)
		return job_fail(c, STORE_FAILED, "erase");
	/* With secure_delete on, the destroyed ciphertext (and any overflow
	 * pages it freed) is zeroed in the database rather than left in free
	 * space for the life of the file. */
	if (pragma_run(s->st[W_SECDEL_ON]) != SQLITE_OK) {
		job_fail(c, STORE_FAILED, "erase");
		goto out;
	}
	/* The versions' content, the idempotency keys of writes and
	 * transfers of the record, and its transfers: those still queued
	 * are cancelled (failed) and every one loses its payload. */
	for (i = 0; i < sizeof(wipes) / sizeof(wipes[0]); i++) {
		st = s->st[wipes[i]];
		if (bind_text(st, 1, op->id) || step_done(st) != SQLITE_OK) {
			sqlite3_reset(st);
			pragma_run(s->st[W_SECDEL_FAST]);
			job_fail(c, STORE_FAILED, "erase");
			goto out;
		}
	}
	if (pragma_run(s->st[W_SECDEL_FAST]) != SQLITE_OK) {
		job_fail(c, STORE_FAILED, "erase");
		goto out;
	}
	st = s->st[W_REC_ERASE];
	if (erase_tombstone(s, op, area, cur + 1, &tomb) < 0 ||
	    bind_text(st, 1, op->id) || sqlite3_bind_int64(st, 2,
	    (sqlite3_int64)(cur + 1)) || step_done(st) != SQLITE_OK ||
	    insert_version(c, op->id, cur + 1, op->actor, "erase", NULL,
	    tomb.len > 0 ? &tomb : NULL) < 0) {
		sqlite3_reset(st);
		job_fail(c, STORE_FAILED, "erase");
		goto out;
	}
	if (job_publish(c, op->id, STORE_CACHE_ERASED, cur + 1, area, NULL) < 0)
		goto out;
	c->write_version = cur + 1;
	for (i = 0; i < n_cancel; i++)
		if (audit_cancelled(c, op->id, op->actor, cancel[i], &leaf) < 0)
			goto out;
	ret = 0;
out:
	for (i = 0; i < n_cancel; i++)
		free(cancel[i]);
	free(cancel);
	buf_free(&leaf);
	buf_free(&tomb);
	return ret;
}

static int
op_out_add(job_ctx_t *c, store_op_t *op)
{
	store_t *s = c->s;
	sqlite3_stmt *st = s->st[W_OUT_COUNT];
	char aad[STORE_MAX_ID + 16];
	size_t aadlen;
	buf_t sealed = BUF_INIT;
	sqlite3_int64 queued = -1;
	uint64_t cur;
	int rc, erased;
	char area[40];

	/* The route read the record before this batch: an erasure committed
	 * since must not be followed by a transfer of what it erased. */
	if ((rc = record_state(s, op->s4, &cur, &erased, area)) < 0)
		return job_fail(c, STORE_FAILED, "record");
	if (rc == 0 && erased)
		return job_fail(c, STORE_NOT_FOUND, NULL);
	if (sqlite3_step(st) == SQLITE_ROW)
		queued = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (queued < 0)
		return job_fail(c, STORE_FAILED, "outbox count");
	if ((uint64_t)queued >= s->outbox_max)
		return job_fail(c, STORE_FULL, NULL);
	aadlen = store_int_label_aad("outbox", op->id, NULL, aad, sizeof(aad));
	if (aadlen == 0 || aead_seal(s->key, aad, aadlen, op->blob,
	    op->blob_len, &sealed) < 0) {
		buf_free(&sealed);
		return job_fail(c, STORE_FAILED, "outbox seal");
	}
	st = s->st[W_OUT_ADD];
	if (bind_text(st, 1, op->id) || bind_text(st, 2, op->s4) ||
	    bind_text(st, 3, op->area) || bind_text(st, 4, op->changed) ||
	    bind_text(st, 5, op->actor) ||
	    sqlite3_bind_int64(st, 6, wall_ms()) ||
	    sqlite3_bind_int64(st, 7, op->t2) ||
	    sqlite3_bind_blob(st, 8, sealed.data, (int)sealed.len,
	    SQLITE_STATIC)) {
		sqlite3_reset(st);
		buf_free(&sealed);
		return job_fail(c, STORE_FAILED, "outbox");
	}
	rc = step_done(st);
	buf_free(&sealed);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return job_fail(c, STORE_EXISTS, NULL);
	if (rc != SQLITE_OK)
		return job_fail(c, STORE_FAILED, "outbox");
	return 0;
}

static int
op_out_upd(job_ctx_t *c, store_op_t *op)
{
	sqlite3_stmt *st = c->s->st[W_OUT_UPD];

	if (bind_text(st, 1, op->id) || bind_text(st, 2, op->s4) ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)op->version) ||
	    sqlite3_bind_int64(st, 4, op->t1) ||
	    (op->has_blob ? sqlite3_bind_blob(st, 5, op->blob,
	    (int)op->blob_len, SQLITE_STATIC) : sqlite3_bind_null(st, 5)) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return job_fail(c, STORE_FAILED, "outbox update");
	}
	if (sqlite3_changes(c->s->db) == 0)
		return job_fail(c, STORE_NOT_FOUND, NULL);
	return 0;
}

static int
op_in_add(job_ctx_t *c, store_op_t *op, uint64_t first_audit)
{
	sqlite3_stmt *st = c->s->st[W_IN_ADD];
	int rc;

	if (bind_text(st, 1, op->area) || bind_text(st, 2, op->id) ||
	    bind_text(st, 3, op->s4) || bind_text(st, 4, op->s5) ||
	    sqlite3_bind_int64(st, 5, (sqlite3_int64)first_audit)) {
		sqlite3_reset(st);
		return job_fail(c, STORE_FAILED, "inbound");
	}
	rc = step_done(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return job_fail(c, STORE_EXISTS, NULL);
	if (rc != SQLITE_OK)
		return job_fail(c, STORE_FAILED, "inbound");
	return 0;
}

static int
op_in_rcpt(job_ctx_t *c, store_op_t *op)
{
	sqlite3_stmt *st = c->s->st[W_IN_RCPT];

	if (bind_text(st, 1, op->area) || bind_text(st, 2, op->id) ||
	    sqlite3_bind_blob(st, 3, op->blob, (int)op->blob_len,
	    SQLITE_STATIC) || step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return job_fail(c, STORE_FAILED, "inbound receipt");
	}
	if (sqlite3_changes(c->s->db) == 0)
		return job_fail(c, STORE_NOT_FOUND, NULL);
	return 0;
}

/* The held checkpoint is still the one the caller checked against (t1;
 * -1: none), else STORE_CONFLICT and nothing changes. */
static int
op_witness(job_ctx_t *c, store_op_t *op)
{
	sqlite3_stmt *st = c->s->st[op->t1 < 0 ? W_WIT_INS : W_WIT_UPD];

	if (bind_text(st, 1, op->area) ||
	    sqlite3_bind_int64(st, 2, op->t2) ||
	    sqlite3_bind_blob(st, 3, op->hash, MERKLE_HASH_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_blob(st, 4, op->blob, (int)op->blob_len,
	    SQLITE_STATIC) || bind_text(st, 5, c->now) ||
	    (op->t1 >= 0 && sqlite3_bind_int64(st, 6, op->t1)) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return job_fail(c, STORE_FAILED, "witnessed checkpoint");
	}
	if (sqlite3_changes(c->s->db) == 0)
		return job_fail(c, STORE_CONFLICT, NULL);
	return 0;
}

/* Kept beside the held checkpoint; no held row, nothing to keep it by. */
static int
op_witness_refused(job_ctx_t *c, store_op_t *op)
{
	sqlite3_stmt *st = c->s->st[W_WIT_REFUSED];

	if (bind_text(st, 1, op->area) ||
	    sqlite3_bind_blob(st, 2, op->blob, (int)op->blob_len,
	    SQLITE_STATIC) || bind_text(st, 3, c->now) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return job_fail(c, STORE_FAILED, "refused checkpoint");
	}
	if (sqlite3_changes(c->s->db) == 0)
		return job_fail(c, STORE_NOT_FOUND, NULL);
	return 0;
}

static int
emit_node(void *ctx, unsigned level, uint64_t index, const merkle_hash_t h)
{
	store_t *s = ctx;
	sqlite3_stmt *st = s->st[W_NODE_PUT];

	if (level < STORE_NODE_MIN_LEVEL)
		return 0;	/* hashed from the leaves when needed */
	if (index > (uint64_t)INT64_MAX || sqlite3_bind_int(st, 1, (int)level) ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)index) ||
	    sqlite3_bind_blob(st, 3, h, MERKLE_HASH_LEN, SQLITE_STATIC) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return -1;
	}
	return 0;
}

/* Sequence an entry (its parts, audit_entry_encode_parts) as the next
 * leaf: assemble it, store it with its index columns, append it to the
 * tree.  leaf is scratch. */
static int
append_leaf(job_ctx_t *c, const buf_t *head, const buf_t *tail,
    uint64_t version, const char *record, const char *actor, const char *op,
    buf_t *leaf)
{
	store_t *s = c->s;
	sqlite3_stmt *st = s->st[W_LEAF_PUT];
	uint64_t seq = s->tree.size;
	merkle_hash_t h;

	if (seq >= (uint64_t)INT64_MAX)
		return job_fail(c, STORE_FAILED, "audit log full");
	buf_reset(leaf);
	if (audit_entry_assemble(seq, c->now, head->data, head->len, version,
	    tail->data, tail->len, leaf) < 0) {
		c->status = STORE_FAILED;
		snprintf(c->err, sizeof(c->err), "audit entry encoding");
		return -1;
	}
	merkle_leaf_hash(leaf->data, leaf->len, h);
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) ||
	    sqlite3_bind_blob(st, 2, leaf->data, (int)leaf->len,
	    SQLITE_STATIC) ||
	    sqlite3_bind_blob(st, 3, h, MERKLE_HASH_LEN, SQLITE_STATIC) ||
	    bind_text(st, 4, record) || bind_text(st, 5, actor) ||
	    bind_text(st, 6, op) || bind_text(st, 7, c->now) ||
	    step_done(st) != SQLITE_OK) {
		sqlite3_reset(st);
		return job_fail(c, STORE_FAILED, "audit leaf");
	}
	if (merkle_frontier_append(&s->tree, h, emit_node, s) < 0)
		return job_fail(c, STORE_FAILED, "audit tree");
	return 0;
}

static int
op_audit(job_ctx_t *c, store_op_t *op, buf_t *leaf)
{
	uint64_t v = op->version;

	if (v == AUDIT_VERSION_ASSIGNED) {
		if (c->write_version == 0) {
			c->status = STORE_FAILED;
			snprintf(c->err, sizeof(c->err), "audit entry asks for "
			    "the job's record version but the job wrote none");
			return -1;
		}
		v = c->write_version;
	}
	/* id: record, actor: actor id, area: op (store_job_audit) */
	return append_leaf(c, &op->head, &op->tail, v, op->id, op->actor,
	    op->area, leaf);
}

/* Run the job's ops: records and transfers first, then the audit entries,
 * so an entry can name the version the job's write got.  0 or -1 (c says
 * why). */
static int
run_ops(job_ctx_t *c, store_job_t *j, uint64_t first_audit, buf_t *leaf)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < j->n && rc == 0; i++) {
		store_op_t *op = &j->ops[i];

		switch (op->kind) {
		case OP_IDEM: rc = op_idem(c, op); break;
		case OP_PUT: rc = op_put(c, op); break;
		case OP_ERASE: rc = op_erase(c, op); break;
		case OP_OUT_ADD: rc = op_out_add(c, op); break;
		case OP_OUT_UPD: rc = op_out_upd(c, op); break;
		case OP_IN_ADD: rc = op_in_add(c, op, first_audit); break;
		case OP_IN_RCPT: rc = op_in_rcpt(c, op); break;
		case OP_WITNESS: rc = op_witness(c, op); break;
		case OP_WITNESS_REFUSED: rc = op_witness_refused(c, op); break;
		case OP_AUDIT: break;
		}
	}
	for (i = 0; i < j->n && rc == 0; i++)
		if (j->ops[i].kind == OP_IDEM)
			rc = idem_insert(c, &j->ops[i]);
	for (i = 0; i < j->n && rc == 0; i++)
		if (j->ops[i].kind == OP_AUDIT)
			rc = op_audit(c, &j->ops[i], leaf);
	return rc;
}

/* Does an audit entry ask for the record version of a job that writes no
 * record? */
static int
assigned_version_unmet(const store_job_t *j)
{
	size_t i;
	int asks = 0, writes = 0;

	for (i = 0; i < j->n; i++) {
		if (j->ops[i].kind == OP_AUDIT &&
		    j->ops[i].version == AUDIT_VERSION_ASSIGNED)
			asks = 1;
		if (j->ops[i].kind == OP_PUT || j->ops[i].kind == OP_ERASE)
			writes = 1;
	}
	return asks && !writes;
}

/* Run one job inside the open transaction.  Sets j->res.status.
 *
 * A job with more than one op besides its audit entries runs inside a
 * savepoint, so that a refusal of its second op also undoes its first.
 * A job with at most one runs without: every op refuses (exists, conflict,
 * full, not found) either before it writes or by a statement that SQLite
 * undoes itself, and the audit entries come last and refuse nothing.  So
 * a refused job leaves nothing behind, and only an error (storage, memory)
 * can stop it half-way: that fails the whole batch, as it would at commit.
 * The savepoint cost a copy of every page the job touched that earlier jobs
 * of the batch had touched too (the tail of each table and index): about a
 * sixth of the writer's time per PUT. */
static void
run_job(store_t *s, store_job_t *j, const char *now, buf_t *leaf)
{
	job_ctx_t c;
	merkle_frontier_t before;
	uint64_t first_audit = s->tree.size;
	int rc;

	memset(&c, 0, sizeof(c));
	c.s = s;
	c.j = j;
	c.now = now;
	c.status = STORE_OK;
	memset(&j->res, 0, sizeof(j->res));
	if (j->bad) {
		j->res.status = STORE_FAILED;
		snprintf(j->res.err, sizeof(j->res.err), "job was built with "
		    "an invalid operation");
		return;
	}
	if (j->n - j->n_audit <= 1) {
		if (assigned_version_unmet(j)) {
			c.status = STORE_FAILED;
			snprintf(c.err, sizeof(c.err), "audit entry asks for "
			    "the job's record version but the job writes none");
			goto out;
		}
		if (run_ops(&c, j, first_audit, leaf) != 0 &&
		    c.status == STORE_FAILED)
			s->db_broken = 1;
		goto out;
	}
	memcpy(&before, &s->tree, sizeof(before));
	if (run_plain(s, W_SAVEPOINT) != SQLITE_OK) {
		job_fail(&c, STORE_FAILED, "savepoint");
		goto out;
	}
	rc = run_ops(&c, j, first_audit, leaf);
	if (rc == 0) {
		if (run_plain(s, W_RELEASE) != SQLITE_OK)
			job_fail(&c, STORE_FAILED, "release");
		else
			goto out;
	}
	/* This job alone is undone, its tree appends too. */
	memcpy(&s->tree, &before, sizeof(before));
	if (run_plain(s, W_ROLLBACK_TO) != SQLITE_OK ||
	    run_plain(s, W_RELEASE) != SQLITE_OK) {
		/* The transaction is in an unknown state: fail the batch. */
		s->db_broken = 1;
		if (c.status != STORE_FAILED)
			job_fail(&c, STORE_FAILED, "rollback");
	}
out:
	j->res.status = c.status;
	if (c.status != STORE_OK)
		pubs_clear(j);	/* rolled back: nothing to publish */
	if (c.status == STORE_OK) {
		j->res.version = c.write_version;
		j->res.audit_index = j->n_audit > 0 ? first_audit : 0;
	} else if (c.status == STORE_FAILED) {
		memcpy(j->res.err, c.err, sizeof(j->res.err));
	}
}

/* ------------------------------------------------- writer: checkpoints */

static int
checkpoint_sign(store_t *s)
{
	merkle_hash_t root;
	buf_t body = BUF_INIT, note = BUF_INIT;
	char now[25];
	sqlite3_stmt *st;
	uint64_t size = s->tree.size;
	int ret = -1;

	if (size == 0 || size == s->signed_size)
		return 0;
	if (s->db == NULL || s->db_broken) {
		char e[160];

		writer_close_db(s);
		if (writer_open_db(s, e, sizeof(e)) < 0) {
			log_msg(LOG_ERROR, "checkpoint", "reopen: %s", e);
			/* Through out: the next try waits for the interval
			 * instead of spinning on a broken disk. */
			goto out;
		}
	}
	merkle_frontier_root(&s->tree, root);
	log_time_rfc3339(now);
	if (checkpoint_format(s->origin, size, root, &body) < 0 ||
	    note_sign(s->signer, body.data, body.len, &note) < 0) {
		log_msg(LOG_ERROR, "checkpoint", "cannot sign size %" PRIu64,
		    size);
		goto out;
	}
	/* The file first: a database then behind it by one checkpoint after a
	 * crash still holds every leaf the file covers, while a missing file
	 * with checkpoints in the database is evidence of tampering. */
	if (file_write_atomic(s->ckpt_path, note.data, note.len, 0600) < 0) {
		log_msg(LOG_ERROR, "checkpoint", "%s: %s", s->ckpt_path,
		    strerror(errno));
		goto out;
	}
	st = s->st[W_CKPT_PUT];
	if (run_plain(s, W_BEGIN) != SQLITE_OK) {
		log_msg(LOG_ERROR, "checkpoint", "begin: %s",
		    sqlite3_errmsg(s->db));
		s->db_broken = 1;
		goto out;
	}
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)size) ||
	    sqlite3_bind_blob(st, 2, note.data, (int)note.len, SQLITE_STATIC) ||
	    bind_text(st, 3, now) || step_done(st) != SQLITE_OK ||
	    run_plain(s, W_COMMIT) != SQLITE_OK) {
		log_msg(LOG_ERROR, "checkpoint", "store: %s",
		    sqlite3_errmsg(s->db));
		sqlite3_reset(st);
		if (!sqlite3_get_autocommit(s->db))
			run_plain(s, W_ROLLBACK);
		s->db_broken = 1;
		goto out;
	}
	s->signed_size = size;
	ret = 0;
out:
	buf_free(&body);
	buf_free(&note);
	/* Also after a failure, so a broken disk is retried at the interval
	 * rather than in a loop. */
	s->last_sign_ms = mono_ms();
	pthread_mutex_lock(&s->mu);
	if (ret == 0) {
		s->signed_wall_ms = s->last_sign_ms;
		s->have_signed = 1;
		s->pub_signed_size = size;
		s->stats.checkpoints++;
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* ------------------------------------------------------- writer: batch */

/* Add the leaves from s->indexed on to the record index and move the mark,
 * inside the batch's transaction (STORE_AUDIT_INDEX_LAG). */
static int
index_fill(store_t *s, char *err, size_t errlen)
{
	if (sqlite3_bind_int64(s->st[W_IDX_FILL], 1,
	    (sqlite3_int64)s->indexed) != SQLITE_OK ||
	    step_done(s->st[W_IDX_FILL]) != SQLITE_OK ||
	    sqlite3_bind_int64(s->st[W_IDX_MARK], 1,
	    (sqlite3_int64)s->tree.size) != SQLITE_OK ||
	    step_done(s->st[W_IDX_MARK]) != SQLITE_OK) {
		snprintf(err, errlen, "audit index: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	s->indexed = s->tree.size;
	return 0;
}

/* Drop idempotency keys older than the store keeps them, inside the
 * batch's transaction, at most once a minute (or once per keep time if
 * that is shorter).  A key is for retries: one older than that replays
 * nothing anyone waits for, and without an end the table only grows. */
#define IDEM_EXPIRE_SHARE 1000	/* keys dropped per sweep at most */

static int
idem_expire(store_t *s, char *err, size_t errlen)
{
	int64_t mono = mono_ms(), every, cut;
	struct timespec ts;
	struct tm tm;
	time_t sec;
	char before[25];

	every = s->idem_keep_ms < 60000 ? s->idem_keep_ms : 60000;
	if (s->idem_swept_ms != 0 && mono - s->idem_swept_ms < every)
		return 0;
	s->idem_swept_ms = mono;
	clock_gettime(CLOCK_REALTIME, &ts);
	cut = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
	    s->idem_keep_ms;
	sec = (time_t)(cut / 1000);
	/* Before 1970 nothing is stored: there is nothing to drop. */
	if (cut < 0 || gmtime_r(&sec, &tm) == NULL ||
	    strftime(before, 20, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
		return 0;
	snprintf(before + 19, sizeof(before) - 19, ".%03dZ",
	    (int)(cut % 1000));
	if (bind_text(s->st[W_IDEM_EXPIRE], 1, before) != SQLITE_OK ||
	    sqlite3_bind_int(s->st[W_IDEM_EXPIRE], 2, IDEM_EXPIRE_SHARE) !=
	    SQLITE_OK || step_done(s->st[W_IDEM_EXPIRE]) != SQLITE_OK) {
		sqlite3_reset(s->st[W_IDEM_EXPIRE]);
		snprintf(err, errlen, "idempotency sweep: %s",
		    sqlite3_errmsg(s->db));
		return -1;
	}
	/* A full share: more may be due.  The next commit sweeps again
	 * rather than a minute on, or keyed writes faster than a share a
	 * minute (17 a second), or a table from before the sweep, would
	 * never be caught up with. */
	if (sqlite3_changes(s->db) >= IDEM_EXPIRE_SHARE)
		s->idem_swept_ms = 0;
	return 0;
}

/*
 * After an erasure: the record's old content is still in the WAL (the
 * frames of the writes that stored it, and of those that zeroed it) and,
 * until the WAL is copied back, in the database file's older pages.  The
 * checkpointer would only get there once the WAL holds CKPT_PAGES, and
 * old frames beyond the current write position are reused, not erased.
 * So the writer copies the whole WAL back and truncates it to nothing
 * (SQLITE_CHECKPOINT_TRUNCATE) before the erasure is answered.  A
 * reader's open snapshot (a backup being copied) or the checkpointer at
 * work can hold it off: the erasure stands (it is committed and logged)
 * and the wipe is tried again at most every WAL_WIPE_RETRY_MS, waiting
 * at most WAL_WIPE_BUSY_MS each time, so a long reader never stalls the
 * group commit for long.
 */
#define WAL_WIPE_RETRY_MS 1000
#define WAL_WIPE_BUSY_MS 250

static void
wal_wipe(store_t *s)
{
	int rc, log_frames = -1, copied = -1;

	if (!s->wal_wipe_pending)
		return;
	s->wal_wipe_ms = mono_ms();
	/* A broken connection is reopened by the next batch, which tries
	 * again after its commit. */
	if (s->db == NULL || s->db_broken)
		return;
	(void)sqlite3_busy_timeout(s->db, (int)(s->busy_ms < WAL_WIPE_BUSY_MS ?
	    s->busy_ms : WAL_WIPE_BUSY_MS));
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    &log_frames, &copied);
	(void)sqlite3_busy_timeout(s->db, (int)s->busy_ms);
	if (rc == SQLITE_OK && log_frames == 0) {
		s->wal_wipe_pending = 0;
		pthread_mutex_lock(&s->mu);
		s->stats.wal_checkpoints++;
		pthread_mutex_unlock(&s->mu);
		if (s->wal_wipe_failing)
			log_msg(LOG_INFO, "wal-wipe", "working again");
		s->wal_wipe_failing = 0;
		return;
	}
	if (!s->wal_wipe_failing)
		log_msg(LOG_WARN, "wal-wipe", "erased content may remain in the "
		    "WAL until a later attempt: %s", rc != SQLITE_OK ?
		    sqlite3_errstr(rc) : "frames left");
	s->wal_wipe_failing = 1;
}

static void
run_batch(store_t *s, store_job_t *batch)
{
	merkle_frontier_t before;
	store_job_t *j, *next;
	char now[25], err[160];
	buf_t leaf = BUF_INIT;
	int failed = 0, rc, erased = 0;
	size_t njobs = 0;
	uint64_t indexed_before;

	memcpy(&before, &s->tree, sizeof(before));
	indexed_before = s->indexed;
	err[0] = '\0';
	if (s->db == NULL || s->db_broken) {
		writer_close_db(s);
		if (writer_open_db(s, err, sizeof(err)) < 0)
			failed = 1;
	}
	if (!failed && run_plain(s, W_BEGIN) != SQLITE_OK) {
		snprintf(err, sizeof(err), "begin: %s", sqlite3_errmsg(s->db));
		failed = 1;
	}
	log_time_rfc3339(now);
	/* Entry times never decrease with their index, even if the clock is
	 * set back: search finds a time range by binary search over idx, and
	 * an auditor reads the log in order.  A clock set back shows as
	 * entries carrying the last time until it catches up. */
	if (strcmp(now, s->last_time) < 0)
		memcpy(now, s->last_time, sizeof(now));
	for (j = batch; j != NULL && !failed; j = j->next) {
		run_job(s, j, now, &leaf);
		/* An I/O error can make SQLite roll the whole transaction
		 * back; later jobs must not run outside it. */
		if (s->db_broken || sqlite3_get_autocommit(s->db)) {
			if (j->res.status == STORE_FAILED)
				snprintf(err, sizeof(err), "%s", j->res.err);
			else
				snprintf(err, sizeof(err), "transaction lost");
			failed = 1;
		}
	}
	if (!failed && s->tree.size - s->indexed >= s->index_lag &&
	    index_fill(s, err, sizeof(err)) < 0)
		failed = 1;
	if (!failed && idem_expire(s, err, sizeof(err)) < 0)
		failed = 1;
	if (!failed) {
		pthread_mutex_lock(&s->mu);
		s->commit_failing = s->fault_commits > 0;
		if (s->fault_commits > 0)
			s->fault_commits--;
		pthread_mutex_unlock(&s->mu);
		rc = run_plain(s, W_COMMIT);
		s->commit_failing = 0;
		if (rc != SQLITE_OK) {
			snprintf(err, sizeof(err), "commit: %s",
			    sqlite3_errstr(rc));
			failed = 1;
		}
	}
	if (failed) {
		/* Nothing of the batch is durable: the in-memory tree must
		 * not run ahead of the disk. */
		if (s->db != NULL && !sqlite3_get_autocommit(s->db))
			run_plain(s, W_ROLLBACK);
		memcpy(&s->tree, &before, sizeof(before));
		s->db_broken = 1;
		log_msg(LOG_ERROR, "store_commit", "batch failed: %s", err);
	}
	buf_free(&leaf);
	if (!failed)
		memcpy(s->last_time, now, sizeof(s->last_time));
	if (failed)
		s->indexed = indexed_before;
	pthread_mutex_lock(&s->mu);
	s->durable_size = s->tree.size;
	if (failed)
		s->stats.failed_commits++;
	else
		s->stats.commits++;
	if (s->indexed != indexed_before)
		s->stats.index_fills++;
	for (j = batch; j != NULL; j = j->next)
		njobs++;
	s->stats.jobs += njobs;
	pthread_mutex_unlock(&s->mu);
	/* An erasure's old frames go before it is answered (wal_wipe); an
	 * earlier one's that could not, at the retry interval. */
	for (j = batch; j != NULL && !failed; j = j->next) {
		size_t i;

		for (i = 0; i < j->n; i++)
			if (j->ops[i].kind == OP_ERASE &&
			    j->res.status == STORE_OK)
				erased = 1;
	}
	if (erased)
		s->wal_wipe_pending = 1;
	if (!failed && (erased || (s->wal_wipe_pending &&
	    mono_ms() - s->wal_wipe_ms >= WAL_WIPE_RETRY_MS)))
		wal_wipe(s);
	/* Durable: readers may now see the new states.  Before any answer
	 * goes out, so a client that got its 200 reads what it wrote. */
	for (j = batch; j != NULL && !failed; j = j->next) {
		cache_pub_t *p;

		for (p = j->pubs; p != NULL; p = p->next) {
			store_ids_add(s->ids, p->id);
			store_cache_put(s->cache, p->id, &p->meta, p->sealed.data,
			    p->sealed.len);
		}
	}
	for (j = batch; j != NULL; j = next) {
		next = j->next;
		if (failed) {
			memset(&j->res, 0, sizeof(j->res));
			j->res.status = STORE_FAILED;
			snprintf(j->res.err, sizeof(j->res.err), "%s", err);
		}
		j->res.audit_size = s->tree.size;
		if (j->done != NULL)
			j->done(j->arg, &j->res);
		store_job_free(j);
	}
}

static void
deadline_at(struct timespec *ts, int64_t mono_deadline_ms)
{
	ts->tv_sec = mono_deadline_ms / 1000;
	ts->tv_nsec = (mono_deadline_ms % 1000) * 1000000;
}

static void *
writer_main(void *arg)
{
	store_t *s = arg;
	store_job_t *batch, *last;
	size_t n;
	int64_t due, wipe_due;
	struct timespec ts;

	(void)pthread_setname_np(pthread_self(), "gw-store-writer");
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->head != NULL) {
			batch = last = s->head;
			for (n = 1; n < s->max_batch && last->next != NULL; n++)
				last = last->next;
			s->head = last->next;
			if (s->head == NULL)
				s->tail = NULL;
			last->next = NULL;
			s->n_queued -= n;
			pthread_mutex_unlock(&s->mu);
			run_batch(s, batch);
			if (s->tree.size > s->signed_size &&
			    (s->last_sign_ms == 0 ||
			    mono_ms() - s->last_sign_ms >= (int64_t)s->interval_ms))
				checkpoint_sign(s);
			pthread_mutex_lock(&s->mu);
			continue;
		}
		if (s->closing)
			break;
		wipe_due = s->wal_wipe_ms + WAL_WIPE_RETRY_MS;
		if (s->wal_wipe_pending && mono_ms() >= wipe_due) {
			pthread_mutex_unlock(&s->mu);
			wal_wipe(s);
			pthread_mutex_lock(&s->mu);
			continue;
		}
		if (s->tree.size > s->signed_size) {
			due = s->last_sign_ms + (int64_t)s->interval_ms;
			if (mono_ms() >= due) {
				pthread_mutex_unlock(&s->mu);
				checkpoint_sign(s);
				pthread_mutex_lock(&s->mu);
				continue;
			}
			if (s->wal_wipe_pending && wipe_due < due)
				due = wipe_due;
			deadline_at(&ts, due);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		} else if (s->wal_wipe_pending) {
			deadline_at(&ts, wipe_due);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		} else {
			pthread_cond_wait(&s->cv, &s->mu);
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (s->tree.size > s->signed_size)
		checkpoint_sign(s);
	return NULL;
}

void
store_submit(store_t *s, store_job_t *j, store_done_fn done, void *arg)
{
	store_result_t r;

	if (j == NULL)
		return;
	j->done = done;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		memset(&r, 0, sizeof(r));
		r.status = STORE_FAILED;
		snprintf(r.err, sizeof(r.err), "store is closing");
		if (done != NULL)
			done(arg, &r);
		store_job_free(j);
		return;
	}
	j->queued_ms = mono_ms();
	if (s->tail != NULL)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->n_queued++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

size_t
store_expire_waiting(store_t *s, unsigned max_wait_ms)
{
	store_job_t *expired = NULL, *last = NULL, *j;
	int64_t now = mono_ms();
	size_t n = 0;
	char err[sizeof(j->res.err)], count[24];

	/* The queue is in submission order: the jobs that waited too long
	 * are a prefix of it.  The batch the writer has taken is not in it:
	 * that one may be half written and is waited for. */
	pthread_mutex_lock(&s->mu);
	while (s->head != NULL && now - s->head->queued_ms >= (int64_t)max_wait_ms) {
		j = s->head;
		s->head = j->next;
		if (s->head == NULL)
			s->tail = NULL;
		j->next = NULL;
		if (last != NULL)
			last->next = j;
		else
			expired = j;
		last = j;
		s->n_queued--;
		n++;
	}
	s->stats.wait_expired += n;
	pthread_mutex_unlock(&s->mu);
	if (n == 0)
		return 0;
	snprintf(err, sizeof(err), "the store did not take the job within "
	    "%u ms (the disk is stalled or overloaded); nothing of it was "
	    "written", max_wait_ms);
	for (j = expired; j != NULL; j = expired) {
		expired = j->next;
		memset(&j->res, 0, sizeof(j->res));
		j->res.status = STORE_FAILED;
		snprintf(j->res.err, sizeof(j->res.err), "%s", err);
		if (j->done != NULL)
			j->done(j->arg, &j->res);
		store_job_free(j);
	}
	snprintf(count, sizeof(count), "%zu", n);
	log_event(LOG_ERROR, "store-stalled", "failed", count, "error", err,
	    NULL);
	return n;
}

/* ---------------------------------------------------- start-up checking */

typedef struct {
	uint64_t size;
	merkle_hash_t root;
	int have;
} signed_cp_t;

/* Verify a signed checkpoint note and take its size and root. */
static int
open_checkpoint(store_t *s, const note_verifier_t *v, const char *note,
    size_t len, const char *where, signed_cp_t *out, char *err, size_t errlen)
{
	char why[160];
	size_t body_len;

	why[0] = '\0';
	if (note_open(v, note, len, &body_len, why, sizeof(why)) < 0) {
		errmsg_set(err, errlen, "%s: signature does not verify (%s): "
		    "the checkpoint was altered", where, why);
		return -1;
	}
	if (checkpoint_parse(note, body_len, s->origin, &out->size, out->root,
	    why, sizeof(why)) < 0) {
		errmsg_set(err, errlen, "%s: bad checkpoint (%s)", where, why);
		return -1;
	}
	out->have = 1;
	return 0;
}

static int
load_checkpoints(store_t *s, const note_verifier_t *v, signed_cp_t *db_cp,
    signed_cp_t *file_cp, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char *data = NULL;
	size_t len;
	int rc, ret = -1;

	memset(db_cp, 0, sizeof(*db_cp));
	memset(file_cp, 0, sizeof(*file_cp));
	if (sqlite3_prepare_v2(s->db, "SELECT size, note FROM checkpoints "
	    "ORDER BY size DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		errmsg_set(err, errlen, "checkpoints: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 1);
		const void *p = sqlite3_column_blob(st, 1);

		if (n <= 0 || n > NOTE_MAX_SIZE || p == NULL) {
			errmsg_set(err, errlen, "store.db: latest checkpoint is "
			    "malformed");
			goto out;
		}
		if (open_checkpoint(s, v, p, (size_t)n, "store.db checkpoint",
		    db_cp, err, errlen) < 0)
			goto out;
		if (db_cp->size != (uint64_t)sqlite3_column_int64(st, 0)) {
			errmsg_set(err, errlen, "store.db: checkpoint row size "
			    "differs from its signed size");
			goto out;
		}
	} else if (rc != SQLITE_DONE) {
		errmsg_set(err, errlen, "checkpoints: %s", sqlite3_errmsg(s->db));
		goto out;
	}
	if (file_read_all(s->ckpt_path, NOTE_MAX_SIZE, &data, &len) == 0) {
		if (open_checkpoint(s, v, data, len, "checkpoint.last", file_cp,
		    err, errlen) < 0)
			goto out;
	} else if (errno != ENOENT) {
		errmsg_set(err, errlen, "%s: %s", s->ckpt_path, strerror(errno));
		goto out;
	} else {
		/* store_init_keys writes one with the keys, so it is never
		 * legitimately absent. */
		errmsg_set(err, errlen, "checkpoint.last is missing: the data "
		    "directory was tampered with (a wiped log would otherwise "
		    "look new)%s", db_cp->have ? "; store.db holds signed "
		    "checkpoints" : "");
		goto out;
	}
	ret = 0;
out:
	free(data);
	sqlite3_finalize(st);
	return ret;
}

typedef struct {
	sqlite3 *db;
	sqlite3_stmt *level[64];	/* one ordered cursor per tree level */
	int mismatch;
	unsigned bad_level;
	uint64_t bad_index;
} node_check_t;

/* Emit callback of the start-up pass: every node the leaves complete must
 * equal the stored one, or proofs served later would be wrong.  Nodes of a
 * level complete in index order, so each level is read by one sequential
 * cursor instead of a lookup per node. */
static int
check_node(void *ctx, unsigned level, uint64_t index, const merkle_hash_t h)
{
	node_check_t *nc = ctx;
	sqlite3_stmt *st;
	int rc, same = 0;

	if (nc->mismatch || level < STORE_NODE_MIN_LEVEL)
		return 0;	/* low levels are not stored (or not read) */
	if (level >= 64)
		return -1;
	if (nc->level[level] == NULL) {
		if (sqlite3_prepare_v2(nc->db, "SELECT idx, hash FROM"
		    " merkle_nodes WHERE level = ?1 ORDER BY idx", -1,
		    &nc->level[level], NULL) != SQLITE_OK ||
		    sqlite3_bind_int(nc->level[level], 1, (int)level) !=
		    SQLITE_OK)
			return -1;
	}
	st = nc->level[level];
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW &&
	    sqlite3_column_int64(st, 0) == (sqlite3_int64)index &&
	    sqlite3_column_bytes(st, 1) == MERKLE_HASH_LEN)
		same = memcmp(sqlite3_column_blob(st, 1), h,
		    MERKLE_HASH_LEN) == 0;
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (!same) {
		nc->mismatch = 1;
		nc->bad_level = level;
		nc->bad_index = index;
	}
	return 0;
}

/* The leaf must start with its own seq: a moved leaf is named exactly. */
static int
leaf_seq_ok(const void *data, size_t len, uint64_t idx)
{
	char want[40];
	int n = snprintf(want, sizeof(want), "{\"seq\":%" PRIu64 ",", idx);

	return n > 0 && (size_t)n <= len && memcmp(data, want, (size_t)n) == 0;
}

static int
check_root_at(const merkle_frontier_t *f, const signed_cp_t *cp,
    const char *where, char *err, size_t errlen)
{
	merkle_hash_t root;

	if (!cp->have || f->size != cp->size)
		return 0;
	merkle_frontier_root(f, root);
	if (memcmp(root, cp->root, MERKLE_HASH_LEN) != 0) {
		errmsg_set(err, errlen, "audit log altered: the first %" PRIu64
		    " leaves do not hash to the root signed in %s", cp->size,
		    where);
		return -1;
	}
	return 0;
}

/* Only the slots of set size bits hold nodes. */
static int
frontier_equal(const merkle_frontier_t *a, const merkle_frontier_t *b)
{
	unsigned k;

	if (a->size != b->size)
		return 0;
	for (k = 0; k < 64; k++)
		if (((a->size >> k) & 1) && memcmp(a->node[k], b->node[k],
		    MERKLE_HASH_LEN) != 0)
			return 0;
	return 1;
}

static int
verify_log(store_t *s, char *err, size_t errlen)
{
	note_verifier_t *v = NULL;
	buf_t vkey = BUF_INIT;
	signed_cp_t db_cp, file_cp;
	sqlite3_stmt *st = NULL;
	node_check_t nc;
	merkle_frontier_t f, loaded;
	sqlite3_stmt *leaf_st = NULL, *node_st = NULL;
	struct store_node_reader nr;
	store_writelog_t *wl = NULL;
	uint64_t i = 0, top;
	char why[160];
	int rc, k, ret = -1;

	memset(&nc, 0, sizeof(nc));
	if (note_signer_vkey(s->signer, &vkey) < 0 ||
	    (v = note_verifier_parse(vkey.data, vkey.len, why,
	    sizeof(why))) == NULL) {
		errmsg_set(err, errlen, "audit.key: cannot derive verifier key");
		goto out;
	}
	if (load_checkpoints(s, v, &db_cp, &file_cp, err, errlen) < 0)
		goto out;
	top = db_cp.size > file_cp.size ? db_cp.size : file_cp.size;
	if ((wl = store_writelog_new(top)) == NULL) {
		errmsg_set(err, errlen, "store: out of memory");
		goto out;
	}
	nc.db = s->db;
	if (sqlite3_prepare_v2(s->db, "SELECT idx, data, hash FROM audit_leaves"
	    " ORDER BY idx", -1, &st, NULL) != SQLITE_OK) {
		errmsg_set(err, errlen, "audit_leaves: %s", sqlite3_errmsg(s->db));
		goto out;
	}
	merkle_frontier_init(&f);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 idx = sqlite3_column_int64(st, 0);
		const void *data = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);
		const void *hash = sqlite3_column_blob(st, 2);
		int hlen = sqlite3_column_bytes(st, 2);
		merkle_hash_t h;

		if (idx < 0 || (uint64_t)idx != i) {
			errmsg_set(err, errlen, "audit log damaged: leaf %" PRIu64
			    " is missing (leaves removed)", i);
			goto out;
		}
		if (data == NULL || len <= 0) {
			errmsg_set(err, errlen, "audit log altered at index %"
			    PRIu64 ": empty leaf", i);
			goto out;
		}
		merkle_leaf_hash(data, (size_t)len, h);
		if (hlen != MERKLE_HASH_LEN || hash == NULL ||
		    memcmp(hash, h, MERKLE_HASH_LEN) != 0) {
			errmsg_set(err, errlen, "audit log altered at index %"
			    PRIu64 ": the leaf does not match its stored hash", i);
			goto out;
		}
		if (!leaf_seq_ok(data, (size_t)len, i)) {
			errmsg_set(err, errlen, "audit log altered at index %"
			    PRIu64 ": the leaf there carries another seq "
			    "(leaves replaced or reordered)", i);
			goto out;
		}
		/* The records check reads the writes from the same pass. */
		if (store_writelog_add(wl, i, data, (size_t)len) < 0) {
			errmsg_set(err, errlen, "store: out of memory reading "
			    "the audit log's record writes");
			goto out;
		}
		if (merkle_frontier_append(&f, h, check_node, &nc) < 0) {
			errmsg_set(err, errlen, "merkle_nodes: %s",
			    sqlite3_errmsg(s->db));
			goto out;
		}
		if (nc.mismatch) {
			/* A leaf re-hashed to match its stored hash shows only
			 * here, as a node over it: name the leaves the node
			 * covers, not just the first of them. */
			errmsg_set(err, errlen, "audit log altered in leaves %"
			    PRIu64 "-%" PRIu64 ": stored tree node (level %u, "
			    "index %" PRIu64 ") does not match the leaves",
			    nc.bad_index << nc.bad_level,
			    ((nc.bad_index + 1) << nc.bad_level) - 1,
			    nc.bad_level, nc.bad_index);
			goto out;
		}
		i++;
		if (check_root_at(&f, &db_cp, "store.db", err, errlen) < 0 ||
		    check_root_at(&f, &file_cp, "checkpoint.last", err,
		    errlen) < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		errmsg_set(err, errlen, "audit_leaves: %s", sqlite3_errmsg(s->db));
		goto out;
	}
	if (i < top) {
		if (file_cp.size > db_cp.size && i < file_cp.size)
			errmsg_set(err, errlen, "store.db was rolled back: it holds "
			    "%" PRIu64 " audit leaves and checkpoints up to %"
			    PRIu64 ", but checkpoint.last signed %" PRIu64, i,
			    db_cp.size, file_cp.size);
		else
			errmsg_set(err, errlen, "audit log truncated: %" PRIu64
			    " leaves stored but the signed checkpoint covers %"
			    PRIu64 " (leaves removed from index %" PRIu64 ")",
			    i, top, i);
		goto out;
	}
	/* The frontier from stored nodes must be the recomputed one. */
	memset(&nr, 0, sizeof(nr));
	nr.db = s->db;
	nr.leaf_hash = &leaf_st;
	nr.node_hash = &node_st;
	if (merkle_frontier_load(&loaded, i, store_int_node, &nr) < 0 ||
	    !frontier_equal(&loaded, &f)) {
		errmsg_set(err, errlen, "audit log: stored tree nodes do not "
		    "rebuild the tree of %" PRIu64 " leaves", i);
		goto out;
	}
	/* The log is the signed one: now the records table must be what it
	 * says was written, or a row pointed back at an older sealed version
	 * (or an erased one brought back) would be served (store_writelog.c). */
	if (store_writelog_check(wl, s->db, s->db_path, err, errlen) < 0)
		goto out;
	memcpy(&s->tree, &f, sizeof(f));
	s->durable_size = f.size;
	/* When checkpoint.last is ahead of the database (a crash between the
	 * two writes) the writer signs again soon and the database catches
	 * up; Ed25519 is deterministic, so the same size gives the same note. */
	s->signed_size = db_cp.size;
	s->pub_signed_size = top;
	if (db_cp.have || file_cp.have) {
		/* The age of a checkpoint signed by an earlier run counts
		 * from this start. */
		s->have_signed = 1;
		s->signed_wall_ms = mono_ms();
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	for (k = 0; k < 64; k++)
		sqlite3_finalize(nc.level[k]);
	sqlite3_finalize(leaf_st);
	sqlite3_finalize(node_st);
	store_writelog_free(wl);
	note_verifier_free(v);
	buf_free(&vkey);
	return ret;
}

/* ------------------------------------------------------------ lifecycle */

static void
store_destroy(store_t *s)
{
	ckpt_stop(s);
	/* Before the writer's, whose close is then the last: it checkpoints
	 * and removes the WAL. */
	sqlite3_close(s->keeper);
	s->keeper = NULL;
	writer_close_db(s);
	note_signer_free(s->signer);
	store_cache_free(s->cache);
	store_ids_free(s->ids);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s->data_dir);
	free(s->area);
	free(s->origin);
	free(s->db_path);
	free(s->ckpt_path);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->ckpt_mu);
	pthread_cond_destroy(&s->ckpt_cv);
	free(s);
}

static int
valid_area(const char *area)
{
	size_t i, len = strlen(area);

	if (len == 0 || len > STORE_MAX_AREA)
		return 0;
	for (i = 0; i < len; i++) {
		char ch = area[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	return 1;
}

static int
load_keys(store_t *s, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX], why[160];
	EVP_PKEY *k;

	if (file_join(path, sizeof(path), s->data_dir, "store.key") < 0 ||
	    keyfile_load_aead(path, s->key, why, sizeof(why)) < 0) {
		errmsg_set(err, errlen, "store.key: %s", why);
		return -1;
	}
	if (file_join(path, sizeof(path), s->data_dir, "audit.key") < 0 ||
	    (k = keyfile_load_private(path, why, sizeof(why))) == NULL) {
		errmsg_set(err, errlen, "audit.key: %s", why);
		return -1;
	}
	if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		errmsg_set(err, errlen, "audit.key: not an Ed25519 key");
		return -1;
	}
	s->signer = note_signer_new(s->origin, k);
	EVP_PKEY_free(k);
	if (s->signer == NULL) {
		errmsg_set(err, errlen, "audit.key: cannot make a signer for %s",
		    s->origin);
		return -1;
	}
	return 0;
}

/*
 * A copy made by store_backup carries STORE_BACKUP_MARK.  Started as it is,
 * a restored gateway would sign on from the backup's log size, while the
 * live gateway may have published checkpoints beyond it: a fork.  So the
 * store refuses until the restore step (visorctl restore) has checked the
 * copy against the newest published checkpoint and removed the mark.
 */
static int
check_backup_mark(const char *data_dir, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX];
	struct stat sb;

	if (file_join(path, sizeof(path), data_dir, STORE_BACKUP_MARK) < 0) {
		errmsg_set(err, errlen, "store: data directory path too long");
		return -1;
	}
	if (stat(path, &sb) == 0) {
		errmsg_set(err, errlen, "%s: this data directory is a copy made by "
		    "visorctl backup; the live gateway may have published audit "
		    "checkpoints beyond it, and signing from here could fork the "
		    "log.  Restore it with 'visorctl restore BACKUP DATA_DIR "
		    "--checkpoint FILE' and the newest checkpoint this gateway "
		    "published (docs/OPERATIONS.md, Back up and restore)", path);
		return -1;
	}
	if (errno != ENOENT) {
		errmsg_set(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* One gateway per data directory: a second writer would keep its own
 * Merkle frontier and record cache over the same database and fork the
 * log.  An exclusive lock on <data_dir>/store.lock, held until close (the
 * kernel drops it if the process dies).  The descriptor, or -1 with err. */
static int
lock_data_dir(const char *data_dir, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX];
	int fd;

	if (file_join(path, sizeof(path), data_dir, "store.lock") < 0) {
		errmsg_set(err, errlen, "store: data directory path too long");
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		errmsg_set(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			errmsg_set(err, errlen, "%s: another gateway is running "
			    "on this data directory", data_dir);
		else
			errmsg_set(err, errlen, "%s: lock: %s", path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The common part of store_open and store_check: keys, the data
 * directory's lock (store_open only: store_check runs from tools, often as
 * root, and must not leave a lock file the gateway's account cannot
 * open), database, log. */
#define KEY_CHECK_TEXT "visor-gw store key check"

/* 1 if sealed (AAD aad) opens with s's data key. */
static int
opens_with_key(const store_t *s, const void *sealed, int n, const char *aad,
    size_t aadlen)
{
	buf_t pt = BUF_INIT;
	int ok;

	ok = sealed != NULL && n > 0 && aadlen > 0 && aead_open(s->key, aad,
	    aadlen, sealed, (size_t)n, &pt) == 0;
	buf_free(&pt);
	return ok;
}

/* The data key must be the one the store's values were sealed with.  A
 * store.key replaced, or restored beside other data, would otherwise show
 * only as records that do not open and transfers held back, one by one.
 * A known value sealed with the key is kept in key_check; a store without
 * it (made by an older version) is checked against a stored record
 * version first, and then gets it (when write: the writer's open). */
static int
check_data_key(store_t *s, int write, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char aad[STORE_MAX_ID + 32], raad[STORE_MAX_ID + 32];
	size_t aadlen, rlen;
	buf_t sealed = BUF_INIT;
	const char *id;
	int rc, bad = 0, ret = -1;

	aadlen = store_int_label_aad("key-check", s->area, NULL, aad,
	    sizeof(aad));
	if (sqlite3_prepare_v2(s->db, "SELECT sealed FROM key_check WHERE"
	    " id = 1", -1, &st, NULL) != SQLITE_OK)
		goto db_err;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bad = !opens_with_key(s, sqlite3_column_blob(st, 0),
		    sqlite3_column_bytes(st, 0), aad, aadlen);
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_DONE)
		goto db_err;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT id, version, content FROM"
	    " record_versions WHERE length(content) > 0 LIMIT 1", -1, &st,
	    NULL) != SQLITE_OK)
		goto db_err;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(st, 0);
		rlen = id != NULL ? store_int_record_aad(id,
		    (uint64_t)sqlite3_column_int64(st, 1), raad, sizeof(raad)) : 0;
		if (!opens_with_key(s, sqlite3_column_blob(st, 2),
		    sqlite3_column_bytes(st, 2), raad, rlen)) {
			bad = 1;
			goto out;
		}
	} else if (rc != SQLITE_DONE)
		goto db_err;
	sqlite3_finalize(st);
	st = NULL;
	if (!write) {
		ret = 0;
		goto out;
	}
	if (aead_seal(s->key, aad, aadlen, KEY_CHECK_TEXT,
	    strlen(KEY_CHECK_TEXT), &sealed) < 0 ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO key_check(id, sealed)"
	    " VALUES(1, ?1)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 1, sealed.data, (int)sealed.len,
	    SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		goto db_err;
	ret = 0;
	goto out;
db_err:
	errmsg_set(err, errlen, "%s: key check: %s", s->db_path,
	    sqlite3_errmsg(s->db));
out:
	if (bad)
		errmsg_set(err, errlen, "%s/store.key does not open this store's "
		    "data: it is not the key the store was made with (a key "
		    "file replaced, or restored beside other data?); put the "
		    "right one back", s->data_dir);
	sqlite3_finalize(st);
	buf_free(&sealed);
	return bad ? -1 : ret;
}

static store_t *
store_prepare(const store_options_t *opt, int lock, char *err, size_t errlen)
{
	store_t *s;
	pthread_condattr_t ca;
	char origin[64];

	errmsg_set(err, errlen, "store: out of memory");
	if (opt == NULL || opt->data_dir == NULL || opt->area == NULL) {
		errmsg_set(err, errlen, "store: data_dir and area are required");
		return NULL;
	}
	if (!valid_area(opt->area)) {
		errmsg_set(err, errlen, "store: bad area name");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->lock_fd = -1;
	if (pthread_condattr_init(&ca) != 0) {
		free(s);
		return NULL;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&s->mu, NULL) != 0 ||
	    pthread_cond_init(&s->cv, &ca) != 0 ||
	    pthread_mutex_init(&s->ckpt_mu, NULL) != 0 ||
	    pthread_cond_init(&s->ckpt_cv, NULL) != 0) {
		pthread_condattr_destroy(&ca);
		free(s);
		return NULL;
	}
	pthread_condattr_destroy(&ca);
	s->interval_ms = opt->checkpoint_interval_ms ?
	    opt->checkpoint_interval_ms : 1000;
	s->max_batch = opt->max_batch ? opt->max_batch : 512;
	s->index_lag = opt->audit_index_lag ? opt->audit_index_lag :
	    STORE_AUDIT_INDEX_LAG;
	s->outbox_max = opt->outbox_max ? opt->outbox_max : 100000;
	s->idem_keep_ms = opt->idem_keep_ms > 0 ? opt->idem_keep_ms :
	    STORE_IDEM_KEEP_MS;
	s->busy_ms = opt->busy_timeout_ms ? opt->busy_timeout_ms :
	    STORE_BUSY_TIMEOUT_MS;
	if ((s->cache = store_cache_new(opt->record_cache_bytes == 0 ?
	    STORE_CACHE_DEFAULT_BYTES : opt->record_cache_bytes ==
	    STORE_CACHE_NONE ? 0 : opt->record_cache_bytes)) == NULL) {
		store_destroy(s);
		return NULL;
	}
	snprintf(origin, sizeof(origin), "visor.%s/audit", opt->area);
	merkle_frontier_init(&s->tree);
	if ((s->data_dir = strdup(opt->data_dir)) == NULL ||
	    (s->area = strdup(opt->area)) == NULL ||
	    (s->origin = strdup(origin)) == NULL ||
	    (s->db_path = path_in(opt->data_dir, "store.db")) == NULL ||
	    (s->ckpt_path = path_in(opt->data_dir, "checkpoint.last")) == NULL)
		goto err;
	if (load_keys(s, err, errlen) < 0 ||
	    (lock && (s->lock_fd = lock_data_dir(s->data_dir, err,
	    errlen)) < 0) ||
	    writer_open_db(s, err, errlen) < 0 ||
	    check_data_key(s, lock, err, errlen) < 0 ||
	    verify_log(s, err, errlen) < 0)
		goto err;
	return s;
err:
	store_destroy(s);
	return NULL;
}

/* Every record id in the table into s->ids (store_ids.h), before the writer
 * starts. */
static int
load_ids(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	sqlite3_int64 n = -1;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM records", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (n < 0 || (s->ids = store_ids_new((uint64_t)n)) == NULL ||
	    sqlite3_prepare_v2(s->db, "SELECT id FROM records", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_ids_add(s->ids, (const char *)sqlite3_column_text(st, 0));
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return 0;
fail:
	errmsg_set(err, errlen, "%s: cannot read the record ids: %s",
	    s->db_path, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return -1;
}

/*
 * A connection held open, and idle, for as long as the store is: the WAL
 * index (the -shm file) then outlives every other connection.  Without
 * it, a writer that reopened its connection after a failed commit while
 * no reader had the database open (the checkpointer connects only when
 * needed) was the last connection: its close could not checkpoint past
 * the failing disk and left the WAL, and its new connection rebuilt the
 * index from the WAL file, frames of the failed commit included, so a
 * batch answered 503 came back in the running store (records and audit
 * leaves the writer's tree did not hold).  With the index kept, frames
 * past the last commit are never read and the next commit writes over
 * them.  0, or -1 with err.
 */
static int
keep_wal_index(store_t *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((s->keeper = store_int_connect(s->db_path, SQLITE_OPEN_READONLY,
	    NULL, err, errlen)) == NULL)
		return -1;
	/* A read opens the WAL and maps its index; both stay open. */
	rc = sqlite3_prepare_v2(s->keeper, "SELECT count(*) FROM sqlite_master",
	    -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		errmsg_set(err, errlen, "%s: %s", s->db_path,
		    sqlite3_errmsg(s->keeper));
		return -1;
	}
	return 0;
}

store_t *
store_open(const store_options_t *opt, char *err, size_t errlen)
{
	store_t *s;
	int rc, wal_frames = 0, copied = 0;

	/* Tests only: the environment names this data directory. */
	if (opt != NULL && opt->data_dir != NULL &&
	    store_faultvfs_setup(opt->data_dir, err, errlen) < 0)
		return NULL;
	if ((s = store_prepare(opt, 1, err, errlen)) == NULL)
		return NULL;
	/* After the log check, so that a rolled-back copy gets that message. */
	if (check_backup_mark(s->data_dir, err, errlen) < 0)
		goto err;
	if (load_ids(s, err, errlen) < 0)
		goto err;
	/* The leaves just checked may be WAL frames of a commit whose fsync
	 * failed before a crash, found again in the page cache by recovery:
	 * not durable.  A checkpoint syncs the WAL (then the database) before
	 * the writer may sign over them; if that fails, do not start.  It
	 * syncs only when it copies frames back, so it must copy them all:
	 * FULL waits (busy timeout) for a reader elsewhere that holds an
	 * older snapshot, and any frame left behind is refused. */
	if ((rc = sqlite3_wal_checkpoint_v2(s->db, NULL,
	    SQLITE_CHECKPOINT_FULL, &wal_frames, &copied)) != SQLITE_OK ||
	    copied < wal_frames) {
		errmsg_set(err, errlen, "%s: cannot make the stored log durable "
		    "at start (%s): check the disk, and that nothing else has "
		    "the store open", s->db_path, rc != SQLITE_OK ?
		    sqlite3_errstr(rc) : "frames left in the WAL");
		goto err;
	}
	if (keep_wal_index(s, err, errlen) < 0)
		goto err;
	/* Without it the writer checkpoints itself (wal_hook). */
	if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) == 0)
		s->ckpt_started = 1;
	else
		log_msg(LOG_WARN, "wal-checkpoint", "no checkpointer thread: the "
		    "writer checkpoints the WAL itself");
	if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
		errmsg_set(err, errlen, "store: cannot start the writer thread");
		goto err;
	}
	s->started = 1;
	return s;
err:
	store_destroy(s);
	return NULL;
}

int
store_check(const char *data_dir, const char *area, uint64_t *audit_size,
    uint64_t *checkpoint_size, char *err, size_t errlen)
{
	store_options_t o;
	char path[STORE_PATH_MAX];
	struct stat sb;
	store_t *s;

	if (data_dir == NULL || area == NULL ||
	    file_join(path, sizeof(path), data_dir, "store.db") < 0) {
		errmsg_set(err, errlen, "store: bad data directory or area");
		return -1;
	}
	if (stat(path, &sb) < 0) {
		errmsg_set(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.data_dir = data_dir;
	o.area = area;
	if ((s = store_prepare(&o, 0, err, errlen)) == NULL)
		return -1;
	if (audit_size != NULL)
		*audit_size = s->durable_size;
	if (checkpoint_size != NULL)
		*checkpoint_size = s->pub_signed_size;
	store_destroy(s);
	return 0;
}

/*
 * Wait for the writer to end.  It ends once the batch it holds is
 * committed; a disk that stalls holds it there (a write or fdatasync that
 * does not return), and the gateway's stop would wait without a word,
 * after its drain had already said it stopped.  After STORE_CLOSE_QUIET_MS
 * it says what it waits for, and again when the wait is over.
 */
#define STORE_CLOSE_QUIET_MS 2000

static void
writer_join(store_t *s)
{
	const struct timespec step = { 0, 10 * 1000000L };
	int64_t t0 = mono_ms();
	char waited[24];

	while (pthread_tryjoin_np(s->thread, NULL) == EBUSY) {
		if (mono_ms() - t0 < STORE_CLOSE_QUIET_MS) {
			nanosleep(&step, NULL);
			continue;
		}
		log_event(LOG_WARN, "store-closing", "waiting",
		    "the writer's commit (the disk is not answering); the "
		    "batch it holds is answered once it is durable", NULL);
		pthread_join(s->thread, NULL);
		snprintf(waited, sizeof(waited), "%lld",
		    (long long)(mono_ms() - t0));
		log_event(LOG_INFO, "store-closed", "waited-ms", waited, NULL);
		return;
	}
}

void
store_close(store_t *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->closing = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		writer_join(s);
	store_destroy(s);
}

/* The files store_init_keys makes, in the order it makes them. */
static const char *const init_files[] = { "store.key", "audit.key",
    "checkpoint.last" };

/* Remove the first n of init_files from data_dir (those a failed
 * store_init_keys made), and data_dir itself if made_dir. */
static void
init_keys_remove(const char *data_dir, size_t n, int made_dir)
{
	char path[STORE_PATH_MAX];

	while (n-- > 0)
		if (file_join(path, sizeof(path), data_dir, init_files[n]) == 0)
			(void)unlink(path);
	if (made_dir)
		(void)rmdir(data_dir);
}

int
store_init_keys(const char *data_dir, const char *area, buf_t *vkey,
    char *err, size_t errlen)
{
	char skey[STORE_PATH_MAX], akey[STORE_PATH_MAX], ckpt[STORE_PATH_MAX];
	char origin[64];
	EVP_PKEY *k = NULL;
	note_signer_t *signer = NULL;
	merkle_hash_t root;
	buf_t body = BUF_INIT, note = BUF_INIT;
	struct stat sb;
	mode_t dmode = 0;
	size_t made = 0;
	int made_dir, ret = -1;

	if (data_dir == NULL || area == NULL || vkey == NULL ||
	    !valid_area(area)) {
		errmsg_set(err, errlen, "store: bad data directory or area");
		return -1;
	}
	snprintf(origin, sizeof(origin), "visor.%s/audit", area);
	if (file_join(skey, sizeof(skey), data_dir, init_files[0]) < 0 ||
	    file_join(akey, sizeof(akey), data_dir, init_files[1]) < 0 ||
	    file_join(ckpt, sizeof(ckpt), data_dir, init_files[2]) < 0) {
		errmsg_set(err, errlen, "store: data directory path too long");
		return -1;
	}
	/* checkpoint.last too: one without keys is what is left of another
	 * log (or of an earlier run), not to be replaced by a new one. */
	if (lstat(skey, &sb) == 0 || lstat(akey, &sb) == 0 ||
	    lstat(ckpt, &sb) == 0) {
		errmsg_set(err, errlen, "%s: keys or a checkpoint exist already "
		    "(store.key, audit.key or checkpoint.last); refusing to "
		    "overwrite", data_dir);
		return -1;
	}
	made_dir = lstat(data_dir, &sb) < 0 && errno == ENOENT;
	if (file_mkdirs(data_dir, 0700) < 0) {
		errmsg_set(err, errlen, "%s: %s", data_dir, strerror(errno));
		return -1;
	}
	/* A folder that was there keeps its mode: one that others may write
	 * (who could swap the keys made here) is refused, as the gateway
	 * refuses it (config.c, data_dir), before any key is made. */
	if (file_check_private_dir(data_dir, &dmode) < 0) {
		if (errno == EPERM)
			errmsg_set(err, errlen, "%s (mode %04o) is writable by "
			    "group or others, who could replace the keys: chmod "
			    "0700 %s", data_dir, (unsigned)dmode, data_dir);
		else
			errmsg_set(err, errlen, "%s: %s", data_dir,
			    errno == ENOTDIR ? "not a directory" :
			    strerror(errno));
		goto out;
	}
	if ((k = keyfile_generate("ed25519")) == NULL ||
	    (signer = note_signer_new(origin, k)) == NULL) {
		errmsg_set(err, errlen, "audit.key: cannot generate an Ed25519 key");
		goto out;
	}
	/* Every file is placed exclusively: one that appeared since the
	 * look above is not written over (and is not ours to remove). */
	if (keyfile_create_aead(skey) < 0) {
		errmsg_set(err, errlen, "%s: %s", skey, strerror(errno));
		goto out;
	}
	made = 1;
	if (keyfile_create_private(akey, k) < 0) {
		errmsg_set(err, errlen, "%s: %s", akey, strerror(errno));
		goto out;
	}
	made = 2;
	if (note_signer_vkey(signer, vkey) < 0) {
		errmsg_set(err, errlen, "audit.key: cannot format the verifier key");
		goto out;
	}
	/* A signed checkpoint of the empty log from the first moment: a data
	 * directory whose log was wiped (store.db and checkpoint.last
	 * together) is then refused, never mistaken for a new one. */
	merkle_empty_root(root);
	if (checkpoint_format(origin, 0, root, &body) < 0 ||
	    note_sign(signer, body.data, body.len, &note) < 0 ||
	    file_create_new(ckpt, note.data, note.len, 0600) < 0) {
		errmsg_set(err, errlen, "checkpoint.last: cannot write the first "
		    "checkpoint: %s", strerror(errno));
		goto out;
	}
	made = 3;
	ret = 0;
out:
	/* A failed run leaves nothing of its own behind: a retry starts
	 * afresh instead of being refused, or finishing with the keys of one
	 * run and the checkpoint of another. */
	if (ret < 0)
		init_keys_remove(data_dir, made, made_dir);
	buf_free(&body);
	buf_free(&note);
	note_signer_free(signer);
	EVP_PKEY_free(k);
	return ret;
}

int
store_init_keys_undo(const char *data_dir, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX];
	size_t i;
	int ret = 0;

	for (i = 0; i < sizeof(init_files) / sizeof(init_files[0]); i++) {
		if (file_join(path, sizeof(path), data_dir, init_files[i]) < 0 ||
		    (unlink(path) < 0 && errno != ENOENT)) {
			if (ret == 0)
				errmsg_set(err, errlen, "%s/%s: %s", data_dir,
				    init_files[i], strerror(errno));
			ret = -1;
		}
	}
	return ret;
}

const char *
store_origin(const store_t *s)
{
	return s->origin;
}

uint64_t
store_audit_size(const store_t *s)
{
	uint64_t n;
	store_t *m = (store_t *)(uintptr_t)s;

	pthread_mutex_lock(&m->mu);
	n = m->durable_size;
	pthread_mutex_unlock(&m->mu);
	return n;
}

uint64_t
store_checkpoint_size(const store_t *s)
{
	store_t *m = (store_t *)(uintptr_t)s;
	uint64_t n;

	pthread_mutex_lock(&m->mu);
	n = m->pub_signed_size;
	pthread_mutex_unlock(&m->mu);
	return n;
}

int64_t
store_checkpoint_age_ms(const store_t *s)
{
	store_t *m = (store_t *)(uintptr_t)s;
	int64_t age = -1;

	pthread_mutex_lock(&m->mu);
	if (m->have_signed)
		age = mono_ms() - m->signed_wall_ms;
	pthread_mutex_unlock(&m->mu);
	return age;
}

void
store_stats(store_t *s, store_stats_t *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->queued = s->n_queued;
	out->oldest_wait_ms = s->head != NULL ? mono_ms() - s->head->queued_ms : 0;
	pthread_mutex_unlock(&s->mu);
	out->ids_absent = store_ids_absent(s->ids);
}

void
store_fault_inject(store_t *s, unsigned n)
{
	pthread_mutex_lock(&s->mu);
	s->fault_commits = n;
	pthread_mutex_unlock(&s->mu);
}

int
store_bench_reference_commits(const char *dir, double seconds,
    size_t row_len, double *per_s)
{
	char path[STORE_PATH_MAX], wal[STORE_PATH_MAX + 8];
	char shm[STORE_PATH_MAX + 8];
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
	unsigned char *row = NULL;
	int64_t start, end;
	uint64_t n = 0;
	int ret = -1;

	if (file_join(path, sizeof(path), dir, "bench-ref.db") < 0 ||
	    row_len == 0 || row_len > (1 << 20) || seconds <= 0)
		return -1;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	if ((row = malloc(row_len)) == NULL)
		return -1;
	memset(row, 'x', row_len);
	if ((db = store_int_connect(path, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL, NULL, 0)) == NULL ||
	    exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)",
	    NULL, 0) < 0 ||
	    sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?1)", -1, &ins,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK)
		goto out;
	start = mono_ms();
	end = start + (int64_t)(seconds * 1000);
	do {
		if (step_done(begin) != SQLITE_OK ||
		    sqlite3_bind_blob(ins, 1, row, (int)row_len,
		    SQLITE_STATIC) != SQLITE_OK ||
		    step_done(ins) != SQLITE_OK ||
		    step_done(commit) != SQLITE_OK)
			goto out;
		n++;
	} while (mono_ms() < end);
	*per_s = (double)n * 1000.0 / (double)(mono_ms() - start);
	ret = 0;
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	free(row);
	unlink(path);
	unlink(wal);
	unlink(shm);
	return ret;
}
