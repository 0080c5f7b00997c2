/* SPDX-License-Identifier: MIT */
/*
 * test_registry.c - namespace generations (lookups, prefixes, atomic adds
 * and removals) and value snapshots (publish, immutability, lifetimes).
 */
#include "testhelp.h"
#include <pthread.h>

#include "bt_limits.h"
#include "registry.h"

#define NOUNITS	BT_UNITS(0, 0, 0, 0, 0, 0)

static struct metric *
mk(const char *name, int item, struct source *src, int slot)
{
	struct metric	*m = metric_new(name, pmID_build(BT_DOMAIN, 9, item),
			    PM_INDOM_NULL, PM_TYPE_U64, PM_SEM_COUNTER,
			    NOUNITS, "one", NULL, NULL, src, slot);

	assert_non_null(m);
	return m;
}

static int
add1(struct registry *r, struct metric *m)
{
	char	 err[128];
	int	 rv = reg_add(r, &m, 1, NULL, 0, err, sizeof(err));

	metric_unref(m);
	return rv;
}

static void
registry_lookup_by_name_and_pmid(void **state)
{
	struct registry	*r = reg_new();
	struct ns	*ns;
	struct metric	*m;

	assert_int_equal(add1(r, mk("a.b.c", 1, NULL, 0)), 0);
	assert_int_equal(add1(r, mk("a.b.d", 2, NULL, 1)), 0);
	assert_int_equal(add1(r, mk("a.x", 3, NULL, 2)), 0);
	ns = reg_acquire(r);
	m = ns_metric_by_name(ns, "a.b.d");
	assert_non_null(m);
	assert_int_equal(m->m_pmid, pmID_build(BT_DOMAIN, 9, 2));
	assert_ptr_equal(ns_metric_by_pmid(ns, pmID_build(BT_DOMAIN, 9, 3)),
	    ns_metric_by_name(ns, "a.x"));
	assert_null(ns_metric_by_name(ns, "a.b"));
	assert_null(ns_metric_by_pmid(ns, pmID_build(BT_DOMAIN, 9, 4)));
	assert_string_equal(m->m_help, "one");	/* help falls back */
	ns_release(ns);
	reg_free(r);
}

/* an open type follows the data until a descriptor is handed out */
static void
metric_type_open_until_described(void **state)
{
	struct registry	*r = reg_new();
	struct metric	*m = mk("a.v", 1, NULL, 0), *f = mk("a.f", 2, NULL, 1);
	struct ns	*ns;
	int		 type;

	atomic_init(&m->m_tword, (uint32_t)PM_TYPE_64);
	metric_type_open(m);
	assert_int_equal(metric_type(m), PM_TYPE_64);
	assert_int_equal(add1(r, m), 0);
	assert_int_equal(add1(r, f), 0);
	/* not final: still open, whatever the data proposes */
	assert_int_equal(reg_type_propose(r, pmID_build(BT_DOMAIN, 9, 1),
	    PM_TYPE_64, 0, &type), 1);
	assert_int_equal(reg_type_propose(r, pmID_build(BT_DOMAIN, 9, 1),
	    PM_TYPE_STRING, 0, &type), 1);
	assert_int_equal(type, PM_TYPE_STRING);
	ns = reg_acquire(r);
	m = ns_metric_by_pmid(ns, pmID_build(BT_DOMAIN, 9, 1));
	assert_int_equal(metric_type(m), PM_TYPE_STRING);
	/* described: fixed; later proposals get the described type */
	assert_int_equal(metric_describe(m), PM_TYPE_STRING);
	assert_int_equal(metric_type_propose(m, PM_TYPE_U64, 1, &type), 0);
	assert_int_equal(type, PM_TYPE_STRING);
	assert_int_equal(metric_type(m), PM_TYPE_STRING);
	/* a metric never opened: proposals change nothing */
	f = ns_metric_by_pmid(ns, pmID_build(BT_DOMAIN, 9, 2));
	assert_int_equal(metric_type_propose(f, PM_TYPE_STRING, 0, &type), 0);
	assert_int_equal(type, PM_TYPE_U64);
	assert_int_equal(metric_describe(f), PM_TYPE_U64);
	ns_release(ns);
	/* not registered (removed): the proposal is taken */
	assert_int_equal(reg_type_propose(r, pmID_build(BT_DOMAIN, 9, 7),
	    PM_TYPE_U64, 1, &type), 0);
	assert_int_equal(type, PM_TYPE_U64);
	reg_free(r);
}

struct race {
	struct metric	*m;
	int		 described;
};

static void *
race_describe(void *arg)
{
	struct race	*rc = arg;

	rc->described = metric_describe(rc->m);
	return NULL;
}

