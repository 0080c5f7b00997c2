/* SPDX-License-Identifier: MIT */
/*
 * test_scrape_order.c - pmproxy's /metrics label order (src/api/scrape_order.c).
 *
 * 1. The orders the live pmproxy 6.0.3 wrote for the sample PMDA (PCP QA
 *    1543.50-54, recorded in tests/conformance/qa/pmproxy-6.0.3-qa.json).
 * 2. When libpcp_web.so.1 is installed: its own dictionary (dictCreate
 *    with sdsOwnDictCallBacks, dictFind + dictAdd per label as pmproxy's
 *    open_metrics_labels does, then dictScan) over key sequences of 1 to
 *    60 names, repeats included, so that growth and incremental rehashing
 *    in the middle of a sequence are covered; and its dictGenHashFunction
 *    against scrape_siphash12. Skipped without the library.
 */
#include "testhelp.h"

#include <dlfcn.h>
#include <stdio.h>

#include "scrape.h"

static void
want_order(const char *const *in, size_t n, const char *const *want,
    size_t nw)
{
	struct scrape_lkey	 k[16];
	size_t			 order[16];
	int			 got;

	for (size_t i = 0; i < n; i++) {
		k[i].name = in[i];
		k[i].len = strlen(in[i]);
	}
	got = scrape_label_order(k, n, order);
	assert_int_equal(got, (int)nw);
	for (size_t i = 0; i < nw; i++)
		assert_string_equal(in[order[i]], want[i]);
}

/* sample.long.one, sample.long.write_me, sample.colour, sample.bin */
static void
test_pmproxy_orders(void **state)
{
	static const char *ctx[] = { "domainname", "hostname", "machineid" };
	static const char *w1[] = { "hostname", "machineid", "domainname" };
	static const char *note[] = { "domainname", "hostname", "machineid",
	    "changed" };
	static const char *w2[] = { "hostname", "machineid", "domainname",
	    "changed" };
	static const char *colour[] = { "domainname", "hostname", "machineid",
	    "model", "instname", "instid" };
	static const char *w3[] = { "model", "hostname", "instid", "instname",
	    "domainname", "machineid" };
	static const char *bin[] = { "domainname", "hostname", "machineid",
	    "bin", "instname", "instid" };
	static const char *w4[] = { "hostname", "instid", "instname",
	    "domainname", "machineid", "bin" };
	/* a name again (a later level's label) keeps its one place */
	static const char *dup[] = { "domainname", "hostname", "machineid",
	    "hostname" };
	struct scrape_lkey	 none;
	size_t			 order[1];

	(void)state;
	want_order(ctx, 3, w1, 3);
	want_order(note, 4, w2, 4);
	want_order(colour, 6, w3, 6);
	want_order(bin, 6, w4, 6);
	want_order(dup, 4, w1, 3);
	memset(&none, 0, sizeof(none));
	assert_int_equal(scrape_label_order(&none, 0, order), 0);
}

/* ---- against libpcp_web's own dictionary ---- */

typedef void	*(*dict_create_fn)(void *, void *);
typedef int	 (*dict_add_fn)(void *, void *, void *);
typedef void	*(*dict_find_fn)(void *, const void *);
typedef void	 (*dict_release_fn)(void *);
typedef unsigned long (*dict_scan_fn)(void *, unsigned long,
		    void (*)(void *, const void *), void *, void *);
typedef char	*(*sds_newlen_fn)(const void *, size_t);
typedef void	 (*sds_free_fn)(char *);
typedef uint64_t (*gen_hash_fn)(const void *, int);

struct web {
	void		*dl;
	void		*type;
	dict_create_fn	 create;
	dict_add_fn	 add;
	dict_find_fn	 find;
	dict_release_fn	 release;
	dict_scan_fn	 scan;
	sds_newlen_fn	 newlen;
	sds_free_fn	 sdsfree;
	gen_hash_fn	 hash;
};

