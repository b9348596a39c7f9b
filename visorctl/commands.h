/*
 * The subcommands of visorctl.  Each takes the arguments after its own name
 * (argv[0] is the subcommand name) and returns the process exit status:
 * 0 success, 1 a check failed or the request was refused, 2 bad usage or
 * input.  Each prints its own usage on --help.
 */
#ifndef VISORCTL_COMMANDS_H
#define VISORCTL_COMMANDS_H

int cmd_version(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_certs(int argc, char **argv);
int cmd_quickstart(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_get(int argc, char **argv);

int cmd_transfer(int argc, char **argv);
int cmd_audit(int argc, char **argv);

#endif
