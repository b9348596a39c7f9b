#include "gateway/fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define FDLIMIT_PROCESS 64
#define FDLIMIT_PER_WORKER 8
#define FDLIMIT_PER_PEER 8

void
fdlimit_need(const config_t *cfg, fdlimit_t *out)
{
	unsigned long threads = cfg->threads > 0 ? cfg->threads : 1;
	unsigned long share;

	memset(out, 0, sizeof(*out));
	/* The workers' caps (server.c worker_init), not max_connections:
	 * 4097 over 2 workers lets 4098 in. */
	share = ((unsigned long)cfg->max_connections + threads - 1) / threads;
	out->conns = share * threads;
	out->reserve = FDLIMIT_PROCESS + FDLIMIT_PER_WORKER * threads +
	    (unsigned long)cfg->n_peers * (2UL * cfg->max_in_flight_per_peer +
	    FDLIMIT_PER_PEER);
	out->need = out->conns + out->reserve;
}

int
fdlimit_ensure(const config_t *cfg, int apply, fdlimit_t *out, char *err,
    size_t errlen)
{
	struct rlimit rl;
	unsigned long allowed;
	char tail[80];

	fdlimit_need(cfg, out);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s",
		    strerror(errno));
		return -1;
	}
	out->soft = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 :
	    (unsigned long)rl.rlim_cur;
	out->hard = rl.rlim_max == RLIM_INFINITY ? (unsigned long)-1 :
	    (unsigned long)rl.rlim_max;
	if (out->soft >= out->need)
		return 0;
	if (out->hard >= out->need) {
		if (!apply)
			return 0;
		/* Up to the hard limit, not just to need: what the reserve
		 * does not count (a burst of metrics clients) gets room too;
		 * the event loops use epoll, which has no FD_SETSIZE. */
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
			out->raised = 1;
			return 0;
		}
		snprintf(err, errlen, "limits.max_connections %u needs %lu open "
		    "files (%lu connections and %lu for the gateway itself), "
		    "but the limit is %lu and raising it to the hard limit "
		    "%lu failed: %s", cfg->max_connections, out->need,
		    out->conns, out->reserve, out->soft, out->hard,
		    strerror(errno));
		return -1;
	}
	/* What the hard limit allows, in max_connections: a whole share per
	 * worker (fdlimit_need). */
	allowed = out->hard > out->reserve ? out->hard - out->reserve : 0;
	allowed -= allowed % (cfg->threads > 0 ? cfg->threads : 1);
	tail[0] = '\0';
	if (allowed > 0)
		snprintf(tail, sizeof(tail), " or lower limits.max_connections "
		    "to %lu at most", allowed);
	snprintf(err, errlen, "limits.max_connections %u needs %lu open files "
	    "(%lu connections and %lu for the gateway itself), but the limit "
	    "is %lu (hard limit %lu): raise the limit to at least %lu "
	    "(LimitNOFILE= in the systemd unit, ulimit -n in a shell)%s",
	    cfg->max_connections, out->need, out->conns, out->reserve,
	    out->soft, out->hard, out->need, tail);
	return -1;
}
