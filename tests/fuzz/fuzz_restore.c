/* SPDX-License-Identifier: MIT */
/*
 * fuzz_restore.c - libFuzzer harness for the restore path: rows of the
 * state database (sql/001_init.sql) as another process, an older
 * version or a damaged disk could have left them, read back by the store
 * (src/store/store.c: store_open, store_scripts_load, store_instances_load) and
 * by the daemon's start-up (src/scripts/control.c: control_restore, which
 * registers every stored script again and seeds its instance ids;
 * bpftrace is never started: that needs the event loop).
 *
 * Each input is written with sqlite3 directly into a fresh copy of the
 * database (in /dev/shm when there is one): up to 4 scripts rows and 8
 * instances rows, every column a fuzzed value of any storage class (NULL,
 * integer, real, text, blob), with the CHECK constraints optionally off
 * (PRAGMA ignore_check_constraints) as a foreign writer could have them.
 * A value is a type byte, then its bytes (see fz_bytes in fuzzhelp.h);
 * for instances.script_id, type 6 takes the id of script row N.
 */
#include "fuzzhelp.h"

#include <sqlite3.h>
#include <unistd.h>

#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "registry.h"
#include "scripts.h"
#include "store.h"
#include "top.h"

/* as main wires them; no main loop here, so no ticks */
static const struct scripts_hooks scripts_hooks = {
	.sh_changed = info_changed,
};

static char	 dir[256];
static char	 dbpath[300];

