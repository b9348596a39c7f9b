/*
 * visorctl: the one tool for operators, adapters and auditors.
 */
#include <stdio.h>
#include <string.h>

#include "gateway/version.h"
#include "visorctl/commands.h"

struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
};

static const struct command commands[] = {
	{ "version", cmd_version, "print the version" },
	{ "policy", cmd_policy, "check, explain and test policy files" },
	{ "quickstart", cmd_quickstart, "create a complete local setup (PKI, configs, keys)" },
	{ "certs", cmd_certs, "PKI: new root, area CA, issue, revoke, renew, crl, show" },
	{ "push", cmd_push, "send records (JSON lines or CSV) to a gateway" },
	{ "get", cmd_get, "read a record as policy lets the caller see it" },
	{ "gen", cmd_gen, "write synthetic records as JSON lines" },
	{ "transfer", cmd_transfer, "transfer a record to another area's gateway; follow a transfer" },
	{ "audit", cmd_audit, "auditor: verify the audit log, prove, search, export" },
	{ "init-data", cmd_init_data, "create a new gateway's data directory and keys" },
	{ "status", cmd_status, "a running gateway's health, with warnings in plain words" },
	{ "backup", cmd_backup, "consistent online copy of a gateway's data directory" },
	{ "restore", cmd_restore, "restore a backup without forking the audit log" },
};

int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("visorctl %s\n", visor_version());
	return 0;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: visorctl <command> [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'visorctl <command> --help' shows each command's options.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "visorctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
