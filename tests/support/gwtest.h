/*
 * gwtest: support for integration tests.  Makes a quickstart folder in a
 * temporary directory, starts real visor-gw processes on loopback, talks to
 * them with the project's own client (client/https_client.h) or runs
 * programs (visorctl, curl), and stops everything it started.
 *
 * Binaries come from $VISOR_BIN (set by make test), else ./bin.
 *
 * make valgrind sets VISOR_VALGRIND: every visor-gw started here (by
 * gwt_gw_start, or by gwt_run and gwt_exec_gw for --check-config and
 * refused starts) then runs under the memcheck command in $VALGRIND
 * (default: memcheck with leak checking and --error-exitcode=99), so a
 * memcheck error or a definite or indirect leak at exit turns into exit
 * status 99.  With VISOR_VALGRIND_DIR set as well, each gateway's memcheck
 * report goes to DIR/gw-<pid>.log, and DIR/gateways.tally gets one line
 * per gateway process when it is reaped: "<pid> <area> <how> <status>",
 * how being stop, kill9, died or run; scripts/run-tests.sh counts them.
 * VISOR_VALGRIND_VISORCTL=1 puts the visorctl runs of gwt_run under
 * memcheck too (reports in DIR/ctl-<pid>.log, tally lines "<pid>
 * <subcommand> visorctl <status>"); make valgrind VALGRIND_VISORCTL=1.
 */
#ifndef TESTS_SUPPORT_GWTEST_H
#define TESTS_SUPPORT_GWTEST_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "util/buf.h"

typedef struct {
	char dir[256];		/* the quickstart folder */
	char bin[512];		/* folder of visor-gw and visorctl */
	int base_port;
} gwt_env_t;

typedef struct {
	pid_t pid;
	char area[40];
	int port;
	char config[600];
	char log[600];
	int exit_status;	/* once reaped: exit status, 128+signal; else -1 */
} gwt_gw_t;

typedef struct {
	long status;
	buf_t body;
	buf_t headers;
} gwt_resp_t;

/* 1 if gateways run under memcheck (VISOR_VALGRIND set). */
int gwt_valgrind(void);

/* A wait or timeout of ms milliseconds as the test would use natively,
 * multiplied under memcheck by $VISOR_VALGRIND_SCALE (default 10), which
 * slows the gateway 20 to 50 times.  Use it for how long a test waits
 * for something to happen, never for a bound the gateway must meet. */
long gwt_ms(long ms);

/* Milliseconds on the monotonic clock, for timeouts and elapsed times. */
long long gwt_now_ms(void);

/* In a child process: exec visor-gw with args (args[0] is not included:
 * "--config", path, ..., NULL), under memcheck when gwt_valgrind().  Returns
 * only if exec failed. */
void gwt_exec_gw(const gwt_env_t *e, const char *const *args);

/* Record how a visor-gw child was reaped (see above); a non-zero status of
 * a memcheck run prints its report to stderr.  Called by the functions
 * here; a test that forks visor-gw itself calls it after waitpid. */
void gwt_gw_reaped(pid_t pid, const char *area, const char *how, int status);

/* Make a temporary folder in $TMPDIR (default /tmp; mode 0711, so that
 * gateways quickstart sets up to drop from root to an unprivileged account
 * can reach their files) and run `visorctl quickstart` in it for areas
 * ("norfolk,suffolk"), on free loopback ports.  0 or -1.  A $TMPDIR other
 * than /tmp must be writable by everyone like /tmp (mode 1777): under
 * make valgrind, test_privilege starts gateways as that account, and
 * valgrind writes its own temporary files in $TMPDIR. */
int gwt_env_setup(gwt_env_t *e, const char *areas);

/* Run as root, quickstart's gateways drop to the account that owns
 * DIR/<area>/data.  A key file made later (visorctl certs issue) is given
 * to that account as an operator would (chown), and its folder made 0755
 * so that the account reaches the certificates and CRLs beside it.  No-op
 * (0) when not root.  0 or -1. */