static void
rm_db(void)
{
	char	 p[320];

	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
			    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct store	*st;
	char		 err[512];

	log_init(-1);
	snprintf(dir, sizeof(dir), "%s/bpftraced-fuzz-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	snprintf(dbpath, sizeof(dbpath), "%s/%s", dir, STORE_DB_NAME);
	if ((st = store_open(dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_restore: %s\n", err);
		abort();
	}
	store_close(st);
	atexit(rm_db);
	return 0;
}

static void
bind_value(struct fz *f, sqlite3_stmt *s, int col, char ids[][64], int nids)
{
	const uint8_t	*b;
	size_t		 len;
	int		 t = fz_u8(f) % 7;
	uint64_t	 u;
	double		 d;

	switch (t) {
	case 0:
		sqlite3_bind_null(s, col);
		break;
	case 1:
		sqlite3_bind_int64(s, col, (int64_t)fz_u64(f, 8));
		break;
	case 2:
		sqlite3_bind_int64(s, col, (int8_t)fz_u8(f));
		break;
	case 3:
		u = fz_u64(f, 8);
		memcpy(&d, &u, sizeof(d));
		sqlite3_bind_double(s, col, d);
		break;
	case 4:
		b = fz_bytes(f, &len);
		sqlite3_bind_text(s, col, (const char *)b, (int)len,
		    SQLITE_TRANSIENT);
		break;
	case 5:
		b = fz_bytes(f, &len);
		sqlite3_bind_blob(s, col, b, (int)len, SQLITE_TRANSIENT);
		break;
	default:
		if (nids > 0)
			sqlite3_bind_text(s, col, ids[fz_u8(f) % nids], -1,
			    SQLITE_TRANSIENT);
		else
			sqlite3_bind_text(s, col, "s0", -1, SQLITE_STATIC);
		break;
	}
}

static void
write_rows(struct fz *f)
{
	sqlite3		*db;
	sqlite3_stmt	*s = NULL, *i = NULL;
	char		 ids[4][64];
	int		 nids = 0, flags = fz_u8(f);

	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		abort();
	sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
	sqlite3_exec(db, flags & 1 ? "PRAGMA ignore_check_constraints=ON" :
	    "PRAGMA ignore_check_constraints=OFF", NULL, NULL, NULL);
	if (sqlite3_exec(db, "BEGIN; DELETE FROM instances; DELETE FROM "
	    "scripts; DELETE FROM audit;", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO scripts (script_id, "
	    "name, named, code, owner, peer, created_ms, last_fetch_ms, "
	    "want_run, restart, cluster) VALUES (?,?,?,?,?,?,?,?,?,?,?)", -1,
	    &s, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO instances "
	    "(script_id, var, name, inst_id) VALUES (?,?,?,?)", -1, &i,
	    NULL) != SQLITE_OK)
		abort();
	for (int n = (flags >> 1) % 5; n > 0 && f->n > 0; n--) {
		for (int c = 1; c <= 11; c++)
			bind_value(f, s, c, ids, nids);
		(void)sqlite3_step(s);
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		if (nids < 4) {	/* what is stored, for instances */
			sqlite3_stmt	*q;

			if (sqlite3_prepare_v2(db, "SELECT CAST(script_id AS "
			    "TEXT) FROM scripts ORDER BY rowid DESC LIMIT 1",
			    -1, &q, NULL) == SQLITE_OK &&
			    sqlite3_step(q) == SQLITE_ROW &&
			    sqlite3_column_text(q, 0) != NULL)
				snprintf(ids[nids++], sizeof(ids[0]), "%s",
				    (const char *)sqlite3_column_text(q, 0));
			sqlite3_finalize(q);
		}
	}
	for (int n = (flags >> 4) % 9; n > 0 && f->n > 0; n--) {
		for (int c = 1; c <= 4; c++)
			bind_value(f, i, c, ids, nids);
		(void)sqlite3_step(i);
		sqlite3_reset(i);
		sqlite3_clear_bindings(i);
	}
	sqlite3_finalize(s);
	sqlite3_finalize(i);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	sqlite3_close(db);
}

struct loadctx {
	struct store	*st;
	int		 nscripts;
	int		 ninst;
};

static void
on_inst(const char *var, const char *name, uint32_t id, void *arg)
{
	struct loadctx	*lc = arg;

	FZ_CHECK(var != NULL && name != NULL, "instance without names");
	lc->ninst++;
}

static int
on_script(const struct store_script *ss, void *arg)
{
	struct loadctx		*lc = arg;
	struct store_script	*dup;
	char			 err[512];

	FZ_CHECK(ss->ss_code != NULL && ss->ss_code[ss->ss_codelen] == '\0',
	    "code not terminated");
	FZ_CHECK(ss->ss_cluster <= 0xffffffffu, "cluster");
	if ((dup = store_script_dup(ss)) == NULL)
		abort();
	FZ_CHECK(dup->ss_codelen == ss->ss_codelen &&
	    memcmp(dup->ss_code, ss->ss_code, ss->ss_codelen) == 0,
	    "dup changed the code");
	store_script_free(dup);
	(void)store_instances_load(lc->st, ss->ss_script_id, on_inst, lc, err,
	    sizeof(err));
	lc->nscripts++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz		 f = { data, size };
	struct daemon_state	*ds;
	struct loadctx		 lc = { 0 };
	char			 err[512];

	if (size > 256 * 1024)
		return 0;
	write_rows(&f);

	if ((ds = calloc(1, sizeof(*ds))) == NULL ||
	    config_defaults(&ds->cfg) == -1)
		abort();
	ds->cfg.control = CONTROL_LOOPBACK;
	pthread_mutex_init(&ds->auth_lock, NULL);
	if ((ds->loop = evloop_new()) == NULL || (ds->reg = reg_new()) == NULL)
		abort();
	if ((ds->store = store_open(dir, err, sizeof(err))) == NULL)
		goto out;	/* refused as damaged: fine */
	lc.st = ds->store;
	(void)store_scripts_load(ds->store, on_script, &lc, err, sizeof(err));
	if (scripts_init(ds, &scripts_hooks) == -1 ||
	    control_init(ds->scripts) == -1 || info_init(ds->scripts) == -1)
		abort();
	(void)control_restore(ds->scripts);
	if (ds->scripts) {
		control_fini(ds->scripts);
		info_fini(ds->scripts);
	}
	scripts_fini(ds);
out:
	store_close(ds->store);
	reg_free(ds->reg);
	evloop_free(ds->loop);
	config_free(&ds->cfg);
	pthread_mutex_destroy(&ds->auth_lock);
	free(ds);
	return 0;
}
