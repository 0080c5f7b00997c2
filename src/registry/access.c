/* SPDX-License-Identifier: MIT */
/*
 * access.c - who sees which values under --auth-reads. A script's private
 * values (its code, error and warning text, output and data variables,
 * the instance names of its maps) are readable by the user who registered
 * it and by admins only; other readers get no value, as pmproxy answers
 * for a metric without values. A script without an owner (started with
 * --script/--scripts-dir, or registered anonymously with
 * --control=loopback) is readable by every reader. Without --auth-reads
 * every value is readable by everyone who can connect.
 *
 * Threads: any; reads immutable fields only (src_owner, snapshots).
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "registry.h"

/* May reader see values owned by owner (NULL: nobody owns them)? */
int
access_owner_ok(int auth_reads, const char *owner,
    const struct reader *rd)
{
	if (!auth_reads || owner == NULL || owner[0] == '\0' ||
	    (rd->rd_roles & AUTH_ROLE_ADMIN))
		return 1;
	return rd->rd_user != NULL && strcmp(rd->rd_user, owner) == 0;
}

int
access_metric(int auth_reads, const struct metric *m,
    const struct reader *rd)
{
	switch (m->m_private) {
	case MPRIV_SOURCE:
		return access_owner_ok(auth_reads, m->m_src ?
		    m->m_src->src_owner : NULL, rd) ? ACCESS_ALL : ACCESS_NONE;
	case MPRIV_INST:
		return !auth_reads || (rd->rd_roles &
		    AUTH_ROLE_ADMIN) ? ACCESS_ALL : ACCESS_FILTER;
	default:
		return ACCESS_ALL;
	}
}

/* The instance names of a script's maps are its data too. */
int
access_indom(int auth_reads, const struct indom *in,
    const struct reader *rd)
{
	return access_owner_ok(auth_reads, in->i_src ? in->i_src->src_owner :
	    NULL, rd);
}

/*
 * MPRIV_INST: the values of vs whose owner (the string value of the same
 * instance in set m_owner_slot of s) lets reader see them, into out
 * (arrays owned by out: access_filter_free). -1 out of memory.
 */
int
access_filter(const struct metric *m, const struct snap *s,
    const struct valset *vs, const struct reader *rd,
    int auth_reads, struct valset *out)
{
	const struct valset	*own;
	uint32_t		*ids;
	union value		*vals;
	int			 n = 0;

	memset(out, 0, sizeof(*out));
	if (m->m_owner_slot < 0 || m->m_owner_slot >= s->s_nsets ||
	    vs->vs_inst == NULL)
		return 0;	/* no owners known: nothing shown */
	own = &s->s_sets[m->m_owner_slot];
	ids = calloc((size_t)vs->vs_n + 1, sizeof(*ids));
	vals = calloc((size_t)vs->vs_n + 1, sizeof(*vals));
	if (ids == NULL || vals == NULL) {
		free(ids);
		free(vals);
		return -1;
	}
	for (int i = 0; i < vs->vs_n; i++)
		for (int j = 0; j < own->vs_n; j++) {
			if (own->vs_inst == NULL ||
			    own->vs_inst[j] != vs->vs_inst[i])
				continue;
			if (access_owner_ok(auth_reads, own->vs_vals[j].s,
			    rd)) {
				ids[n] = vs->vs_inst[i];
				vals[n++] = vs->vs_vals[i];
			}
			break;
		}
	out->vs_n = n;
	out->vs_inst = ids;
	out->vs_vals = vals;
	return 0;
}

void
access_filter_free(struct valset *vs)
{
	free((void *)vs->vs_inst);
	free((void *)vs->vs_vals);
	memset(vs, 0, sizeof(*vs));
}
