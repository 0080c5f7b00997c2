/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pmns.c - libFuzzer harness for the metric namespace (src/
 * registry.c): reg_add() of fuzzed names in batches, reg_remove_source(),
 * and the lookups the API answers names= and prefix= with
 * (ns_metric_by_name, ns_prefix_range, ns_is_nonleaf), each checked
 * against a linear scan of the generation. The input is lines:
 *
 *	"+" NAME [" " NAME ...]	one reg_add() batch (its own source)
 *	"-" DIGIT		reg_remove_source() of batch DIGIT
 *	anything else		a name to look up (the whole line)
 *
 * After every change the generation must hold what registry.c promises:
 * names sorted and unique, PMIDs sorted, and no name both a leaf and a
 * subtree ("a.b" and "a.b.c").
 */
#include "fuzzhelp.h"
#include "bt_limits.h"
#include "log.h"
#include "registry.h"

#define MAX_BATCHES	16
#define MAX_BATCH	32

static void
check_ns(const struct ns *ns)
{
	for (size_t i = 0; i < ns->ns_nmetrics; i++) {
		const char	*a = ns->ns_by_name[i]->m_name;
		size_t		 alen = strlen(a);

		if (i > 0)
			FZ_CHECK(strcmp(ns->ns_by_name[i - 1]->m_name, a) < 0,
			    "names not sorted at %zu", i);
		if (i > 0)
			FZ_CHECK(ns->ns_by_pmid[i - 1]->m_pmid <
			    ns->ns_by_pmid[i]->m_pmid, "PMIDs not sorted");
		for (size_t j = 0; j < ns->ns_nmetrics; j++) {
			const char	*b = ns->ns_by_name[j]->m_name;

			FZ_CHECK(!(strncmp(a, b, alen) == 0 && b[alen] == '.'),
			    "\"%s\" is a leaf and a subtree (\"%s\")", a, b);
		}
	}
}

static void
check_lookup(const struct ns *ns, const char *q)
{
	size_t	 qlen = strlen(q), lo = 0, n, want = 0, first = SIZE_MAX;
	struct metric	*m = NULL;

	for (size_t i = 0; i < ns->ns_nmetrics; i++) {
		const char	*name = ns->ns_by_name[i]->m_name;

		if (strcmp(name, q) == 0)
			m = ns->ns_by_name[i];
		if (qlen == 0 || (strncmp(name, q, qlen) == 0 &&
		    name[qlen] == '.')) {
			if (first == SIZE_MAX)
				first = i;
			want++;
		}
	}
	FZ_CHECK(ns_metric_by_name(ns, q) == m, "lookup of \"%s\"", q);
	n = ns_prefix_range(ns, q, &lo);
	FZ_CHECK(n == want, "prefix \"%s\": %zu metrics, a scan finds %zu", q,
	    n, want);
	if (n > 0) {
		FZ_CHECK(lo == first, "prefix \"%s\" starts at %zu, not %zu",
		    q, lo, first);
		FZ_CHECK(lo + n <= ns->ns_nmetrics, "range past the end");
	}
	FZ_CHECK(ns_is_nonleaf(ns, q) == (want > 0), "nonleaf \"%s\"", q);
	if (m != NULL)
		FZ_CHECK(ns_metric_by_pmid(ns, m->m_pmid) == m, "by PMID");
}

FZ_INITIALIZE_QUIET_LOG()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry	*r = reg_new();
	struct source	*srcs[MAX_BATCHES] = { 0 };
	struct ns	*ns;
	char		*text = fz_strndup(data, size), *line, *next;
	int		 nb = 0;

	if (r == NULL)
		abort();
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line[0] == '+' && nb < MAX_BATCHES) {
			struct metric	*ms[MAX_BATCH];
			struct indom	*in;
			char		 sname[16], err[256], *tok, *save;
			size_t		 n = 0;

			snprintf(sname, sizeof(sname), "b%d", nb);
			srcs[nb] = source_new(sname, NULL, NULL);
			in = indom_new(pmInDom_build(BT_DOMAIN, 100 + nb), "x",
			    NULL, srcs[nb], 0);
			for (tok = strtok_r(line + 1, " ", &save);
			    tok && n < MAX_BATCH;
			    tok = strtok_r(NULL, " ", &save)) {
				ms[n] = metric_new(tok, pmID_build(BT_DOMAIN,
				    100 + nb, n), n % 2 ? in->i_id :
				    PM_INDOM_NULL, PM_TYPE_U64, PM_SEM_COUNTER,
				    BT_UNITS(0, 0, 0, 0, 0, 0), "x", NULL,
				    NULL, srcs[nb], (int)n);
				if (ms[n] == NULL)
					abort();
				n++;
			}
			(void)reg_add(r, ms, n, &in, 1, err, sizeof(err));
			for (size_t i = 0; i < n; i++)
				metric_unref(ms[i]);
			indom_unref(in);
			nb++;
		} else if (line[0] == '-' && line[1] >= '0' && line[1] <= '9') {
			int	 b = line[1] - '0';

			if (b < nb)
				(void)reg_remove_source(r, srcs[b]);
		} else {
			ns = reg_acquire(r);
			check_lookup(ns, line);
			ns_release(ns);
			continue;
		}
		ns = reg_acquire(r);
		check_ns(ns);
		ns_release(ns);
	}
	reg_free(r);
	for (int i = 0; i < nb; i++)
		source_unref(srcs[i]);
	free(text);
	return 0;
}
