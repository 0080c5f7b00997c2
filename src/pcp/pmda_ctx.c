/* SPDX-License-Identifier: MIT */
/*
 * pmda_ctx.c - pmcd's client contexts, as the PMDA callbacks see them:
 * the per-context table (pmcd's context -> our id with PMDA_CTX_BIT, see
 * pmda.c), each client's attributes (PMDA_FLAG_AUTHORIZE: uid, pid, SASL
 * user), the principal a fetch or a store speaks for, and its roles in
 * --auth-file. Also defines pmda_cb, the state of all the callbacks.
 * The bottom of the PMDA files: it calls no other file of src/pcp/.
 *
 * Threads: the PMDA thread alone (libpcp_pmda calls every callback
 * there), so the table needs no lock; the users file is read under
 * ds->auth_lock (auth_ref).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bt_limits.h"
#include "daemon.h"
#include "log.h"
#include "pmda_int.h"
#include "util.h"

struct pmda_cb	 pmda_cb;

/* ---- per-context table (PMDA thread) ---- */

struct pctx *
pmda_ctx_lookup(int ctx, int create)
{
	for (size_t i = 0; i < pmda_cb.nctxs; i++)
		if (pmda_cb.ctxs[i].pc_ctx == ctx)
			return &pmda_cb.ctxs[i];
	if (!create)
		return NULL;
	if (pmda_cb.nctxs == pmda_cb.capctxs) {
		size_t		 cap = pmda_cb.capctxs ? pmda_cb.capctxs * 2 :
		    16;
		struct pctx	*v = realloc(pmda_cb.ctxs, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		pmda_cb.ctxs = v;
		pmda_cb.capctxs = cap;
	}
	memset(&pmda_cb.ctxs[pmda_cb.nctxs], 0, sizeof(pmda_cb.ctxs[0]));
	pmda_cb.ctxs[pmda_cb.nctxs].pc_ctx = ctx;
	pmda_cb.ctxs[pmda_cb.nctxs].pc_id = PMDA_CTX_BIT |
	    (pmda_cb.seq++ & ~PMDA_CTX_BIT);
	return &pmda_cb.ctxs[pmda_cb.nctxs++];
}

void
on_pmda_end_context(int ctx)
{
	log_debug("pmda: context %d ended", ctx);
	for (size_t i = 0; i < pmda_cb.nctxs; i++)
		if (pmda_cb.ctxs[i].pc_ctx == ctx) {
			pmda_cb.ctxs[i] = pmda_cb.ctxs[--pmda_cb.nctxs];
			return;
		}
}

/* a uid or pid attribute: 1 and *out set when value is a number in
   [min, UINT32_MAX], else 0 and *out untouched */
static int
attr_u32(const char *value, long long min, unsigned *out)
{
	const char	*errstr;
	long long	 n = strtonum_ll(value, min, UINT32_MAX, &errstr);

	if (errstr != NULL)
		return 0;
	*out = (unsigned)n;
	return 1;
}

int
on_pmda_attribute(int ctx, int attr, const char *value, int len, pmdaExt *pe)
{
	struct pctx	*pc;

	if ((pc = pmda_ctx_lookup(ctx, 1)) == NULL)
		return -ENOMEM;
	pc->pc_have_principal = 0;	/* worked out again with this one */
	if (value == NULL || len <= 0)
		return 0;
	switch (attr) {
	case PMDA_ATTR_USERNAME:
		if (strnlen(value, (size_t)len) <= AUTH_NAME_MAX)
			snprintf(pc->pc_user, sizeof(pc->pc_user), "%.*s", len,
			    value);
		break;
	case PMDA_ATTR_USERID:
		pc->pc_has_uid |= attr_u32(value, 0, &pc->pc_uid);
		break;
	case PMDA_ATTR_PROCESSID:
		pc->pc_has_pid |= attr_u32(value, 1, &pc->pc_pid);
		break;
	default:
		break;
	}
	log_debug("pmda: context %d attribute %d = %.*s", ctx, attr, len,
	    value);
	return 0;
}

/* ---- who the client is ---- */

/* The login name of a local client, or "" */
static void
uid_name(unsigned uid, char *out, size_t outlen)
{
	struct passwd	 pw, *res = NULL;
	char		 buf[4096];

	out[0] = '\0';
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 &&
	    res != NULL && strlen(res->pw_name) < outlen)
		snprintf(out, outlen, "%s", res->pw_name);
}

/*
 * A pmcd client as a principal: the SASL name, else the login name of
 * a local uid (user, "" when none), and where it is (peer). The same for
 * stores and fetches, so a control answer reaches the one who stored.
 */
void
pmda_ctx_principal(const struct pctx *pc, char *user, size_t ulen, char *peer,
    size_t plen)
{
	user[0] = '\0';
	if (pc->pc_user[0])
		snprintf(user, ulen, "%s", pc->pc_user);
	else if (pc->pc_has_uid && pc->pc_has_pid)
		uid_name(pc->pc_uid, user, ulen);
	if (pc->pc_has_pid)
		snprintf(peer, plen, "pmcd:local uid %u pid %u", pc->pc_uid,
		    pc->pc_pid);
	else
		snprintf(peer, plen, "pmcd:%s", pc->pc_user[0] ? "sasl" :
		    "remote");
}

/* user's roles in --auth-file (0 when not listed or no file) */
unsigned
pmda_ctx_roles(struct daemon_state *ds, const char *user)
{
	struct auth_db	*db;
	unsigned	 roles = 0;

	if (user == NULL || user[0] == '\0')
		return 0;
	pthread_mutex_lock(&ds->auth_lock);
	db = ds->auth ? auth_ref(ds->auth) : NULL;
	pthread_mutex_unlock(&ds->auth_lock);
	if (auth_user_roles(db, user, &roles) == -1)
		roles = 0;
	auth_unref(db);
	return roles;
}

/*
 * The pmcd client of this fetch as a reader (pointing into its context
 * entry: valid until the next pmda_ctx_lookup with create). The name is
 * looked up once per context; the roles each time under --auth-reads
 * (the users file may be reloaded). NULL out of memory.
 */
const struct reader *
pmda_ctx_reader(int ctx, struct reader *rd)
{
	struct pctx	*pc = pmda_ctx_lookup(ctx, 1);

	if (pc == NULL)
		return NULL;
	if (!pc->pc_have_principal) {
		pmda_ctx_principal(pc, pc->pc_puser, sizeof(pc->pc_puser),
		    pc->pc_ppeer, sizeof(pc->pc_ppeer));
		pc->pc_have_principal = 1;
	}
	memset(rd, 0, sizeof(*rd));
	rd->rd_ctx = pc->pc_id;
	rd->rd_user = pc->pc_puser[0] ? pc->pc_puser : NULL;
	rd->rd_roles = pmda_cb.ds->cfg.auth_reads ? pmda_ctx_roles(pmda_cb.ds,
	    rd->rd_user) : 0;
	rd->rd_peer = pc->pc_ppeer;
	return rd;
}
