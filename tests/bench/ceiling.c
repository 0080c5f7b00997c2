/* SPDX-License-Identifier: MIT */
/*
 * ceiling.c - the HTTP ceiling for tests/bench/fetch.sh: a minimal
 * libmicrohttpd server answering every request with one fixed body of a
 * given size (200, application/json), started in the same threading mode
 * as bpftraced (src/http.c start_mhd: internal polling thread, epoll, a
 * pool of N threads, same connection limits and memory limit), so what
 * bpftraced adds on top of the transport is bpftraced's own work.
 *
 *   ceiling PORT BODY_FILE [THREADS]
 *
 * Built by tests/bench/fetch.sh (cc ceiling.c -lmicrohttpd), not by make.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char	*body;
static size_t	 body_len;

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	(void)cls; (void)url; (void)method; (void)version; (void)upload;
	if (*state == NULL) {		/* first call: headers only */
		*state = (void *)1;
		return MHD_YES;
	}
	*upload_len = 0;
	r = MHD_create_response_from_buffer(body_len, body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon	*d;
	FILE			*f;
	sigset_t		 set;
	int			 sig;
	unsigned		 threads;

	if (argc < 3) {
		fprintf(stderr, "usage: ceiling PORT BODY_FILE [THREADS]\n");
		return 2;
	}
	threads = argc > 3 ? (unsigned)atoi(argv[3]) :
	    (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if ((f = fopen(argv[2], "rb")) == NULL) {
		perror(argv[2]);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	body_len = (size_t)ftell(f);
	rewind(f);
	body = malloc(body_len + 1);
	if (body == NULL || fread(body, 1, body_len, f) != body_len)
		return 1;
	fclose(f);

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG, (uint16_t)atoi(argv[1]), NULL, NULL, answer, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	    MHD_OPTION_CONNECTION_LIMIT, 1024u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 60u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "ceiling: MHD_start_daemon failed\n");
		return 1;
	}
	printf("ceiling: port %s, %zu-byte body, %u threads\n", argv[1],
	    body_len, threads);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