struct scanned {
	char	 keys[64][16];
	int	 n;
};

/* a dictEntry starts with its key pointer */
static void
collect(void *arg, const void *entry)
{
	struct scanned	*s = arg;
	const char	*key = *(char *const *)entry;

	if (s->n < 64)
		snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
}

static int
web_open(struct web *w)
{
	memset(w, 0, sizeof(*w));
	if ((w->dl = dlopen("libpcp_web.so.1", RTLD_NOW | RTLD_LOCAL)) ==
	    NULL)
		return -1;
	w->type = dlsym(w->dl, "sdsOwnDictCallBacks");
	*(void **)&w->create = dlsym(w->dl, "dictCreate");
	*(void **)&w->add = dlsym(w->dl, "dictAdd");
	*(void **)&w->find = dlsym(w->dl, "dictFind");
	*(void **)&w->release = dlsym(w->dl, "dictRelease");
	*(void **)&w->scan = dlsym(w->dl, "dictScan");
	*(void **)&w->newlen = dlsym(w->dl, "sdsnewlen");
	*(void **)&w->sdsfree = dlsym(w->dl, "sdsfree");
	*(void **)&w->hash = dlsym(w->dl, "dictGenHashFunction");
	if (!w->type || !w->create || !w->add || !w->find || !w->release ||
	    !w->scan || !w->newlen || !w->sdsfree || !w->hash) {
		dlclose(w->dl);
		return -1;
	}
	return 0;
}

/* the n names of sequence seed: repeats among them when seed is odd */
static void
make_keys(unsigned seed, size_t n, char names[][16],
    struct scrape_lkey *k)
{
	for (size_t i = 0; i < n; i++) {
		unsigned	 v = seed * 2654435761u + (unsigned)i * 40503u;

		if ((seed & 1) && i > 2 && i % 5 == 0)
			v = seed * 2654435761u + (unsigned)(i / 2) * 40503u;
		snprintf(names[i], 16, "l%x_%zu", v % 997,
		    (seed & 1) && i > 2 && i % 5 == 0 ? i / 2 : i);
		k[i].name = names[i];
		k[i].len = strlen(names[i]);
	}
}

static void
test_against_libpcp_web(void **state)
{
	struct web		 w;
	struct scrape_lkey	 k[60];
	char			 names[60][16];
	size_t			 order[60];
	int			 cases = 0;

	(void)state;
	if (web_open(&w) == -1) {
		skip();
		return;
	}
	for (int i = 0; i < 3; i++) {
		const char	*s[] = { "hostname", "cpu", "a_longer_label_x" };

		assert_true(w.hash(s[i], (int)strlen(s[i])) ==
		    scrape_siphash12(s[i], strlen(s[i])));
	}
	for (unsigned seed = 1; seed <= 40; seed++) {
		for (size_t n = 1; n <= 60; n += 1 + n / 8) {
			struct scanned	 sc;
			void		*d = w.create(w.type, NULL);
			unsigned long	 cur = 0;
			int		 got;

			assert_non_null(d);
			make_keys(seed, n, names, k);
			for (size_t i = 0; i < n; i++) {
				char	*key = w.newlen(k[i].name, k[i].len);

				if (w.find(d, key) == NULL)
					w.add(d, key, w.newlen("v", 1));
				else
					w.sdsfree(key);
			}
			memset(&sc, 0, sizeof(sc));
			do {
				cur = w.scan(d, cur, collect, NULL, &sc);
			} while (cur);
			got = scrape_label_order(k, n, order);
			assert_int_equal(got, sc.n);
			for (int i = 0; i < got; i++)
				assert_string_equal(k[order[i]].name,
				    sc.keys[i]);
			w.release(d);
			cases++;
		}
	}
	assert_true(cases > 100);
	dlclose(w.dl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pmproxy_orders),
		cmocka_unit_test(test_against_libpcp_web),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
