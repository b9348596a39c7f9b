#include "tests/support/gwtest.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certs/pki.h"
#include "client/https_client.h"
#include "crypto/keyfile.h"
#include "tests/support/sleep.h"
#include "util/fileio.h"
#include "util/json.h"

static char path_buf[8][1024];
static int path_next;

const char *
gwt_path(const gwt_env_t *e, const char *rel)
{
	char *p = path_buf[path_next++ % 8];

	snprintf(p, 1024, "%s/%s", e->dir, rel);
	return p;
}

cJSON *
gwt_json_load(const char *path)
{
	char *text = NULL, err[128];
	size_t len;
	cJSON *j;

	if (file_read_all(path, 4 << 20, &text, &len) < 0)
		return NULL;
	j = json_parse_strict(text, len, 64, err, sizeof(err));
	free(text);
	return j;
}

int
gwt_json_save(const char *path, const cJSON *j)
{
	char *text = cJSON_Print(j);
	int rc;

	if (text == NULL)
		return -1;
	rc = file_write_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}

const char *
gwt_prog(const gwt_env_t *e, const char *name)
{
	char *p = path_buf[path_next++ % 8];

	snprintf(p, 1024, "%s/%s", e->bin, name);
	return p;
}

int
gwt_valgrind(void)
{
	return getenv("VISOR_VALGRIND") != NULL;
}

long
gwt_ms(long ms)
{
	const char *s = getenv("VISOR_VALGRIND_SCALE");
	char *end;
	long k = 10;

	if (!gwt_valgrind())
		return ms;
	if (s != NULL) {
		k = strtol(s, &end, 10);
		if (*end != '\0' || k < 1 || k > 1000)
			k = 10;
	}
	return ms * k;
}

long long
gwt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 if argv0 names the gateway program. */
static int
is_gateway_prog(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	return strcmp(base != NULL ? base + 1 : argv0, "visor-gw") == 0;
}

/* 1 if argv0 is visorctl and VISOR_VALGRIND_VISORCTL=1 asks for it under
 * memcheck too. */
static int
is_checked_visorctl(const char *argv0)
{
	const char *base = strrchr(argv0, '/'), *want;

	want = getenv("VISOR_VALGRIND_VISORCTL");
	return gwt_valgrind() && want != NULL && strcmp(want, "1") == 0 &&
	    strcmp(base != NULL ? base + 1 : argv0, "visorctl") == 0;
}

/* In a child: exec prog with args (args[0] is prog's own first argument,
 * not argv[0]) under the memcheck command of $VALGRIND, its report in
 * $VISOR_VALGRIND_DIR/<tag>-<pid>.log.  No allocation: the test process
 * may have threads. */
static void
exec_under_valgrind(const char *prog, const char *const *args,
    const char *tag)
{
	static const char *const dflt[] = { "valgrind", "--quiet",
	    "--error-exitcode=99", "--leak-check=full",
	    "--show-leak-kinds=definite,indirect",
	    "--errors-for-leak-kinds=definite,indirect", "--vgdb=no", NULL };
	const char *env = getenv("VALGRIND"), *dir = getenv("VISOR_VALGRIND_DIR");
	const char *av[96];
	char cmd[2048], logopt[1100], *p;
	size_t n = 0, i;

	if (env != NULL && env[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "%s", env);
		for (p = cmd; *p != '\0' && n < 64;) {
			while (*p == ' ' || *p == '\t')
				*p++ = '\0';
			if (*p == '\0')
				break;
			av[n++] = p;
			while (*p != '\0' && *p != ' ' && *p != '\t')
				p++;
		}
	} else {
		for (i = 0; dflt[i] != NULL; i++)
			av[n++] = dflt[i];
	}
	if (n == 0)
		_exit(127);
	/* A child that dropped root first (test_privilege) may not write
	 * there: its report then goes to its stderr. */
	if (dir != NULL && dir[0] != '\0' && access(dir, W_OK) == 0) {
		snprintf(logopt, sizeof(logopt), "--log-file=%s/%s-%%p.log", dir,
		    tag);
		av[n++] = logopt;
	}
	av[n++] = prog;
	for (i = 0; args[i] != NULL && n < 95; i++)
		av[n++] = args[i];
	av[n] = NULL;
	execvp(av[0], (char *const *)av);
}

