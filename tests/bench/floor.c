/* SPDX-License-Identifier: MIT */
/*
 * floor.c - the memory floor for tests/bench/footprint.sh: what the
 * libraries bpftraced must link (libmicrohttpd with its GnuTLS, sqlite3,
 * libcrypt and, built with -DWITH_PCP, libpcp + libpcp_pmda) cost in RSS
 * before bpftraced does anything of its own. It starts libmicrohttpd in
 * bpftraced's threading mode (benchmhd.h, as ceiling.c), opens a sqlite
 * database with one table in WAL mode (as the state store does), hashes one
 * password with crypt(3), asks libpcp one configuration value (WITH_PCP),
 * answers one empty JSON object per request, and waits for SIGTERM.
 *
 *   floor PORT DB_FILE [THREADS]
 *
 * Built by bench.py (cc floor.c -lmicrohttpd -lsqlite3 -lcrypt [-lpcp
 * -lpcp_pmda]), not by make.
 */
#include <crypt.h>
#include <sqlite3.h>
#ifdef WITH_PCP
#include <pcp/pmapi.h>
#include <pcp/pmda.h>
#endif

#include "benchmhd.h"

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
	sqlite3	*db = NULL;
	int	 rc;

	if (argc < 3) {
		fprintf(stderr, "usage: floor PORT DB_FILE [THREADS]\n");
		return 2;
	}
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
	bench_body = "{}";
	bench_body_len = 2;
	rc = bench_serve("floor", argv[1], bench_threads(argc, argv, 3));
	sqlite3_close(db);
	return rc;
}
