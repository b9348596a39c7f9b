/*
 * visor-gw: the gateway daemon.
 *
 *   visor-gw --config FILE [--check-config]
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/fdlimit.h"
#include "gateway/gen.h"
#include "gateway/privdrop.h"
#include "gateway/server.h"
#include "gateway/version.h"
#include "util/json.h"
#include "util/log.h"

int main(int argc, char **argv);

/* --check-config: a rule that loads but does not do what it reads as is
 * said (as the running gateway logs it), not refused. */
static void
lint_print(void *arg, const char *id, const char *why)
{
	fprintf(stderr, "visor-gw: %s: warning: rule %s: %s\n",
	    (const char *)arg, id, why);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: visor-gw --config FILE [--check-config]\n"
	    "       visor-gw --version\n\n"
	    "  --config FILE     the gateway configuration (visor-gw.json(5))\n"
	    "  --check-config    validate the configuration, certificates and\n"
	    "                    policy, then exit (0 valid, 1 invalid)\n"
	    "Started as root, it needs \"user\" in the configuration and becomes\n"
	    "that account once its keys are read and its sockets bound.\n"
	    "Signals: SIGHUP reloads certificates, CRLs, clearances, policy and\n"
	    "transfer.deadline_s (a change of any other key needs a restart);\n"
	    "SIGTERM drains and stops.\n");
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL;
	int check = 0, i, rc, sig;
	char err[1024];
	config_t *cfg;
	privdrop_plan_t plan;
	fdlimit_t fdl;
	sigset_t held, stop;
	const struct timespec now = { 0, 0 };
	gw_gen_t *g;
	server_t *s;

	/* Before any thread: request-scoped cJSON allocation (util/json.h). */
	json_arena_init();
	/* Keep freed memory rather than give the top of each thread's heap
	 * back and grow it again (an mprotect(2) every few requests under
	 * load, by strace); the peak stays mapped, as for most servers. */
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(argv[i], "--check-config") == 0) {
			check = 1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("visor-gw %s\n", visor_version());
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "visor-gw: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL) {
		usage(stderr);
		return 2;
	}
	if ((cfg = config_load(config_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "visor-gw: %s\n", err);
		return 1;
	}
	if (check) {
		/* Build everything a start would, without listening. */
		if ((g = gw_gen_load(config_path, cfg, NULL, err, sizeof(err))) == NULL) {
			fprintf(stderr, "visor-gw: %s\n", err);
			return 1;
		}
		if (privdrop_plan(g->cfg, &plan, err, sizeof(err)) < 0 ||
		    privdrop_check_files(g->cfg, &plan, err, sizeof(err)) < 0 ||
		    fdlimit_ensure(g->cfg, 0, &fdl, err, sizeof(err)) < 0) {
			fprintf(stderr, "visor-gw: %s\n", err);
			gw_gen_unref(g);
			return 1;
		}
		(void)policy_lint(g->policy, lint_print, g->cfg->policy);
		printf("visor-gw: %s: configuration valid (area %s, policy %s",
		    config_path, g->cfg->area, g->policy_hash);
		if (plan.drop)
			printf(", runs as %s:%s", plan.user, plan.group);
		printf(")\n");
		gw_gen_unref(g);
		return 0;
	}
	/* Signals that come while the gateway is still starting (server_new
	 * reads the certificates, CRLs and policy early, then may take
	 * seconds opening the store) are held pending until it can take
	 * them: neither SIGHUP's default nor SIGTERM's (both terminate) may
	 * act then.  A reload must not be lost either: a CRL replaced in
	 * between would not be in force until the next SIGHUP.  The threads
	 * server_new starts keep them blocked. */
	sigemptyset(&held);
	sigaddset(&held, SIGHUP);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGINT);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &held, NULL) != 0) {
		fprintf(stderr, "visor-gw: cannot block SIGHUP, SIGTERM and "
		    "SIGINT\n");
		return 1;
	}
	if ((s = server_new(config_path, cfg, err, sizeof(err))) == NULL) {
		log_event(LOG_ERROR, "start-failed", "error", err, NULL);
		fprintf(stderr, "visor-gw: %s\n", err);
		return 1;
	}
	/* A stop asked for during the start (systemd's at "systemctl stop",
	 * a Ctrl-C) is a clean stop: the gateway has not listened and has
	 * nothing to drain; the store closes as at any stop.  Taken here,
	 * before the port listens (server_run).  One that comes after this
	 * stays pending until the unblock below, and the handler server_new
	 * installed drains as usual. */
	if ((sig = sigtimedwait(&stop, NULL, &now)) > 0) {
		log_event(LOG_INFO, "stopped", "signal", sig == SIGTERM ?
		    "SIGTERM" : "SIGINT", "while", "starting", NULL);
		server_free(s);
		return 0;
	}
	if (pthread_sigmask(SIG_UNBLOCK, &held, NULL) != 0) {
		log_event(LOG_ERROR, "start-failed", "error",
		    "cannot unblock SIGHUP, SIGTERM and SIGINT", NULL);
		server_free(s);
		return 1;
	}
	rc = server_run(s);
	/* server_free removes the handlers, restoring the default actions
	 * (SIGHUP's and SIGTERM's: terminate) once the other threads are
	 * gone: a signal from then on stays pending here rather than turn
	 * a clean stop into death by a signal. */
	(void)pthread_sigmask(SIG_BLOCK, &held, NULL);
	server_free(s);
	return rc == 0 ? 0 : 1;
}