/* a descriptor and the data race: the type described is the one kept */
static void
metric_type_describe_race(void **state)
{
	for (int round = 0; round < 200; round++) {
		struct metric	*m = mk("a.v", 1, NULL, 0);
		struct race	 rc = { m, -1 };
		pthread_t	 t;
		int		 type, open = 1;

		metric_type_open(m);
		assert_int_equal(pthread_create(&t, NULL, race_describe, &rc),
		    0);
		for (int i = 0; open && i < 10000; i++)
			open = metric_type_propose(m, i % 2 ? PM_TYPE_64 :
			    PM_TYPE_STRING, 0, &type);
		pthread_join(t, NULL);
		assert_int_equal(rc.described, metric_type(m));
		assert_int_equal(metric_type_propose(m, PM_TYPE_DOUBLE, 1,
		    &type), 0);
		assert_int_equal(type, rc.described);
		metric_unref(m);
	}
}

/*
 * Found by tests/fuzz/fuzz_pmns (input: tests/fuzz/regressions/pmns/
 * leaf-and-subtree-in-one-batch): reg_add() checked new names against
 * the namespace but not against each other, so one batch could make
 * "x" both a leaf and the subtree of "x.y". The whole batch is refused.
 */
static void
registry_batch_leaf_and_subtree_refused(void **state)
{
	struct registry	*r = reg_new();
	struct metric	*ms[3];
	struct ns	*ns;
	char		 err[128];

	ms[0] = mk("x.y", 1, NULL, 0);
	ms[1] = mk("q", 2, NULL, 1);
	ms[2] = mk("x", 3, NULL, 2);
	assert_int_equal(reg_add(r, ms, 3, NULL, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "clashes"));
	ns = reg_acquire(r);
	assert_int_equal(ns->ns_nmetrics, 0);
	ns_release(ns);
	metric_unref(ms[2]);
	ms[2] = mk("x.y.z", 3, NULL, 2);	/* under the leaf x.y */
	assert_int_equal(reg_add(r, ms, 3, NULL, 0, err, sizeof(err)), -1);
	assert_int_equal(reg_add(r, ms, 2, NULL, 0, err, sizeof(err)), 0);
	ns = reg_acquire(r);
	assert_int_equal(ns->ns_nmetrics, 2);
	assert_true(ns_is_nonleaf(ns, "x"));
	assert_null(ns_metric_by_name(ns, "x"));
	ns_release(ns);
	for (int i = 0; i < 3; i++)
		metric_unref(ms[i]);
	reg_free(r);
}

static void
registry_prefix_ranges_are_subtrees(void **state)
{
	struct registry	*r = reg_new();
	struct ns	*ns;
	size_t		 lo, n;

	add1(r, mk("a.b.c", 1, NULL, 0));
	add1(r, mk("a.b-x.d", 2, NULL, 0));
	add1(r, mk("a.b.e", 3, NULL, 0));
	add1(r, mk("a.b0", 4, NULL, 0));
	add1(r, mk("z", 5, NULL, 0));
	ns = reg_acquire(r);
	n = ns_prefix_range(ns, "a.b", &lo);
	assert_int_equal(n, 2);
	assert_string_equal(ns->ns_by_name[lo]->m_name, "a.b.c");
	assert_string_equal(ns->ns_by_name[lo + 1]->m_name, "a.b.e");
	assert_int_equal(ns_prefix_range(ns, "a", &lo), 4);
	assert_int_equal(ns_prefix_range(ns, "", &lo), 5);
	assert_int_equal(ns_prefix_range(ns, "a.b.c", &lo), 0);
	assert_true(ns_is_nonleaf(ns, "a.b"));
	assert_false(ns_is_nonleaf(ns, "z"));
	ns_release(ns);
	reg_free(r);
}

static void
registry_rejects_duplicates_without_change(void **state)
{
	struct registry	*r = reg_new();
	struct metric	*ms[2];
	struct ns	*ns;
	char		 err[128];
	unsigned long	 gen;

	assert_int_equal(add1(r, mk("a.b", 1, NULL, 0)), 0);
	gen = reg_generation(r);
	assert_int_equal(add1(r, mk("a.b", 2, NULL, 0)), -1);	/* name */
	assert_int_equal(add1(r, mk("a.c", 1, NULL, 0)), -1);	/* pmid */
	assert_int_equal(add1(r, mk("a.b.c", 3, NULL, 0)), -1); /* leaf */
	assert_int_equal(add1(r, mk("a", 4, NULL, 0)), -1);	/* subtree */
	ms[0] = mk("q.one", 10, NULL, 0);	/* batch with an inner dup */
	ms[1] = mk("q.one", 11, NULL, 0);
	assert_int_equal(reg_add(r, ms, 2, NULL, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "duplicate"));
	metric_unref(ms[0]);
	metric_unref(ms[1]);
	assert_int_equal(reg_generation(r), gen);
	ns = reg_acquire(r);
	assert_int_equal(ns->ns_nmetrics, 1);
	assert_null(ns_metric_by_name(ns, "q.one"));
	ns_release(ns);
	reg_free(r);
}

