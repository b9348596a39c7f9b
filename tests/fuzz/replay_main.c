/*
 * Replays a fuzz target's seed corpus (tests/fuzz/corpus/<name>/) through
 * LLVMFuzzerTestOneInput without libFuzzer: the regression run in make test,
 * so every input that once crashed stays fixed.  The corpus folder is found
 * from the program name (replay/fuzz_<name> -> corpus/<name>).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	char dir[1024], path[2048];
	const char *name, *src;
	struct dirent *de;
	DIR *d;
	char *data;
	size_t len;
	int n = 0, bad = 0;

	(void)argc;
	name = strrchr(argv[0], '/');
	name = name ? name + 1 : argv[0];
	if (strncmp(name, "fuzz_", 5) == 0)
		name += 5;
	src = getenv("VISOR_SRC");
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src ? src : ".", name);
	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: no corpus at %s\n", dir);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (file_join(path, sizeof(path), dir, de->d_name) < 0 ||
		    file_read_all(path, 16 << 20, &data, &len) < 0) {
			bad++;
			continue;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		free(data);
		n++;
	}
	closedir(d);
	printf("replay %s: %d passed, %d failed\n", name, n, bad);
	return bad ? 1 : 0;
}