void
gwt_exec_gw(const gwt_env_t *e, const char *const *args)
{
	const char *prog = gwt_prog(e, "visor-gw");
	const char *av[32];
	size_t n = 0;

	if (gwt_valgrind())
		exec_under_valgrind(prog, args, "gw");
	av[n++] = "visor-gw";
	while (*args != NULL && n < 31)
		av[n++] = *args++;
	av[n] = NULL;
	execv(prog, (char *const *)av);
}

/* One line of the tally, and the report printed if there is one. */
static void
reaped(const char *tag, pid_t pid, const char *area, const char *how,
    int status)
{
	const char *dir = getenv("VISOR_VALGRIND_DIR");
	char path[1100], line[200], *report = NULL;
	size_t len;
	int fd, n;

	if (!gwt_valgrind() || dir == NULL || dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/gateways.tally", dir);
	n = snprintf(line, sizeof(line), "%ld %s %s %d\n", (long)pid, area, how,
	    status);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0) {
		if (n > 0 && write(fd, line, (size_t)n) != n)
			fprintf(stderr, "gwtest: cannot write %s\n", path);
		close(fd);
	}
	/* The report of a gateway stopped with errors, or of one killed
	 * after memcheck had already reported something. */
	snprintf(path, sizeof(path), "%s/%s-%ld.log", dir, tag, (long)pid);
	if (file_read_all(path, 4 << 20, &report, &len) == 0 && len > 0)
		fprintf(stderr, "gwtest: memcheck report of %s %s (pid %ld, %s, "
		    "status %d), %s:\n%s\n", strcmp(tag, "gw") == 0 ? "visor-gw" :
		    "visorctl", area, (long)pid, how, status, path, report);
	free(report);
}

void
gwt_gw_reaped(pid_t pid, const char *area, const char *how, int status)
{
	reaped("gw", pid, area, how, status);
}

