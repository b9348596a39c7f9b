/*
 * privdrop: least privilege for the daemon.  Started as root, the gateway
 * reads its TLS key and certificates and binds its listening sockets, then
 * becomes the unprivileged account named by the configuration key "user"
 * (and "group") before it opens the store or reads a byte from the network.
 * It refuses to run as root without that key.  Started as an unprivileged
 * account (systemd User=), nothing is switched.
 *
 * After the drop, SIGHUP re-reads the configuration, certificates, CRLs,
 * policy and the TLS key as that account, so the TLS key must be owned by
 * it (mode 0600) and the data directory too; privdrop_check_files says so
 * before anything is switched.
 */
#ifndef GATEWAY_PRIVDROP_H
#define GATEWAY_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "gateway/config.h"

typedef struct {
	int drop;		/* 1: started as root, switch to uid/gid */
	uid_t uid;
	gid_t gid;
	char user[CONFIG_NAME_MAX];
	char group[CONFIG_NAME_MAX];	/* the group's name, for messages */
} privdrop_plan_t;

/*
 * Decide from cfg->user, cfg->group and the process's effective ids:
 * - euid 0 and no "user": error naming the key (the daemon does not run
 *   as root);
 * - euid 0 and "user": the account must exist and not be uid 0; its group
 *   ("group", else the account's primary group) must exist and not be gid
 *   0; plan->drop = 1;
 * - euid not 0: "user", when set, must be the current account and "group",
 *   when set, the current group (only root can switch); plan->drop = 0.
 * Returns 0 with *plan filled, or -1 with a message naming the key in err.
 */
int privdrop_plan(const config_t *cfg, privdrop_plan_t *plan, char *err,
    size_t errlen);

/*
 * When plan->drop: tls.key and data_dir must be owned by plan->uid (the
 * account re-reads the key on SIGHUP and writes the data directory).
 * Returns 0 (also when there is nothing to drop), or -1 with a message
 * naming the key and saying how to fix it.
 */
int privdrop_check_files(const config_t *cfg, const privdrop_plan_t *plan,
    char *err, size_t errlen);

/*
 * When plan->drop: set the supplementary groups of the account
 * (initgroups), then the gid, then the uid, and verify that neither the
 * uid nor the gid 0 can be regained and that no supplementary group is 0.
 * Then checks, as the account, that tls.key can be read and data_dir
 * written (every folder above them must be searchable by it).  Call it
 * before any thread is started.  Returns 0 (also when there is nothing to
 * drop), or -1 with err; the process must then exit.
 */
int privdrop_apply(const config_t *cfg, const privdrop_plan_t *plan,
    char *err, size_t errlen);

#endif
