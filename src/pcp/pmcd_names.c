/* SPDX-License-Identifier: MIT */
/*
 * pmcd_names.c - what pmcd's metrics are called and what they are: which
 * names are never asked of pmcd (bpftraced's own, malformed ones), name
 * -> pmid and descriptor and back (cached), help texts, the children of a
 * namespace node, a traversal below one, and every name of a pmid. Each
 * lookup is one operation that pmcd_run() (pmcd.c) runs on a pooled
 * context; answers are kept in pmcd_cache.c.
 *
 * Threads: any request thread; no state of its own (pmcd.c's pool and
 * pmcd_cache.c's cache hold their locks, never both).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_limits.h"
#include "pcp.h"
#include "pmcd_int.h"
#include "registry.h"

/* ---- names never asked of pmcd ---- */

int
pmcd_owned_name(const char *name)
{
	return strcmp(name, "bpftrace") == 0 ||
	    strncmp(name, "bpftrace.", 9) == 0;
}

/*
 * A name (or, with root set, a prefix where "" is the root) worth asking
 * pmcd about. libpcp refuses an empty name with PM_ERR_IPC, and pmcd
 * drops the connection on a request PDU past its size limit (a name of
 * 64 KiB); names with empty components or control characters are never
 * in a PMNS (pmcd answers them PM_ERR_NAME): all are answered here, as
 * pmcd would, without a round trip.
 */
