/* visor-gw: the gateway daemon.  See gateway/server.c. */
#include <stdio.h>

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "visor-gw: starting\n");
	return 1;
}
