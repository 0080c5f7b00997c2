/* SPDX-License-Identifier: MIT */
/*
 * floor.c - the memory floor for tests/bench/footprint.sh: what the
 * libraries bpftraced must link (libmicrohttpd with its GnuTLS, sqlite3,
 * libcrypt and, built with -DWITH_PCP, libpcp + libpcp_pmda) cost in RSS
 * before bpftraced does anything of its own. It starts libmicrohttpd in
 * bpftraced's threading mode (as ceiling.c), opens a sqlite database
 * with one table in WAL mode (as the state store does), hashes one
 * password with crypt(3), asks libpcp one configuration value (WITH_PCP),
 * answers one empty JSON object per request, and waits for SIGTERM.
 *
 *   floor PORT DB_FILE [THREADS]
 *
 * Built by bench.py (cc floor.c -lmicrohttpd -lsqlite3 -lcrypt [-lpcp
 * -lpcp_pmda]), not by make.
 */
#include <crypt.h>
#include <microhttpd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef WITH_PCP
#include <pcp/pmapi.h>
#include <pcp/pmda.h>
#endif

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	static char		 body[] = "{}";
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	(void)cls; (void)url; (void)method; (void)version; (void)upload;
	if (*state == NULL) {
		*state = (void *)1;
		return MHD_YES;
	}
	*upload_len = 0;
	r = MHD_create_response_from_buffer(sizeof(body) - 1, body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static int
open_db(const char *path, sqlite3 **db)
{
	if (sqlite3_open(path, db) != SQLITE_OK)
		return -1;
	return sqlite3_exec(*db, "PRAGMA journal_mode=WAL;"
	    "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB);"
	    "INSERT OR REPLACE INTO t VALUES ('a', x'00');", NULL, NULL,
	    NULL) == SQLITE_OK ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon	*d;
	sqlite3			*db = NULL;
	sigset_t		 set;
	int			 sig;
	unsigned		 threads;

	if (argc < 3) {
		fprintf(stderr, "usage: floor PORT DB_FILE [THREADS]\n");
		return 2;
	}
	threads = argc > 3 ? (unsigned)atoi(argv[3]) :
	    (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (open_db(argv[2], &db) != 0) {
		fprintf(stderr, "floor: %s: %s\n", argv[2], sqlite3_errmsg(db));
		return 1;
	}
	if (crypt("floor", "$y$j9T$0123456789abcdef$") == NULL)
		return 1;
#ifdef WITH_PCP
	if (pmGetConfig("PCP_VERSION") == NULL)
		return 1;
#endif
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
		fprintf(stderr, "floor: MHD_start_daemon failed\n");
		return 1;
	}
	printf("floor: port %s, %u threads\n", argv[1], threads);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	sqlite3_close(db);
	return 0;
}
