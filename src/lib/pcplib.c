/* SPDX-License-Identifier: MIT */
/*
 * pcplib.c - the PCP API functions bpftraced calls, with libpcp and
 * libpcp_pmda loaded by dlopen only when needed (see pcplib.h).
 *
 * Lock story: the function pointers (p_*), lib.handle and lib.err are
 * written once, inside pthread_once(&lib.once), before lib.ok (atomic) is
 * set; forwarders call pcplib_need() (pthread_once, then lib.ok) before
 * reading them, pcplib_loaded() reads lib.ok alone and loads nothing.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcp/pmapi.h>
#include <pcp/pmda.h>

#include "pcplib.h"
#include "spawnenv.h"

#define LIBPCP_SONAME		"libpcp.so.3"
#define LIBPCP_PMDA_SONAME	"libpcp_pmda.so.3"

enum { L_PCP, L_PMDA, L_COUNT };

static struct {
	pthread_once_t	 once;
	void		*handle[L_COUNT];
	atomic_int	 ok;
	atomic_int	 tried;		/* set when load_once has ended */
	char		 err[256];
} lib = { .once = PTHREAD_ONCE_INIT };

/*
 * X(library, return type, name, (parameters), (arguments), value when
 * libpcp cannot be loaded); V(...) for functions returning void.
 */
#define PCP_FORWARD(X, V)						\
	X(L_PCP, int, pmNewContext, (int a, const char *b), (a, b),	\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmReconnectContext, (int a), (a), PM_ERR_NYI)	\
	X(L_PCP, int, pmUseContext, (int a), (a), PM_ERR_NYI)		\
	X(L_PCP, int, pmDestroyContext, (int a), (a), PM_ERR_NYI)	\
	X(L_PCP, int, pmFetch, (int a, pmID *b, pmResult **c), (a, b, c),\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmExtractValue, (int a, const pmValue *b, int c,	\
	    pmAtomValue *d, int e), (a, b, c, d, e), PM_ERR_NYI)	\
	X(L_PCP, int, pmGetChildrenStatus, (const char *a, char ***b,	\
	    int **c), (a, b, c), PM_ERR_NYI)				\
	X(L_PCP, int, pmGetClusterLabels, (pmID a, pmLabelSet **b),	\
	    (a, b), PM_ERR_NYI)						\
	X(L_PCP, int, pmGetContextLabels, (pmLabelSet **a), (a),	\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmGetDomainLabels, (int a, pmLabelSet **b), (a, b),\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmGetInDom, (pmInDom a, int **b, char ***c),	\
	    (a, b, c), PM_ERR_NYI)					\
	X(L_PCP, int, pmGetInDomLabels, (pmInDom a, pmLabelSet **b),	\
	    (a, b), PM_ERR_NYI)						\
	X(L_PCP, int, pmGetItemLabels, (pmID a, pmLabelSet **b), (a, b),\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmGetInstancesLabels, (pmInDom a, pmLabelSet **b),\
	    (a, b), PM_ERR_NYI)						\
	X(L_PCP, int, pmLookupDesc, (pmID a, pmDesc *b), (a, b),	\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmLookupInDomText, (pmInDom a, int b, char **c),	\
	    (a, b, c), PM_ERR_NYI)					\
	X(L_PCP, int, pmLookupName, (int a, const char **b, pmID *c),	\
	    (a, b, c), PM_ERR_NYI)					\
	X(L_PCP, int, pmLookupText, (pmID a, int b, char **c), (a, b, c),\
	    PM_ERR_NYI)							\
	X(L_PCP, int, pmMergeLabelSets, (pmLabelSet **a, int b, char *c,\
	    int d, int (*e)(const pmLabel *, const char *, void *),	\
	    void *f), (a, b, c, d, e, f), PM_ERR_NYI)			\
	X(L_PCP, int, pmNameID, (pmID a, char **b), (a, b), PM_ERR_NYI)	\
	X(L_PCP, int, pmNameAll, (pmID a, char ***b), (a, b), PM_ERR_NYI)\
	X(L_PCP, int, pmStore, (const pmResult *a), (a), PM_ERR_NYI)	\
	X(L_PCP, int, pmTraversePMNS_r, (const char *a,			\
	    void (*b)(const char *, void *), void *c), (a, b, c),	\
	    PM_ERR_NYI)							\
	X(L_PCP, int, __pmSetVersionIPC, (int a, int b), (a, b),	\
	    PM_ERR_NYI)							\
	X(L_PMDA, int, __pmdaMainPDU, (pmdaInterface *a), (a),		\
	    PM_ERR_NYI)							\
	V(L_PCP, pmFreeResult, (pmResult *a), (a))			\
	V(L_PCP, pmFreeLabelSets, (pmLabelSet *a, int b), (a, b))	\
	V(L_PCP, pmSetProgname, (const char *a), (a))			\
	V(L_PMDA, pmdaDaemon, (pmdaInterface *a, int b, const char *c,	\
	    int d, const char *e, const char *f), (a, b, c, d, e, f))	\
	V(L_PMDA, pmdaInit, (pmdaInterface *a, pmdaIndom *b, int c,	\
	    pmdaMetric *d, int e), (a, b, c, d, e))			\
	V(L_PMDA, pmdaSetCommFlags, (pmdaInterface *a, int b), (a, b))	\
	V(L_PMDA, pmdaSetEndContextCallBack, (pmdaInterface *a,		\
	    pmdaEndContextCallBack b), (a, b))

