#include "gateway/privdrop.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MISSING_USER_MSG "missing: visor-gw will not run as root.  Name the " \
    "unprivileged account it becomes after reading its keys and binding its " \
    "sockets (\"user\": \"visor-gw\"), or start it as that account (the " \
    "systemd unit's User=); see visor-gw.json(5)"

int
privdrop_plan(const config_t *cfg, privdrop_plan_t *plan, char *err,
    size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	memset(plan, 0, sizeof(*plan));
	if (cfg->user[0] == '\0') {
		if (geteuid() == 0) {
			snprintf(err, errlen, "user: %s", MISSING_USER_MSG);
			return -1;
		}
		return 0;
	}
	errno = 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		snprintf(err, errlen, "user: no account named '%s'%s%s", cfg->user,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user: '%s' has uid 0 (root): name an "
		    "unprivileged account", cfg->user);
		return -1;
	}
	plan->uid = pw->pw_uid;
	plan->gid = pw->pw_gid;
	snprintf(plan->user, sizeof(plan->user), "%s", cfg->user);
	if (cfg->group[0] != '\0') {
		errno = 0;
		if ((gr = getgrnam(cfg->group)) == NULL) {
			snprintf(err, errlen, "group: no group named '%s'",
			    cfg->group);
			return -1;
		}
		plan->gid = gr->gr_gid;
		snprintf(plan->group, sizeof(plan->group), "%s", cfg->group);
	} else {
		gr = getgrgid(plan->gid);
		snprintf(plan->group, sizeof(plan->group), "%s",
		    gr != NULL && strlen(gr->gr_name) < sizeof(plan->group) ?
		    gr->gr_name : "(primary group)");
	}
	if (plan->gid == 0) {
		snprintf(err, errlen, "%s: the group of '%s' is gid 0 (root): name "
		    "an unprivileged group%s", cfg->group[0] ? "group" : "user",
		    cfg->user, cfg->group[0] ? "" : " with \"group\"");
		return -1;
	}
	if (geteuid() == 0) {
		plan->drop = 1;
		return 0;
	}
	/* Not root: nothing can be switched, so the names must be who we are. */
	if (plan->uid != geteuid()) {
		snprintf(err, errlen, "user: the gateway runs as uid %lu, not as "
		    "'%s' (uid %lu); only a gateway started as root can switch "
		    "accounts", (unsigned long)geteuid(), cfg->user,
		    (unsigned long)plan->uid);
		return -1;
	}
	if (cfg->group[0] != '\0' && plan->gid != getegid()) {
		snprintf(err, errlen, "group: the gateway runs as gid %lu, not as "
		    "'%s' (gid %lu); only a gateway started as root can switch "
		    "groups", (unsigned long)getegid(), cfg->group,
		    (unsigned long)plan->gid);
		return -1;
	}
	return 0;
}

static int
check_owner(const char *key, const char *path, const privdrop_plan_t *plan,
    const char *why, const char *fix, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s: %s", key, path, strerror(errno));
		return -1;
	}
	if (st.st_uid != plan->uid) {
		snprintf(err, errlen, "%s: %s is owned by uid %lu, but the gateway "
		    "becomes '%s' (uid %lu) after start and %s: %s %s:%s %s",
		    key, path, (unsigned long)st.st_uid, plan->user,
		    (unsigned long)plan->uid, why, fix, plan->user, plan->group,
		    path);
		return -1;
	}
	return 0;
}

int
privdrop_check_files(const config_t *cfg, const privdrop_plan_t *plan,
    char *err, size_t errlen)
{
	if (!plan->drop)
		return 0;
	if (check_owner("tls.key", cfg->tls_key, plan,
	    "re-reads it on SIGHUP (keep it mode 0600)", "chown", err,
	    errlen) < 0 ||
	    check_owner("data_dir", cfg->data_dir, plan,
	    "keeps its store there", "chown -R", err, errlen) < 0)
		return -1;
	return 0;
}

/* As the account: what SIGHUP and the store will need. */
static int
check_access(const config_t *cfg, const privdrop_plan_t *plan, char *err,
    size_t errlen)
{
	int fd;

	if ((fd = open(cfg->tls_key, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "tls.key: %s: %s as '%s' (every folder above "
		    "it must be searchable by that account)", cfg->tls_key,
		    strerror(errno), plan->user);
		return -1;
	}
	close(fd);
	if (access(cfg->data_dir, R_OK | W_OK | X_OK) < 0) {
		snprintf(err, errlen, "data_dir: %s: %s as '%s' (every folder "
		    "above it must be searchable by that account)", cfg->data_dir,
		    strerror(errno), plan->user);
		return -1;
	}
	return 0;
}

int
privdrop_apply(const config_t *cfg, const privdrop_plan_t *plan, char *err,
    size_t errlen)
{
	gid_t groups[NGROUPS_MAX + 1];
	int i, n;

	if (!plan->drop)
		return 0;
	if (initgroups(plan->user, plan->gid) < 0) {
		snprintf(err, errlen, "user: cannot set the groups of '%s': %s",
		    plan->user, strerror(errno));
		return -1;
	}
	if (setgid(plan->gid) < 0) {
		snprintf(err, errlen, "group: cannot switch to gid %lu: %s",
		    (unsigned long)plan->gid, strerror(errno));
		return -1;
	}
	if (setuid(plan->uid) < 0) {
		snprintf(err, errlen, "user: cannot switch to '%s' (uid %lu): %s",
		    plan->user, (unsigned long)plan->uid, strerror(errno));
		return -1;
	}
	/* Trust, but verify: a partial drop is worse than none. */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 ||
	    setegid(0) == 0) {
		snprintf(err, errlen, "user: root could be regained after "
		    "switching to '%s'; refusing to run", plan->user);
		return -1;
	}
	if (getuid() != plan->uid || geteuid() != plan->uid ||
	    getgid() != plan->gid || getegid() != plan->gid) {
		snprintf(err, errlen, "user: the switch to '%s' did not take "
		    "effect; refusing to run", plan->user);
		return -1;
	}
	if ((n = getgroups((int)(sizeof(groups) / sizeof(groups[0])),
	    groups)) < 0) {
		snprintf(err, errlen, "user: getgroups: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++)
		if (groups[i] == 0) {
			snprintf(err, errlen, "user: '%s' is a member of group 0 "
			    "(root); refusing to run", plan->user);
			return -1;
		}
	return check_access(cfg, plan, err, errlen);
}