static void
registry_old_generation_survives_removal(void **state)
{
	struct registry	*r = reg_new();
	struct source	*s1 = source_new("s1", NULL, NULL);
	struct source	*s2 = source_new("s2", NULL, NULL);
	struct ns	*old, *cur;

	add1(r, mk("s.one.x", 1, s1, 0));
	add1(r, mk("s.one.y", 2, s1, 1));
	add1(r, mk("s.two.x", 3, s2, 0));
	old = reg_acquire(r);
	assert_int_equal(reg_remove_source(r, s1), 0);
	cur = reg_acquire(r);
	assert_int_equal(cur->ns_nmetrics, 1);
	assert_null(ns_metric_by_name(cur, "s.one.x"));
	/* a reader holding the old generation still sees everything */
	assert_non_null(ns_metric_by_name(old, "s.one.y"));
	assert_ptr_equal(ns_metric_by_name(old, "s.one.y")->m_src, s1);
	ns_release(old);
	ns_release(cur);
	source_unref(s1);	/* freed only now: no metric refers to it */
	source_unref(s2);
	reg_free(r);
}

static void
snapshot_publish_replaces_atomically(void **state)
{
	struct source	*src = source_new("t", NULL, NULL);
	struct snap	*s, *held;
	uint32_t	 ids[3] = { 7, 8, 9 };
	const char	*names[3] = { "seven", "eight", "nine" };
	union value	 vals[3] = { { .u = 1 }, { .u = 2 }, { .u = 3 } };

	assert_null(source_snap(src));
	s = snap_new(2, 1);
	assert_int_equal(s->s_sets[0].vs_err, PM_ERR_VALUE);
	assert_int_equal(snap_set_values(s, 0, 3, ids, vals), 0);
	assert_int_equal(snap_set_str1(s, 1, "text"), 0);
	assert_int_equal(snap_set_indom(s, 0, 3, ids, names), 0);
	assert_int_equal(snap_set1(s, 2, vals[0]), -1);	/* bad slot */
	vals[0].u = 99;		/* the snapshot holds its own copy */
	source_publish(src, s);
	held = source_snap(src);
	assert_ptr_equal(held, s);
	assert_int_equal(held->s_sets[0].vs_vals[0].u, 1);
	assert_int_equal(held->s_sets[0].vs_inst[2], 9);
	assert_string_equal(held->s_sets[1].vs_vals[0].s, "text");
	assert_string_equal(held->s_indoms[0].il_names[1], "eight");
	/* a new publish does not disturb the held snapshot */
	source_publish(src, snap_new(2, 1));
	assert_int_equal(held->s_sets[0].vs_n, 3);
	assert_ptr_not_equal(source_snap(src), held);
	snap_release(held);
	snap_release(src->src_cur);	/* the ref source_snap gave us */
	source_unref(src);
}

static void
snapshots_share_a_block_until_the_last_is_released(void **state)
{
	struct source	*src = source_new("t", NULL, NULL);
	struct shblk	*b = shblk_new(4 * sizeof(uint32_t) +
			    3 * sizeof(union value));	/* ids, pad, values */
	uint32_t	*ids = shblk_data(b);
	union value	*vals = (union value *)(ids + 4);
	const char	*names[3] = { "a", "b", "c" };
	struct snap	*s1, *s2, *held;

	ids[0] = 1;
	ids[1] = 2;
	ids[2] = 3;
	vals[0].u = 10;
	vals[1].u = 20;
	vals[2].u = 30;
	/* two generations point into the same block */
	s1 = snap_new(1, 1);
	assert_int_equal(snap_hold(s1, b), 0);
	assert_int_equal(snap_set_values_nocopy(s1, 0, 3, ids, vals), 0);
	assert_int_equal(snap_set_indom_nocopy(s1, 0, 3, ids, names), 0);
	assert_int_equal(snap_set_values_nocopy(s1, 1, 3, ids, vals), -1);
	assert_int_equal(snap_set_indom_nocopy(s1, 1, 3, ids, names), -1);
	source_publish(src, s1);
	held = source_snap(src);
	s2 = snap_new(1, 1);
	assert_int_equal(snap_hold(s2, b), 0);
	assert_int_equal(snap_set_values_nocopy(s2, 0, 2, ids, vals), 0);
	shblk_unref(b);		/* the snapshots keep it */
	source_publish(src, s2);
	assert_int_equal(held->s_sets[0].vs_n, 3);
	assert_int_equal(held->s_sets[0].vs_vals[2].u, 30);
	assert_int_equal(held->s_indoms[0].il_ids[1], 2);
	snap_release(held);	/* s1 gone: s2 still reads the block */
	held = source_snap(src);
	assert_int_equal(held->s_sets[0].vs_n, 2);
	assert_int_equal(held->s_sets[0].vs_inst[1], 2);
	snap_release(held);
	source_unref(src);	/* frees s2, then the block (ASan checks) */
	shblk_unref(NULL);
}

