/*
 * config: the gateway configuration file (SPEC section 4; docs/visor-gw.json.5).
 * Parsed strictly: unknown keys, missing files, private key files readable
 * by group or others, and bad values are errors naming the key.
 */
#ifndef GATEWAY_CONFIG_H
#define GATEWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_PEERS 64
#define CONFIG_MAX_FILES 64
#define CONFIG_MAX_CLEARANCES 256
#define CONFIG_MAX_GRANTS 8
#define CONFIG_NAME_MAX 33	/* account and group names, 1-32 bytes */
/* limits.identity_requests_per_second and identity_request_burst: far
 * above what an adapter, visorctl push or a peer's deliveries make
 * (docs/OPERATIONS.md, section 5), a tenth or less of a flood. */
#define CONFIG_DEFAULT_IDENTITY_RATE 500
#define CONFIG_DEFAULT_IDENTITY_BURST 2000

#define CONFIG_VKEY_MAX 512	/* an audit.vkey line (SPEC 8) */

typedef struct {
	char area[40];
	char url[256];
	char host[128];
	int port;
	/* The verifier key of the peer's audit log (SPEC 8's audit.vkey line,
	 * read from the file audit_vkey names, checked to be the key of
	 * "visor.<area>/audit"): the peer's checkpoints are witnessed
	 * (gateway/witness.h).  "" when not configured: not witnessed. */
	char audit_vkey_path[1024];
	char audit_vkey[CONFIG_VKEY_MAX];
} config_peer_t;

typedef struct {
	char identity[160];
	char *grants[CONFIG_MAX_GRANTS];
	size_t n_grants;
} config_clearance_t;

typedef struct {
	char area[40];
	char listen_host[64];
	int listen_port;
	char metrics_host[64];
	int metrics_port;		/* 0: no metrics listener */
	char tls_cert[1024], tls_key[1024], tls_root[1024];
	char *tls_cas[CONFIG_MAX_FILES];
	size_t n_cas;
	char *tls_crls[CONFIG_MAX_FILES];
	size_t n_crls;
	char policy[1024];
	char data_dir[1024];
	config_peer_t peers[CONFIG_MAX_PEERS];
	size_t n_peers;
	config_clearance_t clearances[CONFIG_MAX_CLEARANCES];
	size_t n_clearances;
	/* limits */
	size_t max_body_bytes;
	size_t max_header_bytes;
	unsigned max_connections;
	unsigned header_timeout_ms, body_timeout_ms, idle_timeout_ms;
	int max_json_depth;
	unsigned auth_fail_audit_per_second;	/* refused handshakes audited
						   one by one each second */
	unsigned store_busy_timeout_ms;	/* wait for a store lock held by
					   another process, then 503 */
	unsigned store_wait_max_ms;	/* a store job not taken by the
					   writer in this long (a stalled
					   disk): 503, unwritten */
	unsigned record_cache_mib;	/* current records kept in memory,
					   sealed; 0: none */
	unsigned idempotency_keep_hours;	/* Idempotency-Key answers
						   kept this long */
	unsigned max_request_memory_mib;	/* requests being received or
						   answered hold this much at
						   most, past which a large
						   one is cut off */
	unsigned identity_requests_per_second;	/* sustained requests of one
						   client identity; 0: no
						   limit */
	unsigned identity_request_burst;	/* and at most this many at
						   once */
	/* audit */
	unsigned checkpoint_interval_ms;
	unsigned witness_interval_s;	/* send the signed checkpoint to the
					   peers at most this often; 0: off */
	/* transfer */
	unsigned transfer_deadline_s;
	unsigned max_in_flight_per_peer;
	unsigned retry_base_ms, retry_max_ms;
	size_t outbox_max;
	unsigned threads;
	/* least privilege (gateway/privdrop.h): "" when not set */
	char user[CONFIG_NAME_MAX], group[CONFIG_NAME_MAX];
} config_t;

/* Load and validate path.  Relative file names are taken relative to the
 * folder of the configuration file.  Checks that every named file exists,
 * that the TLS key is mode 0600.  Returns a new config (free with
 * config_free) or NULL with a message naming the key in err. */
config_t *config_load(const char *path, char *err, size_t errlen);

/* Free; NULL does nothing. */
void config_free(config_t *c);

/* The clearances granted to identity uri (count; *out points into c). */
size_t config_clearances_for(const config_t *c, const char *uri,
    const char *const **out);

/* The peer of that area, or NULL. */
const config_peer_t *config_peer(const config_t *c, const char *area);

/* 1 if a and b name the same peers (areas, URLs and audit verifier keys,
 * in any order). */
int config_peers_equal(const config_t *a, const config_t *b);

/* The settings a reload (SIGHUP) cannot apply that differ between a and b:
 * everything but tls, policy, clearances and transfer.deadline_s, which
 * are read per request or per connection.  Their configuration keys,
 * joined with ", ", into out; returns how many. */
size_t config_restart_changes(const config_t *a, const config_t *b,
    char *out, size_t outlen);

#endif