static int
port_free(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok;

	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

int
gwt_run(const char *const *argv, const char *in, size_t inlen, buf_t *out,
    buf_t *errout)
{
	int pin[2], pout[2], perr[2], status;
	pid_t pid;
	char tmp[4096];
	ssize_t n;
	size_t off = 0;
	fd_set rs, ws;
	int open_out = 1, open_err = 1, open_in = 1, maxfd;

	if (pipe(pin) < 0 || pipe(pout) < 0 || pipe(perr) < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		if (gwt_valgrind() && is_gateway_prog(argv[0]))
			exec_under_valgrind(argv[0], argv + 1, "gw");
		if (is_checked_visorctl(argv[0]))
			exec_under_valgrind(argv[0], argv + 1, "ctl");
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	signal(SIGPIPE, SIG_IGN);
	if (in == NULL || inlen == 0) {
		close(pin[1]);
		open_in = 0;
	}
	while (open_out || open_err) {
		FD_ZERO(&rs);
		FD_ZERO(&ws);
		maxfd = 0;
		if (open_out) {
			FD_SET(pout[0], &rs);
			maxfd = pout[0];
		}
		if (open_err) {
			FD_SET(perr[0], &rs);
			if (perr[0] > maxfd)
				maxfd = perr[0];
		}
		if (open_in) {
			FD_SET(pin[1], &ws);
			if (pin[1] > maxfd)
				maxfd = pin[1];
		}
		if (select(maxfd + 1, &rs, &ws, NULL, NULL) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (open_in && FD_ISSET(pin[1], &ws)) {
			n = write(pin[1], in + off, inlen - off > 65536 ? 65536 : inlen - off);
			if (n <= 0 || (off += (size_t)n) >= inlen) {
				close(pin[1]);
				open_in = 0;
			}
		}
		if (open_out && FD_ISSET(pout[0], &rs)) {
			n = read(pout[0], tmp, sizeof(tmp));
			if (n <= 0)
				open_out = 0;
			else if (out != NULL)
				buf_append(out, tmp, (size_t)n);
		}
		if (open_err && FD_ISSET(perr[0], &rs)) {
			n = read(perr[0], tmp, sizeof(tmp));
			if (n <= 0)
				open_err = 0;
			else if (errout != NULL)
				buf_append(errout, tmp, (size_t)n);
		}
	}
	if (open_in)
		close(pin[1]);
	close(pout[0]);
	close(perr[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (is_gateway_prog(argv[0]))
		gwt_gw_reaped(pid, "-", "run", status);
	else if (is_checked_visorctl(argv[0]))
		reaped("ctl", pid, argv[1] != NULL ? argv[1] : "-", "visorctl",
		    status);
	return status;
}

int
gwt_env_setup(gwt_env_t *e, const char *areas)
{
	const char *bin = getenv("VISOR_BIN");
	const char *tmpdir = getenv("TMPDIR");
	char tmpl[200], port[16];
	buf_t err = BUF_INIT;
	int tries, rc, k, nareas = 1;
	const char *p;

	memset(e, 0, sizeof(*e));
	snprintf(e->bin, sizeof(e->bin), "%s", bin ? bin : "./bin");
	if (tmpdir == NULL || tmpdir[0] != '/' || strlen(tmpdir) > 150)
		tmpdir = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/visor-it-XXXXXX", tmpdir);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	/* Run as root, quickstart sets the gateways up to drop to an
	 * unprivileged account, which must be able to reach the folder. */
	if (chmod(tmpl, 0711) < 0)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/q", tmpl);
	/* visorctl audit verify keeps its state under XDG_STATE_HOME: in
	 * the test's folder, never the user's. */
	{
		char st[sizeof(e->dir) + 16];

		snprintf(st, sizeof(st), "%s/state", tmpl);
		setenv("XDG_STATE_HOME", st, 1);
	}
	for (p = areas; *p; p++)
		nareas += *p == ',';
	srand((unsigned)(getpid() ^ time(NULL)));
	for (tries = 0; tries < 50; tries++) {
		/* Below the ephemeral range (32768-60999 on Linux), metrics
		 * ports (+1000) included: a connection opened by a test or a
		 * gateway could otherwise take the port of a gateway that is
		 * restarting ("Address already in use"). */
		e->base_port = 10000 + rand() % 20000;
		for (k = 0; k < nareas; k++)
			if (!port_free(e->base_port + k) ||
			    !port_free(e->base_port + k + 1000))
				break;
		if (k == nareas)
			break;
	}
	snprintf(port, sizeof(port), "%d", e->base_port);
	{
		const char *argv[] = { gwt_prog(e, "visorctl"), "quickstart", e->dir,
		    "--areas", areas, "--base-port", port, NULL };
		rc = gwt_run(argv, NULL, 0, NULL, &err);
	}
	if (rc != 0) {
		fprintf(stderr, "gwtest: quickstart failed (%d): %s\n", rc,
		    err.data ? err.data : "");
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	return 0;
}

int
gwt_give_to_gateway(const gwt_env_t *e, const char *area, const char *rel_key)
{
	char data[1024], key[1024], *slash;
	struct stat sb;

	if (geteuid() != 0)
		return 0;
	snprintf(data, sizeof(data), "%s/%s/data", e->dir, area);
	snprintf(key, sizeof(key), "%s/%s", e->dir, rel_key);
	if (stat(data, &sb) < 0 || chown(key, sb.st_uid, sb.st_gid) < 0)
		return -1;
	if ((slash = strrchr(key, '/')) != NULL)
		*slash = '\0';
	return chmod(key, 0755);
}

int
gwt_cert_until(const gwt_env_t *e, const char *area, const char *name,
    long until)
{
	char dir[1024], crt[1024], keyp[1024], uri[256], err[256];
	pki_ca_t ca;
	EVP_PKEY *key = NULL;
	X509 *old = NULL, *x = NULL;
	time_t t = (time_t)until;
	int rc = -1;

	memset(&ca, 0, sizeof(ca));
	snprintf(dir, sizeof(dir), "%s/pki/%s", e->dir, area);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(keyp, sizeof(keyp), "%s/%s.key", dir, name);
	if (pki_ca_load(dir, "ca", &ca, err, sizeof(err)) < 0 ||
	    (old = pki_load_cert(crt, err, sizeof(err))) == NULL ||
	    (key = keyfile_load_private(keyp, err, sizeof(err))) == NULL)
		goto out;
	if (pki_cert_uri(old, uri, sizeof(uri)) < 0) {
		snprintf(err, sizeof(err), "%s: no identity", crt);
		goto out;
	}
	/* Issued for a day, then cut short and signed again. */
	if ((x = pki_make_leaf(&ca, key, uri, NULL, err, sizeof(err))) == NULL)
		goto out;
	if (X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &t) == NULL ||
	    X509_sign(x, ca.key, EVP_sha256()) <= 0) {
		snprintf(err, sizeof(err), "cannot set notAfter");
		goto out;
	}
	rc = pki_write_cert(crt, x, ca.cert, err, sizeof(err));
out:
	if (rc < 0)
		fprintf(stderr, "gwt_cert_until: %s\n", err);
	X509_free(x);
	X509_free(old);
	EVP_PKEY_free(key);
	pki_ca_clear(&ca);
	return rc;
}

int
gwt_crl_until(const gwt_env_t *e, const char *area, long until)
{
	char dir[1024], crlp[1024], err[256];
	pki_ca_t ca;
	X509_CRL *prev = NULL, *next = NULL;
	ASN1_TIME *t = NULL;
	int rc = -1;

	memset(&ca, 0, sizeof(ca));
	snprintf(dir, sizeof(dir), "%s/pki/%s", e->dir, area);
	snprintf(crlp, sizeof(crlp), "%s/crl.pem", dir);
	if (pki_ca_load(dir, "ca", &ca, err, sizeof(err)) < 0 ||
	    (prev = pki_load_crl(crlp, err, sizeof(err))) == NULL ||
	    (next = pki_make_crl(&ca, prev, NULL, 0, 1, err,
	    sizeof(err))) == NULL)
		goto out;
	if ((t = ASN1_TIME_set(NULL, (time_t)until)) == NULL ||
	    X509_CRL_set1_nextUpdate(next, t) != 1 ||
	    X509_CRL_sign(next, ca.key, EVP_sha256()) <= 0) {
		snprintf(err, sizeof(err), "cannot set nextUpdate");
		goto out;
	}
	rc = pki_write_crl(crlp, next, err, sizeof(err));
out:
	if (rc < 0)
		fprintf(stderr, "gwt_crl_until: %s\n", err);
	ASN1_TIME_free(t);
	X509_CRL_free(prev);
	X509_CRL_free(next);
	pki_ca_clear(&ca);
	return rc;
}

void
gwt_env_cleanup(gwt_env_t *e)
{
	char parent[300];
	char *slash;

	if (e->dir[0] == '\0' || getenv("VISOR_KEEP_TEST_DIRS") != NULL)
		return;
	snprintf(parent, sizeof(parent), "%s", e->dir);
	if ((slash = strrchr(parent, '/')) != NULL)
		*slash = '\0';
	{
		const char *argv[] = { "rm", "-rf", parent, NULL };
		gwt_run(argv, NULL, 0, NULL, NULL);
	}
}

int
gwt_gw_alive(gwt_gw_t *gw)
{
	int status;

	if (gw->pid <= 0)
		return 0;
	if (waitpid(gw->pid, &status, WNOHANG) == gw->pid) {
		gw->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) :
		    128 + WTERMSIG(status);
		gwt_gw_reaped(gw->pid, gw->area, "died", gw->exit_status);
		gw->pid = 0;
		return 0;
	}
	return 1;
}

int
gwt_gw_start(gwt_env_t *e, const char *area, gwt_gw_t *gw)
{
	return gwt_gw_start_nofile(e, area, gw, 0, 0);
}

int
gwt_gw_start_nofile(gwt_env_t *e, const char *area, gwt_gw_t *gw,
    unsigned long soft, unsigned long hard)
{
	const char *hdrs[] = { NULL };
	gwt_resp_t resp;
	char err[256];
	long until;
	int fd, k;

	memset(gw, 0, sizeof(*gw));
	gw->exit_status = -1;
	snprintf(gw->area, sizeof(gw->area), "%s", area);
	snprintf(gw->config, sizeof(gw->config), "%s/%s/gateway.json", e->dir, area);
	snprintf(gw->log, sizeof(gw->log), "%s/%s.log", e->dir, area);
	{
		char *cfg = NULL;
		size_t len;
		const char *l;
		if (file_read_all(gw->config, 1 << 20, &cfg, &len) < 0)
			return -1;
		l = strstr(cfg, "\"listen\"");
		l = l ? strstr(l, "127.0.0.1:") : NULL;
		gw->port = l ? (int)strtol(l + 10, NULL, 10) : 0;
		free(cfg);
		if (gw->port <= 0)
			return -1;
	}
	if ((gw->pid = fork()) < 0)
		return -1;
	if (gw->pid == 0) {
		fd = open(gw->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (hard != 0) {
			struct rlimit rl = { (rlim_t)soft, (rlim_t)hard };

			/* Only the gateway's own descriptors count against
			 * the limit, not the test's it would inherit. */
			(void)close_range(3, ~0U, 0);
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(126);
		}
		/* make valgrind: the gateway itself runs under memcheck and
		 * fails (exit 99 at stop) on any error or leak. */
		{
			const char *args[] = { "--config", gw->config, NULL };
			gwt_exec_gw(e, args);
		}
		_exit(127);
	}
	for (until = gwt_now_ms() + gwt_ms(20000); gwt_now_ms() < until;) {
		if (!gwt_gw_alive(gw))
			return -1;
		memset(&resp, 0, sizeof(resp));
		k = gwt_request(e, gw, area, "agency-police", "GET", "/v1/health",
		    hdrs, NULL, 0, &resp, err, sizeof(err));
		if (k == 0 && resp.status == 200) {
			gwt_resp_free(&resp);
			return 0;
		}
		gwt_resp_free(&resp);
		sleep_ms(50);
	}
	gwt_gw_kill9(gw);
	return -1;
}

int
gwt_gw_stop(gwt_gw_t *gw)
{
	long until;
	int status;

	if (gw->pid <= 0)
		return -1;
	kill(gw->pid, SIGTERM);
	/* Under memcheck the leak check at exit is part of the stop. */
	for (until = gwt_now_ms() + gwt_ms(60000); gwt_now_ms() < until;) {
		if (waitpid(gw->pid, &status, WNOHANG) == gw->pid) {
			status = WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
			gwt_gw_reaped(gw->pid, gw->area, "stop", status);
			gw->exit_status = status;
			gw->pid = 0;
			return status;
		}
		sleep_ms(10);
	}
	gwt_gw_kill9(gw);
	return -1;
}

static int unclean_stops;

int
gwt_gw_stop_clean(gwt_gw_t *gw)
{
	int rc = 0, st;

	if (gw->area[0] == '\0')
		return 0;
	if (gw->pid > 0 && (st = gwt_gw_stop(gw)) != 0) {
		fprintf(stderr, "gwtest: visor-gw %s stopped with status %d%s "
		    "(log %s)\n", gw->area, st, st == 99 ? ", memcheck errors" : "",
		    gw->log);
		rc = -1;
	}
	if (gwt_log_contains(gw, "AddressSanitizer") ||
	    gwt_log_contains(gw, "LeakSanitizer") ||
	    gwt_log_contains(gw, "runtime error:")) {
		fprintf(stderr, "gwtest: sanitizer report in %s\n", gw->log);
		rc = -1;
	}
	if (rc < 0) {
		unclean_stops++;
		setenv("VISOR_KEEP_TEST_DIRS", "1", 1);
	}
	return rc;
}

int
gwt_exit(int cmocka_rc)
{
	if (cmocka_rc == 0 && unclean_stops > 0) {
		fprintf(stderr, "gwtest: %d gateway(s) did not stop cleanly\n",
		    unclean_stops);
		return 1;
	}
	return cmocka_rc;
}

void
gwt_gw_kill9(gwt_gw_t *gw)
{
	if (gw->pid <= 0)
		return;
	kill(gw->pid, SIGKILL);
	waitpid(gw->pid, NULL, 0);
	gwt_gw_reaped(gw->pid, gw->area, "kill9", 128 + SIGKILL);
	gw->exit_status = 128 + SIGKILL;
	gw->pid = 0;
}

static size_t
count_occurrences(const char *path, const char *needle)
{
	char *text = NULL;
	size_t len, n = 0;
	const char *p;

	if (file_read_all(path, 256 << 20, &text, &len) < 0)
		return 0;
	for (p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(text);
	return n;
}

int
gwt_tcp_connect(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
gwt_raw_open(const gwt_env_t *env, int port, const char *cert,
    const char *key, int max_version, int rcvbuf, gwt_raw_t *r)
{
	struct sockaddr_in a;
	int one = 1;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if ((r->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(r->ctx, gwt_path(env, "pki/root.crt"),
	    NULL) != 1)
		return -1;
	if (max_version != 0 &&
	    (SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(r->ctx, max_version) != 1))
		return -1;
	if (cert != NULL &&
	    (SSL_CTX_use_certificate_chain_file(r->ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM) != 1))
		return -1;
	if ((r->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	if (rcvbuf > 0 && setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
	    sizeof(rcvbuf)) < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(r->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	(void)setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((r->ssl = SSL_new(r->ctx)) == NULL)
		return -1;
	SSL_set_fd(r->ssl, r->fd);
	return SSL_connect(r->ssl) == 1 ? 0 : -1;
}

void
gwt_raw_close(gwt_raw_t *r)
{
	if (r->ssl != NULL)
		SSL_free(r->ssl);
	if (r->fd >= 0)
		close(r->fd);
	if (r->ctx != NULL)
		SSL_CTX_free(r->ctx);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

int
gwt_log_contains(const gwt_gw_t *gw, const char *needle)
{
	return count_occurrences(gw->log, needle) > 0;
}

size_t
gwt_log_count(const gwt_gw_t *gw, const char *needle)
{
	return count_occurrences(gw->log, needle);
}

struct https_client *
gwt_client(const gwt_env_t *e, const char *cert_area, const char *name,
    long timeout_ms)
{
	https_client_options_t opt;
	https_client_t *c;
	char cert[700], key[700], root[700], err[256];

	snprintf(cert, sizeof(cert), "%s/pki/%s/%s.crt", e->dir, cert_area, name);
	snprintf(key, sizeof(key), "%s/pki/%s/%s.key", e->dir, cert_area, name);
	snprintf(root, sizeof(root), "%s/pki/root.crt", e->dir);
	memset(&opt, 0, sizeof(opt));
	opt.cert = cert;
	opt.key = key;
	opt.root = root;
	opt.timeout_ms = timeout_ms;
	if ((c = https_client_new(&opt, err, sizeof(err))) == NULL)
		fprintf(stderr, "gwtest: client %s/%s: %s\n", cert_area, name, err);
	return c;
}

pid_t
gwt_sqlite_hold_lock(const char *db, int *fd)
{
	static const char begin[] = ".timeout 5000\nBEGIN IMMEDIATE;\n";
	int in[2];
	pid_t pid;

	if (pipe(in) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		close(in[1]);
		execlp("sqlite3", "sqlite3", db, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	if (write(in[1], begin, sizeof(begin) - 1) != (ssize_t)sizeof(begin) - 1) {
		close(in[1]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	*fd = in[1];
	return pid;
}

void
gwt_sqlite_release(pid_t pid, int fd)
{
	static const char end[] = "ROLLBACK;\n.quit\n";

	if (write(fd, end, sizeof(end) - 1) != (ssize_t)sizeof(end) - 1)
		fprintf(stderr, "gwtest: cannot end the sqlite3 session\n");
	close(fd);
	waitpid(pid, NULL, 0);
}

int
gwt_log_wait(const gwt_gw_t *gw, const char *needle, long ms)
{
	long until = gwt_now_ms() + gwt_ms(ms);

	for (;;) {
		if (count_occurrences(gw->log, needle) > 0)
			return 1;
		if (gwt_now_ms() >= until)
			return 0;
		sleep_ms(10);
	}
}

int
gwt_gw_hup(gwt_gw_t *gw)
{
	size_t ok0 = count_occurrences(gw->log, "event=reloaded");
	size_t bad0 = count_occurrences(gw->log, "event=reload-refused");
	long until;

	kill(gw->pid, SIGHUP);
	for (until = gwt_now_ms() + gwt_ms(5000); gwt_now_ms() < until;) {
		if (count_occurrences(gw->log, "event=reloaded") > ok0)
			return 0;
		if (count_occurrences(gw->log, "event=reload-refused") > bad0)
			return 1;
		sleep_ms(10);
	}
	return -1;
}

int
gwt_request_files(const gwt_env_t *e, const gwt_gw_t *gw, const char *cert,
    const char *key, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len, gwt_resp_t *resp,
    char *err, size_t errlen)
{
	https_client_options_t opt;
	https_response_t r;
	https_client_t *c;
	char url[300], expect[100];
	int rc;

	memset(resp, 0, sizeof(*resp));
	https_global_init();
	memset(&opt, 0, sizeof(opt));
	snprintf(expect, sizeof(expect), "urn:visor:%s:gateway", gw->area);
	opt.cert = cert;
	opt.key = key;
	opt.root = gwt_path(e, "pki/root.crt");
	opt.expect_identity = expect;
	opt.timeout_ms = gwt_ms(20000);
	if ((c = https_client_new(&opt, err, errlen)) == NULL)
		return -1;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", gw->port, path);
	memset(&r, 0, sizeof(r));
	rc = https_client_call(c, method, url, headers, body, len, &r, err, errlen);
	if (rc == 0) {
		resp->status = r.status;
		resp->body = r.body;
		resp->headers = r.headers;
		memset(&r.body, 0, sizeof(r.body));
		memset(&r.headers, 0, sizeof(r.headers));
	}
	https_response_free(&r);
	https_client_free(c);
	return rc;
}

int
gwt_request(const gwt_env_t *e, const gwt_gw_t *gw, const char *cert_area,
    const char *cert_name, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len, gwt_resp_t *resp,
    char *err, size_t errlen)
{
	char cert[600], key[600];

	snprintf(cert, sizeof(cert), "%s/pki/%s/%s.crt", e->dir, cert_area, cert_name);
	snprintf(key, sizeof(key), "%s/pki/%s/%s.key", e->dir, cert_area, cert_name);
	return gwt_request_files(e, gw, cert, key, method, path, headers, body,
	    len, resp, err, errlen);
}

int
gwt_audit_size(const gwt_env_t *e, const gwt_gw_t *gw, unsigned long long *size)
{
	const char *const h[] = { NULL };
	gwt_resp_t resp;
	char err[256];
	const char *p;
	int rc = -1;

	if (gwt_request(e, gw, gw->area, "agency-police", "GET", "/v1/health",
	    h, NULL, 0, &resp, err, sizeof(err)) < 0) {
		fprintf(stderr, "gwtest: GET /v1/health: %s\n", err);
		return -1;
	}
	if (resp.status == 200 && resp.body.data != NULL &&
	    (p = strstr(resp.body.data, "\"audit_size\":")) != NULL) {
		*size = strtoull(p + 13, NULL, 10);
		rc = 0;
	} else {
		fprintf(stderr, "gwtest: GET /v1/health: %ld, no audit_size\n",
		    resp.status);
	}
	gwt_resp_free(&resp);
	return rc;
}

int
gwt_metric(const gwt_gw_t *gw, const char *series, double *value)
{
	char url[64], needle[256];
	const char *argv[] = { "curl", "-sS", "--max-time", "10", url, NULL };
	buf_t out = BUF_INIT;
	const char *p;
	int rc = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gw->port + 1000);
	if (gwt_run(argv, NULL, 0, &out, NULL) != 0 || out.data == NULL) {
		fprintf(stderr, "gwtest: GET %s failed\n", url);
		goto done;
	}
	/* At a line's start, so that a name is not found inside a longer one. */
	snprintf(needle, sizeof(needle), "\n%s ", series);
	if ((p = strstr(out.data, needle)) == NULL) {
		*value = 0;
		rc = 1;
		goto done;
	}
	*value = strtod(p + strlen(needle), NULL);
	rc = 0;
done:
	buf_free(&out);
	return rc;
}

void
gwt_resp_free(gwt_resp_t *r)
{
	buf_free(&r->body);
	buf_free(&r->headers);
}