int gwt_give_to_gateway(const gwt_env_t *e, const char *area,
    const char *rel_key);

/* Short-lived material from our own PKI code (certs/pki.h), for tests of
 * time passing without moving the clock.  gwt_cert_until replaces
 * pki/<area>/<name>.crt with a certificate of the same identity and key,
 * issued now by the area's CA, whose notAfter is until (time_t; its
 * notBefore is five minutes back, as every certificate's).  gwt_crl_until
 * replaces pki/<area>/crl.pem with its CA's next CRL, same entries,
 * lastUpdate five minutes back, nextUpdate until.  A running gateway
 * takes either at its next reload.  0 or -1 (why on stderr). */
int gwt_cert_until(const gwt_env_t *e, const char *area, const char *name,
    long until);
int gwt_crl_until(const gwt_env_t *e, const char *area, long until);

/* Remove the folder (kept if VISOR_KEEP_TEST_DIRS is set). */
void gwt_env_cleanup(gwt_env_t *e);

/* Path of a file under the quickstart folder ("pki/norfolk/ca.crt"). */
const char *gwt_path(const gwt_env_t *e, const char *rel);

/* The JSON file at path (a gateway.json, a policy), parsed strictly; NULL if
 * it cannot be read or is not JSON.  Free with cJSON_Delete. */
struct cJSON *gwt_json_load(const char *path);

/* Write j to path, replacing it atomically (mode 0644).  0 or -1. */
int gwt_json_save(const char *path, const struct cJSON *j);

/* Start the gateway of area and wait (up to gwt_ms(20000)) until it answers
 * /v1/health.  Its stderr goes to <dir>/<area>.log.  0 or -1. */
int gwt_gw_start(gwt_env_t *e, const char *area, gwt_gw_t *gw);

/* gwt_gw_start with the gateway's RLIMIT_NOFILE set to soft and hard, and
 * only its standard streams open when it starts (hard 0: unchanged, as
 * gwt_gw_start).  -1 as well when the gateway refuses to start: then
 * gw->exit_status is set and its message is in gw->log. */
int gwt_gw_start_nofile(gwt_env_t *e, const char *area, gwt_gw_t *gw,
    unsigned long soft, unsigned long hard);

/* SIGTERM and wait (SIGKILL after gwt_ms(60000)).  Returns the exit
 * status (99: a memcheck error or leak under make valgrind), or -1. */
int gwt_gw_stop(gwt_gw_t *gw);

/* Stop gw as gwt_gw_stop and check that it stopped cleanly: exit status 0
 * (under make valgrind, 99 is a memcheck error or leak) and no sanitizer
 * report in its log.  Returns 0 (also for a gateway never started or
 * already reaped), or -1 after saying why on stderr, keeping the test
 * folders (VISOR_KEEP_TEST_DIRS) and remembering it for gwt_exit(). */
int gwt_gw_stop_clean(gwt_gw_t *gw);

/* cmocka 1.1 reports a failing group teardown but does not count it in
 * the exit status: main returns gwt_exit(cmocka_run_group_tests(...)),
 * which is non-zero as well when a gwt_gw_stop_clean failed. */
int gwt_exit(int cmocka_rc);

/* kill -9 and reap. */
void gwt_gw_kill9(gwt_gw_t *gw);

/* Send SIGHUP and wait until the log shows the reload outcome. 0 if it
 * reloaded, 1 if it refused, -1 on timeout. */
int gwt_gw_hup(gwt_gw_t *gw);

/* 1 if the process is still running. */
int gwt_gw_alive(gwt_gw_t *gw);

/* 1 if the gateway's log contains needle. */
int gwt_log_contains(const gwt_gw_t *gw, const char *needle);

/* How many times needle occurs in the gateway's log. */
size_t gwt_log_count(const gwt_gw_t *gw, const char *needle);

/* A keep-alive libcurl client with pki/<cert_area>/<name>.crt (key beside
 * it) trusting the national root, or NULL (reason on stderr).  Free with
 * https_client_free. */
