/* SPDX-License-Identifier: MIT */
/*
 * benchmhd.h - the libmicrohttpd server ceiling.c and floor.c share: it
 * answers every request with one fixed body (200, application/json) and
 * is started in bpftraced's threading mode (src/http/http.c start_mhd:
 * internal polling thread, epoll, a pool of N threads, the same
 * connection and memory limits). Each program is one file built by
 * bench.py with cc; this header is included by both, not compiled alone.
 */
#ifndef BENCHMHD_H
#define BENCHMHD_H

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char	*bench_body = "";
static size_t		 bench_body_len;

static enum MHD_Result
bench_answer(void *cls, struct MHD_Connection *c, const char *url,
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
	r = MHD_create_response_from_buffer(bench_body_len, (void *)bench_body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* THREADS argument, or one thread per CPU as bpftraced defaults to */
static unsigned
bench_threads(int argc, char **argv, int at)
{
	return argc > at ? (unsigned)atoi(argv[at]) :
	    (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
}

/* Serves bench_body on port until SIGINT or SIGTERM; the exit status. */
static int
bench_serve(const char *name, const char *port, unsigned threads)
{
	struct MHD_Daemon	*d;
	sigset_t		 set;
	int			 sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG, (uint16_t)atoi(port), NULL, NULL, bench_answer,
	    NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	    MHD_OPTION_CONNECTION_LIMIT, 1024u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 60u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "%s: MHD_start_daemon failed\n", name);
		return 1;
	}
	printf("%s: port %s, %zu-byte body, %u threads\n", name, port,
	    bench_body_len, threads);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}

#endif