/* the real functions, set once by load_once() */
#define DECL_X(l, t, n, params, args, fail)	static t (*p_##n) params;
#define DECL_V(l, n, params, args)		static void (*p_##n) params;
PCP_FORWARD(DECL_X, DECL_V)
static int (*p_pmdaAddLabels)(pmLabelSet **, const char *, ...);
static char *(*p_pmErrStr_r)(int, char *, int);
static char *(*p_pmGetOptionalConfig)(const char *);

struct sym {
	int		 s_lib;
	const char	*s_name;
	void		*s_slot;	/* the address of a p_* pointer */
};

#define SYM_X(l, t, n, params, args, fail)	{ l, #n, &p_##n },
#define SYM_V(l, n, params, args)		{ l, #n, &p_##n },
static const struct sym syms[] = {
	PCP_FORWARD(SYM_X, SYM_V)
	{ L_PMDA, "pmdaAddLabels", &p_pmdaAddLabels },
	{ L_PCP, "pmErrStr_r", &p_pmErrStr_r },
	{ L_PCP, "pmGetOptionalConfig", &p_pmGetOptionalConfig },
};

static const char *
lib_path(int which)
{
	const char	*env = spawnenv_get(which == L_PCP ? "BPFTRACED_LIBPCP" :
			    "BPFTRACED_LIBPCP_PMDA");

	if (env != NULL && *env != '\0')
		return env;
	return which == L_PCP ? LIBPCP_SONAME : LIBPCP_PMDA_SONAME;
}

static int
resolve(void)
{
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void	*f = dlsym(lib.handle[syms[i].s_lib], syms[i].s_name);

		if (f == NULL) {
			snprintf(lib.err, sizeof(lib.err), "%s: no %s",
			    lib_path(syms[i].s_lib), syms[i].s_name);
			return -1;
		}
		/* POSIX: a function's address round-trips through void * */
		memcpy(syms[i].s_slot, &f, sizeof(f));
	}
	return 0;
}

static void
load_attempt(void)
{
	for (int i = 0; i < L_COUNT; i++) {
		/* libpcp first and global: libpcp_pmda calls into it */
		lib.handle[i] = dlopen(lib_path(i), RTLD_NOW |
		    (i == L_PCP ? RTLD_GLOBAL : RTLD_LOCAL));
		if (lib.handle[i] == NULL) {
			const char	*e = dlerror(), *path = lib_path(i);
			size_t		 n = strlen(path);

			/* dlerror() says "PATH: why": keep the why */
			if (e != NULL && strncmp(e, path, n) == 0 &&
			    strncmp(e + n, ": ", 2) == 0)
				e += n + 2;
			snprintf(lib.err, sizeof(lib.err), "cannot load %s: %s",
			    path, e ? e : "?");
			return;
		}
	}
	if (resolve() == 0)
		atomic_store(&lib.ok, 1);
}

static void
load_once(void)
{
	load_attempt();
	atomic_store(&lib.tried, 1);
}

int
pcplib_load(char *err, size_t errlen)
{
	pthread_once(&lib.once, load_once);
	if (atomic_load(&lib.ok))
		return 0;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", lib.err);
	return -1;
}

const char *
pcplib_error(void)
{
	/* written inside the once-routine only; "" until then */
	return atomic_load(&lib.tried) ? lib.err : "";
}

int
pcplib_loaded(void)
{
	return atomic_load(&lib.ok);
}

/* 0 when the forwarders may call through */
static int
pcplib_need(void)
{
	return pcplib_load(NULL, 0);
}

/* ---- forwarders ---- */

#define FWD_X(l, t, n, params, args, fail)				\
t n params								\
{									\
	if (pcplib_need() != 0)						\
		return fail;						\
	return p_##n args;						\
}
#define FWD_V(l, n, params, args)					\
void n params								\
{									\
	if (pcplib_need() == 0)						\
		p_##n args;						\
}
PCP_FORWARD(FWD_X, FWD_V)

int
pmdaAddLabels(pmLabelSet **lp, const char *fmt, ...)
{
	va_list	 ap;
	char	*text = NULL;
	int	 n, rc;

	if (pcplib_need() != 0)
		return PM_ERR_NYI;
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	rc = p_pmdaAddLabels(lp, "%s", text);
	free(text);
	return rc;
}

/* ---- for pcpcompat.c: libpcp's own, when it is loaded ---- */

char *
pcplib_errstr_r(int code, char *buf, int buflen)
{
	return pcplib_loaded() ? p_pmErrStr_r(code, buf, buflen) : NULL;
}

char *
pcplib_config(const char *name)
{
	return pcplib_loaded() ? p_pmGetOptionalConfig(name) : NULL;
}
