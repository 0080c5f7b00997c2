/* SPDX-License-Identifier: MIT */
/*
 * ceiling.c - the HTTP ceiling for tests/bench/fetch.sh: a minimal
 * libmicrohttpd server answering every request with one fixed body of a
 * given size (200, application/json), started in the same threading mode
 * as bpftraced (benchmhd.h), so what bpftraced adds on top of the
 * transport is bpftraced's own work.
 *
 *   ceiling PORT BODY_FILE [THREADS]
 *
 * Built by tests/bench/fetch.sh (cc ceiling.c -lmicrohttpd), not by make.
 */
#include "benchmhd.h"

/* BODY_FILE's bytes into bench_body; -1 with a message on failure */
static int
read_body(const char *path)
{
	FILE	*f;
	char	*b;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) < 0 ||
	    (b = malloc((size_t)n + 1)) == NULL) {
		fclose(f);
		return -1;
	}
	rewind(f);
	if (fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		fclose(f);
		return -1;
	}
	fclose(f);
	bench_body = b;		/* lives until exit */
	bench_body_len = (size_t)n;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: ceiling PORT BODY_FILE [THREADS]\n");
		return 2;
	}
	if (read_body(argv[2]) == -1)
		return 1;
	return bench_serve("ceiling", argv[1], bench_threads(argc, argv, 3));
}