struct https_client;
struct https_client *gwt_client(const gwt_env_t *e, const char *cert_area,
    const char *name, long timeout_ms);

/* The sqlite3 program on db holding the write lock (BEGIN IMMEDIATE, after
 * waiting up to 5 s for the gateway's own transactions), as an operator's
 * session could.  Returns its pid, with *fd its standard input, or -1.
 * gwt_sqlite_release ends the transaction and waits for it to exit. */
pid_t gwt_sqlite_hold_lock(const char *db, int *fd);
void gwt_sqlite_release(pid_t pid, int fd);

/* A plain TCP connection to 127.0.0.1:port (TCP_NODELAY), or -1. */
int gwt_tcp_connect(int port);

/* A TLS connection by hand, for tests that need the bytes on the wire
 * (keep-alive, half requests, a slow reader). */
typedef struct {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
} gwt_raw_t;

/* Connect r to 127.0.0.1:port (TCP_NODELAY), trusting env's national
 * root, as the PEM files cert (its chain may follow it) and key (cert
 * NULL: no client certificate), TLS 1.2 up to max_version (0: 1.3 only,
 * OpenSSL's default here), with a receive buffer of rcvbuf bytes set
 * before connecting, so that the window offered is that small (0: the
 * kernel's).  0 once the handshake is done (in TLS 1.3 a refused client
 * certificate shows only on the first read); -1 otherwise.  Close r with
 * gwt_raw_close either way. */
int gwt_raw_open(const gwt_env_t *env, int port, const char *cert,
    const char *key, int max_version, int rcvbuf, gwt_raw_t *r);
void gwt_raw_close(gwt_raw_t *r);

/* 1 once the gateway's log contains needle, 0 if it still does not after
 * gwt_ms(ms).  For lines the gateway writes after the client already has
 * its answer (the request line follows the reply; a refused handshake is
 * logged after its alert went out) and for request lines, which the
 * workers write in batches (util/log.h). */
int gwt_log_wait(const gwt_gw_t *gw, const char *needle, long ms);

/* The audit_size gw's /v1/health reports, asked as its area's police:
 * 0 with *size set, or -1 (why on stderr) if there was no 200 answer
 * carrying it. */
int gwt_audit_size(const gwt_env_t *e, const gwt_gw_t *gw,
    unsigned long long *size);

/* The value of one series (a name, with its labels if it has any, as
 * /metrics prints it) on gw's metrics listener (its port + 1000, as
 * quickstart sets it): 0 with *value set; 1 with *value 0 if /metrics
 * answered without that series (a labelled family prints a label only once
 * counted); -1 if /metrics did not answer (why on stderr). */
int gwt_metric(const gwt_gw_t *gw, const char *series, double *value);

/* One HTTPS request to gw as the holder of pki/<cert_area>/<cert_name>.crt
 * (key beside it).  headers: NULL-terminated "Name: value".  0 if a response
 * came back (resp->status set), -1 on a transport/TLS failure (err set). */
int gwt_request(const gwt_env_t *e, const gwt_gw_t *gw, const char *cert_area,
    const char *cert_name, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len, gwt_resp_t *resp,
    char *err, size_t errlen);

/* The same with explicit certificate and key files. */
int gwt_request_files(const gwt_env_t *e, const gwt_gw_t *gw,
    const char *cert, const char *key, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len, gwt_resp_t *resp,
    char *err, size_t errlen);

void gwt_resp_free(gwt_resp_t *r);

/* Run argv (argv[0] a path or a name on PATH) with stdin from in (may be
 * NULL), capturing stdout into out and stderr into errout (either may be
 * NULL).  An argv[0] naming visor-gw runs under memcheck when
 * gwt_valgrind().  Returns the exit status, or -1. */
int gwt_run(const char *const *argv, const char *in, size_t inlen, buf_t *out,
    buf_t *errout);

/* "<bin>/visorctl" etc. */
const char *gwt_prog(const gwt_env_t *e, const char *name);

#endif