static void
snapshot_large_values_use_arena(void **state)
{
	struct snap	*s = snap_new(1, 1);
	uint32_t	*ids = malloc(100000 * sizeof(*ids));
	union value	*vals = malloc(100000 * sizeof(*vals));

	for (int i = 0; i < 100000; i++) {
		ids[i] = (uint32_t)i;
		vals[i].i = -i;
	}
	assert_int_equal(snap_set_values(s, 0, 100000, ids, vals), 0);
	assert_int_equal(s->s_sets[0].vs_vals[99999].i, -99999);
	free(ids);
	free(vals);
	snap_release(s);
}

static void
type_sem_units_text_matches_pmproxy(void **state)
{
	char	 u[64];
	pmUnits	 kb = BT_UNITS(1, 0, 0, PM_SPACE_KBYTE, 0, 0);
	pmUnits	 none = NOUNITS;
	pmUnits	 rate = BT_UNITS(0, -1, 0, 0, PM_TIME_USEC, 0);

	assert_string_equal(bt_type_str(PM_TYPE_U32), "u32");
	assert_string_equal(bt_type_str(PM_TYPE_64), "64");
	assert_string_equal(bt_type_str(PM_TYPE_STRING), "string");
	assert_string_equal(bt_sem_str(PM_SEM_DISCRETE), "discrete");
	bt_units_str(&kb, u, sizeof(u));
	assert_string_equal(u, "Kbyte");
	bt_units_str(&none, u, sizeof(u));
	assert_string_equal(u, "none");
	bt_units_str(&rate, u, sizeof(u));
	assert_string_equal(u, "/ microsec");
}

/* the per-snapshot fetch cache: write-once, the first writer wins */
static void
snapshot_fragment_is_set_once(void **state)
{
	struct snap		*s = snap_new(2, 0);
	struct snapfrag		*a = calloc(1, sizeof(*a));
	struct snapfrag		*b = calloc(1, sizeof(*b));
	struct snapfrag		*c = calloc(1, sizeof(*c));
	const struct snapfrag	*got;

	a->sf_data = strdup("[1]");
	a->sf_len = 3;
	b->sf_data = strdup("[2]");
	c->sf_data = strdup("[3]");
	assert_null(snap_frag(s, 1, 0));
	assert_ptr_equal(snap_frag_set(s, 1, 0, a), a);
	assert_ptr_equal(snap_frag(s, 1, 0), a);
	assert_null(snap_frag(s, 1, 1));	/* variants are apart */
	assert_null(snap_frag(s, 0, 0));
	got = snap_frag_set(s, 1, 0, b);	/* a second writer: b freed */
	assert_ptr_equal(got, a);
	assert_string_equal(got->sf_data, "[1]");
	assert_null(snap_frag_set(s, 2, 0, c));	/* bad slot: c freed */
	assert_null(snap_frag(s, 2, 0));
	assert_null(snap_frag(s, 0, SNAP_FRAG_VARIANTS));
	snap_release(s);			/* frees a */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(registry_lookup_by_name_and_pmid),
		cmocka_unit_test(metric_type_open_until_described),
		cmocka_unit_test(metric_type_describe_race),
		cmocka_unit_test(registry_prefix_ranges_are_subtrees),
		cmocka_unit_test(registry_batch_leaf_and_subtree_refused),
		cmocka_unit_test(registry_rejects_duplicates_without_change),
		cmocka_unit_test(registry_old_generation_survives_removal),
		cmocka_unit_test(snapshot_publish_replaces_atomically),
		cmocka_unit_test(snapshot_large_values_use_arena),
		cmocka_unit_test(snapshots_share_a_block_until_the_last_is_released),
		cmocka_unit_test(snapshot_fragment_is_set_once),
		cmocka_unit_test(type_sem_units_text_matches_pmproxy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