int
pmcd_name_ok(const char *name, int root)
{
	size_t	 len = strlen(name);

	if (len == 0)
		return root;
	if (len > PMCD_NAME_MAX || name[0] == '.' || name[len - 1] == '.' ||
	    strstr(name, "..") != NULL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* ---- lookups ---- */

struct op_name {
	const char	*name;
	pmID		 pmid;
	pmDesc		 desc;
};

static int
op_lookup_name(void *arg)
{
	struct op_name	*o = arg;
	int		 rc;

	if ((rc = pmLookupName(1, &o->name, &o->pmid)) < 0)
		return rc;
	if (o->pmid == PM_ID_NULL)
		return PM_ERR_NAME;
	return pmLookupDesc(o->pmid, &o->desc);
}

/* name -> pmid and descriptor: 0, PM_ERR_NAME (or another), PMCD_ECONN */
int
pmcd_lookup(const char *name, pmID *pmid, pmDesc *desc)
{
	struct op_name	 o = { .name = name };
	char		 key[PMCD_NAME_MAX + 8], *v;
	size_t		 len;
	int		 rc;

	if (pmcd_owned_name(name) || !pmcd_name_ok(name, 0))
		return PM_ERR_NAME;
	snprintf(key, sizeof(key), "n:%s", name);
	if ((v = pmcd_cache_get(key, &len)) != NULL) {
		if (len == sizeof(int)) {
			memcpy(&rc, v, sizeof(rc));
			free(v);
			return rc;
		}
		if (len == sizeof(pmDesc)) {
			memcpy(desc, v, sizeof(*desc));
			*pmid = desc->pmid;
			free(v);
			return 0;
		}
		free(v);
	}
	rc = pmcd_run(op_lookup_name, &o);
	if (rc == 0 && pmID_domain(o.pmid) == BT_DOMAIN)
		rc = PM_ERR_NAME;	/* our own PMDA, seen through pmcd */
	if (rc == PMCD_ECONN)
		return rc;
	if (rc < 0) {
		pmcd_cache_put(key, &rc, sizeof(rc), PMCD_NEGCACHE_MS);
		return rc;
	}
	pmcd_cache_put(key, &o.desc, sizeof(o.desc), PMCD_CACHE_MS);
	*pmid = o.pmid;
	*desc = o.desc;
	return 0;
}

struct op_id {
	pmID	 pmid;
	char	*name;
};

static int
op_name_id(void *arg)
{
	struct op_id	*o = arg;

	return pmNameID(o->pmid, &o->name);
}

/* pmid -> name (malloc'd) and descriptor */
int
pmcd_lookup_pmid(pmID pmid, char **namep, pmDesc *desc)
{
	struct op_id	 o = { .pmid = pmid };
	char		 key[64];
	int		 rc;

	if (pmID_domain(pmid) == BT_DOMAIN || pmID_domain(pmid) ==
	    DERIVE_DOMAIN)
		return PM_ERR_PMID;
	snprintf(key, sizeof(key), "i:%u", (unsigned)pmid);
	if ((*namep = pmcd_cache_get(key, NULL)) == NULL) {
		if ((rc = pmcd_run(op_name_id, &o)) < 0)
			return rc;
		pmcd_cache_put(key, o.name, strlen(o.name), PMCD_CACHE_MS);
		*namep = o.name;
	}
	if ((rc = pmcd_lookup(*namep, &pmid, desc)) < 0) {
		free(*namep);
		*namep = NULL;
	}
	return rc;
}

struct op_text {
	int	 indom;
	unsigned id;
	int	 level;
	char	*text;
};

static int
op_text(void *arg)
{
	struct op_text	*o = arg;

	return o->indom ? pmLookupInDomText(o->id, o->level, &o->text) :
	    pmLookupText(o->id, o->level, &o->text);
}

/* one-line or help text of a pmid or indom; "" when there is none */
char *
pmcd_text(int indom, unsigned id, int help)
{
	struct op_text	 o = { indom, id, help ? PM_TEXT_HELP : PM_TEXT_ONELINE,
			    NULL };
	char		 key[64], *v;

	snprintf(key, sizeof(key), "t:%d:%u:%d", indom, id, help);
	if ((v = pmcd_cache_get(key, NULL)) != NULL)
		return v;
	if (pmcd_run(op_text, &o) < 0 || o.text == NULL)
		return strdup("");
	pmcd_cache_put(key, o.text, strlen(o.text), PMCD_CACHE_MS);
	return o.text;
}

/* ---- the namespace ---- */

struct op_children {
	const char	*prefix;
	char		**names;
	int		*status;
};

static int
op_children(void *arg)
{
	struct op_children	*o = arg;

	return pmGetChildrenStatus(o->prefix, &o->names, &o->status);
}

/*
 * The children of prefix: their count (names/status arrays to free()),
 * PM_ERR_NAME or PMCD_ECONN. bpftraced's own root is left out.
 */
int
pmcd_children(const char *prefix, char ***names, int **status)
{
	struct op_children	 o = { .prefix = prefix };
	int			 n, k = 0;

	*names = NULL;
	*status = NULL;
	if (pmcd_owned_name(prefix) || !pmcd_name_ok(prefix, 1))
		return PM_ERR_NAME;
	if ((n = pmcd_run(op_children, &o)) <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (*prefix == '\0' && strcmp(o.names[i], "bpftrace") == 0)
			continue;
		o.names[k] = o.names[i];	/* pointers into one block */
		o.status[k++] = o.status[i];
	}
	*names = o.names;
	*status = o.status;
	return k;
}

struct op_trav {
	const char	*prefix;
	char		**v;
	size_t		 n, cap;
	int		 oom;
};

static void
trav_cb(const char *name, void *arg)
{
	struct op_trav	*o = arg;
	char		**nv;

	if (o->oom || pmcd_owned_name(name))
		return;
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		if ((nv = realloc(o->v, o->cap * sizeof(*nv))) == NULL) {
			o->oom = 1;
			return;
		}
		o->v = nv;
	}
	if ((o->v[o->n] = strdup(name)) == NULL)
		o->oom = 1;
	else
		o->n++;
}

static int
op_traverse(void *arg)
{
	struct op_trav	*o = arg;

	for (size_t i = 0; i < o->n; i++)
		free(o->v[i]);
	o->n = 0;
	return pmTraversePMNS_r(o->prefix, trav_cb, o);
}

void
pmcd_names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* every leaf at or below prefix: 0, PM_ERR_NAME or PMCD_ECONN */
int
pmcd_traverse(const char *prefix, char ***names, size_t *np)
{
	struct op_trav	 o = { .prefix = prefix };
	int		 rc;

	*names = NULL;
	*np = 0;
	if (pmcd_owned_name(prefix) || !pmcd_name_ok(prefix, 1))
		return PM_ERR_NAME;
	rc = pmcd_run(op_traverse, &o);
	if (rc >= 0 && o.oom)
		rc = -ENOMEM;
	if (rc < 0) {
		pmcd_names_free(o.v, o.n);
		return rc;
	}
	if (o.n == 0) {
		free(o.v);
		return PM_ERR_NAME;
	}
	*names = o.v;
	*np = o.n;
	return 0;
}

/* ---- names of one pmid ---- */

struct op_all {
	pmID	 pmid;
	char	**names;
};

static int
op_name_all(void *arg)
{
	struct op_all	*o = arg;

	return pmNameAll(o->pmid, &o->names);
}

/*
 * Every name of a pmid, in pmcd's order (pmproxy lists a fetched pmid
 * once per name): their count and one malloc'd block (free() it), or
 * an error. Cached as the names joined by NUL bytes.
 */
int
pmcd_names_of(pmID pmid, char ***namesp)
{
	struct op_all	 o = { .pmid = pmid };
	char		 key[64], *v, **out, *p;
	size_t		 len = 0, tot;
	int		 n = 0, rc;

	*namesp = NULL;
	snprintf(key, sizeof(key), "a:%u", (unsigned)pmid);
	if ((v = pmcd_cache_get(key, &len)) == NULL) {
		if ((rc = pmcd_run(op_name_all, &o)) <= 0)
			return rc < 0 ? rc : PM_ERR_PMID;
		for (int i = 0; i < rc; i++)
			len += strlen(o.names[i]) + 1;
		if ((v = malloc(len + 1)) == NULL) {
			free(o.names);
			return -ENOMEM;
		}
		for (int i = 0, at = 0; i < rc; i++)
			at += snprintf(v + at, len + 1 - (size_t)at, "%s",
			    o.names[i]) + 1;	/* past its NUL */
		free(o.names);
		pmcd_cache_put(key, v, len, PMCD_CACHE_MS);
	}
	for (size_t i = 0; i < len; i++)
		n += v[i] == '\0';
	tot = (size_t)(n + 1) * sizeof(char *) + len;
	if ((out = malloc(tot)) == NULL) {
		free(v);
		return -ENOMEM;
	}
	p = (char *)(out + n + 1);
	memcpy(p, v, len);
	free(v);
	for (int i = 0; i < n; i++) {
		out[i] = p;
		p += strlen(p) + 1;
	}
	out[n] = NULL;
	*namesp = out;
	return n;
}
