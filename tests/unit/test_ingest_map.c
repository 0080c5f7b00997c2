/* SPDX-License-Identifier: MIT */
/*
 * test_ingest_map.c - the ingester's prints of keyed maps, hist, lhist,
 * avg and stats (ingest_map.c): replaced not merged, joined key names,
 * duplicate keys, bucket names, instance ids kept across restarts and
 * capped, and the reused order of one print to the next. Fed from the
 * bpftrace 0.17 fixtures in $BT_SHARED (skipped when absent) and from
 * hand-made lines.
 */
#include "testhelp.h"
#include "ingest_testhelp.h"

/* --- keyed maps ---------------------------------------------------------- */

static void
keyed_map_replaced_not_merged(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "s", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct tv	 tc[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*a = ingest_var_by_name(ing, "a");

	/* what a synchronous print() would have shown before delete() */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@a\": "
	    "{\"1\": 1, \"2\": 2, \"3\": 3}}}");
	assert_int_equal(a->iv_n, 3);
	feed_fixture(ing, "delete_clear");	/* {"1": 1, "3": 3, "4": 4} */
	assert_int_equal(a->iv_n, 3);
	assert_string_equal(a->iv_names[0], "1");
	assert_string_equal(a->iv_names[1], "3");
	assert_string_equal(a->iv_names[2], "4");
	assert_true(inst_i(ing, "a", "4") == 4);
	assert_false(has_inst(ing, "a", "2"));
	ingest_free(ing);

	ing = ING(tc, -1, NULL);
	feed_fixture_lines(ing, "periodic_print_clear", 1, 2);
	assert_int_equal(inst_u(ing, "c", "bpftrace"), 154);
	feed_fixture_lines(ing, "periodic_print_clear", 3, 3);
	assert_int_equal(inst_u(ing, "c", "bpftrace"), 27);	/* not 181 */
	feed_fixture(ing, "periodic_print_clear");
	assert_int_equal(inst_u(ing, "c", "memfd:sealed-91"), 6);
	assert_int_equal(inst_u(ing, "c", "python3"), 8);
	assert_int_equal(inst_u(ing, "c", "bpftrace"), 25);
	ingest_free(ing);

	/* print_top_div_hist: print(@c, 2) drops pmproxy from the set */
	ing = ING(tc, -1, NULL);
	feed_fixture_lines(ing, "print_top_div_hist", 3, 3);
	assert_int_equal(ingest_var_by_name(ing, "c")->iv_n, 3);
	feed_fixture_lines(ing, "print_top_div_hist", 2, 2);
	assert_int_equal(ingest_var_by_name(ing, "c")->iv_n, 2);
	assert_false(has_inst(ing, "c", "pmproxy"));
	assert_int_equal(inst_u(ing, "c", "memfd:sealed-91"), 33);
	ingest_free(ing);
}

static void
multi_key_joined_names(void **state)
{
	struct tv	 tv[] = { { "m2", BTS_ASSIGN, BTS_V_INT, 2 },
	    { "m3", BTS_ASSIGN, BTS_V_INT, 3 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*m3;

	feed_fixture(ing, "keys_multi_mixed");
	assert_true(inst_i(ing, "m2", "a,b,1") == 10);
	assert_true(inst_i(ing, "m2", "c,-2") == 20);
	m3 = ingest_var_by_name(ing, "m3");
	assert_int_equal(m3->iv_n, 2);
	/* strcmp order */
	assert_string_equal(m3->iv_names[0], "p\"q,0,");
	assert_string_equal(m3->iv_names[1], "x,-1,y");
	assert_true(m3->iv_vals[0].i == 40);
	assert_true(m3->iv_vals[1].i == 30);
	ingest_free(ing);

	ing = ING(tv, -1, NULL);
	feed_fixture(ing, "map_multi_key");
	assert_int_equal(ingest_var_by_name(ing, "m2")->iv_n, 17);
	assert_true(inst_i(ing, "m2", "bpftrace,257") == 1);
	assert_true(inst_i(ing, "m2", "python3,232") == 30);
	assert_true(inst_i(ing, "m2", "memfd:sealed-91,202") == 14);
	assert_true(inst_i(ing, "m3", "bpftrace,14968,1") == 1);
	ingest_free(ing);
}

static void
duplicate_keys_summed(void **state)
{
	struct tv	 tv[] = { { "us", BTS_COUNT, BTS_V_UINT, 2 },
	    { "ks", BTS_COUNT, BTS_V_UINT, 2 },
	    { "x", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "ustack_keys");
	/* "\n    0x7ff6121d8ad7\n,bash": 1 appears twice in one object */
	assert_int_equal(ingest_var_by_name(ing, "us")->iv_n, 4);
	assert_int_equal(inst_u(ing, "us", "\n    0x7ff6121d8ad7\n,bash"), 2);
	assert_int_equal(inst_u(ing, "us", ",swapper/0"), 67);
	assert_int_equal(inst_u(ing, "us", "\n    free+104\n,pmproxy"), 1);
	assert_int_equal(inst_u(ing, "ks", "pv_native_safe_halt,0"), 67);
	/* not a count: the last one wins */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"a\": 1, \"b\": 2, \"a\": 5}}}");
	assert_true(inst_i(ing, "x", "a") == 5);
	assert_int_equal(ingest_var_by_name(ing, "x")->iv_n, 2);
	ingest_free(ing);

	/* sum() is signed and summed too; hist buckets as well */
	{
		struct tv	 ts[] = { { "s", BTS_SUM, BTS_V_INT, 1 },
		    { "h", BTS_HIST, BTS_V_UINT, 1 } };

		ing = ING(ts, -1, NULL);
		feed(ing, "{\"type\": \"map\", \"data\": {\"@s\": "
		    "{\"k\": -3, \"k\": -4}}}");
		assert_true(inst_i(ing, "s", "k") == -7);
		feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": "
		    "{\"k\": [{\"min\": 9223372036854775808, \"count\": 1}, "
		    "{\"min\": 2, \"max\": 3, \"count\": 1}], "
		    "\"k\": [{\"min\": 2, \"max\": 3, \"count\": 4}]}}}");
		assert_int_equal(ingest_var_by_name(ing, "h")->iv_n, 2);
		assert_string_equal(ingest_var_by_name(ing, "h")->iv_names[1],
		    "k:9223372036854775808-inf");
		assert_int_equal(inst_u(ing, "h", "k:2-3"), 5);
		ingest_free(ing);
	}
}

/* --- hist, lhist, avg, stats --------------------------------------------- */

static void
hist_bucket_names_pmda_compatible(void **state)
{
	/* hist_global.stdout, in order, with their counts */
	static const struct {
		const char	*name;
		uint64_t	 count;
	} want[] = { { "-inf--1", 24 }, { "0-0", 285 }, { "1-1", 25 },
	    { "2-3", 2 }, { "4-7", 0 }, { "8-15", 4 }, { "16-31", 0 },
	    { "32-63", 14 }, { "64-127", 13 }, { "128-255", 0 },
	    { "256-511", 0 }, { "512-1023", 4 }, { "1024-2047", 0 },
	    { "2048-4095", 0 }, { "4096-8191", 0 }, { "8192-16383", 13 } };
	struct tv	 tv[] = { { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*h = ingest_var_by_name(ing, "h");
	size_t		 i;

	feed_fixture(ing, "hist_global");
	assert_false(h->iv_scalar);
	assert_int_equal(h->iv_n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < h->iv_n; i++) {
		assert_string_equal(h->iv_names[i], want[i].name);
		assert_int_equal(h->iv_vals[i].t, ING_U64);
		assert_int_equal(h->iv_vals[i].u, want[i].count);
	}
	ingest_free(ing);
}

static void
lhist_open_ends(void **state)
{
	static const char *const names[] = { "0-49", "50-99", "100-149",
	    "150-199", "200-249", "250-299", "300-inf" };
	static const uint64_t counts[] = { 67, 1, 1, 12, 111, 2, 103 };
	struct tv	 tv[] = { { "l", BTS_LHIST, BTS_V_UINT, 0 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*l = ingest_var_by_name(ing, "l");
	struct ing_var	*h = ingest_var_by_name(ing, "h");
	size_t		 i;

	feed_fixture(ing, "lhist");
	assert_int_equal(l->iv_n, 7);
	for (i = 0; i < 7; i++) {
		assert_string_equal(l->iv_names[i], names[i]);
		assert_int_equal(l->iv_vals[i].u, counts[i]);
	}
	/* lhist(5|-1|99, 0, 10, 5) and hist(0|1|1000000|-7) */
	feed_fixture(ing, "hist_empty_and_print");
	assert_int_equal(l->iv_n, 4);
	assert_string_equal(l->iv_names[0], "-inf--1");
	assert_string_equal(l->iv_names[1], "0-4");
	assert_string_equal(l->iv_names[2], "5-9");
	assert_string_equal(l->iv_names[3], "10-inf");
	assert_int_equal(inst_u(ing, "l", "0-4"), 0);
	assert_int_equal(inst_u(ing, "l", "10-inf"), 1);
	assert_string_equal(h->iv_names[0], "-inf--1");
	assert_string_equal(h->iv_names[h->iv_n - 1], "524288-1048575");
	assert_int_equal(inst_u(ing, "h", "524288-1048575"), 1);
	assert_int_equal(inst_u(ing, "h", "0-0"), 1);
	assert_int_equal(inst_u(ing, "h", "1-1"), 1);
	/* 0.24: bounds and counts may come as strings */
	feed(ing, "{\"type\": \"hist\", \"data\": {\"@l\": [{\"min\": "
	    "\"18446744073709551615\", \"count\": \"3\"}, {\"max\": 0, "
	    "\"count\": 1}]}}");
	assert_int_equal(l->iv_n, 2);
	assert_string_equal(l->iv_names[0], "-inf-0");
	assert_string_equal(l->iv_names[1], "18446744073709551615-inf");
	assert_int_equal(l->iv_vals[1].u, 3);
	ingest_free(ing);
}

static void
keyed_hist_instances(void **state)
{
	struct tv	 tv[] = { { "hk", BTS_HIST, BTS_V_UINT, 1 },
	    { "lk", BTS_LHIST, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*hk = ingest_var_by_name(ing, "hk");

	feed_fixture(ing, "hist_keyed");
	/* python3: 11 buckets, memfd:sealed-91: 2, bpftrace: 16 */
	assert_int_equal(hk->iv_n, 29);
	assert_string_equal(hk->iv_names[0], "bpftrace:-inf--1");
	assert_string_equal(hk->iv_names[1], "bpftrace:0-0");
	assert_string_equal(hk->iv_names[15], "bpftrace:8192-16383");
	assert_string_equal(hk->iv_names[16], "memfd:sealed-91:-inf--1");
	assert_string_equal(hk->iv_names[18], "python3:0-0");
	assert_string_equal(hk->iv_names[28], "python3:512-1023");
	assert_int_equal(inst_u(ing, "hk", "bpftrace:-inf--1"), 4);
	assert_int_equal(inst_u(ing, "hk", "bpftrace:0-0"), 147);
	assert_int_equal(inst_u(ing, "hk", "bpftrace:8192-16383"), 9);
	assert_int_equal(inst_u(ing, "hk", "memfd:sealed-91:0-0"), 28);
	assert_int_equal(inst_u(ing, "hk", "python3:64-127"), 7);
	feed_fixture(ing, "lhist_keyed");
	assert_int_equal(inst_u(ing, "lk", "pmproxy:200-299"), 1);
	assert_int_equal(inst_u(ing, "lk", "bpftrace:300-inf"), 1);
	assert_int_equal(inst_u(ing, "lk", "mkdir:200-299"), 117);
	ingest_free(ing);
}

static void
hist_zeroed_empty(void **state)
{
	struct tv	 tv[] = { { "h", BTS_HIST, BTS_V_UINT, 0 },
	    { "l", BTS_LHIST, BTS_V_UINT, 0 },
	    { "hk", BTS_HIST, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*h = ingest_var_by_name(ing, "h");
	uint64_t	 seq;

	feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": "
	    "[{\"min\": 4, \"max\": 7, \"count\": 1}]}}");
	assert_int_equal(h->iv_n, 1);
	seq = h->iv_seq;
	feed_fixture_lines(ing, "hist_zeroed", 2, 2);	/* "@h": [] */
	assert_int_equal(h->iv_n, 0);
	assert_true(h->iv_seq > seq);
	feed_fixture(ing, "hist_zeroed");
	assert_int_equal(h->iv_n, 0);
	assert_int_equal(ingest_var_by_name(ing, "l")->iv_n, 0);
	assert_int_equal(ingest_var_by_name(ing, "hk")->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_bad_lines, 0);
	ingest_free(ing);
}

static void
avg_and_stats_values(void **state)
{
	struct tv	 tv[] = { { "a", BTS_AVG, BTS_V_INT, 0 },
	    { "st", BTS_STATS, BTS_V_INT, 0 } };
	struct tv	 tk[] = { { "av", BTS_AVG, BTS_V_INT, 1 },
	    { "st", BTS_STATS, BTS_V_INT, 1 },
	    { "cnt", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*st;

	feed_fixture(ing, "avg_stats");
	/* {"@a": 199}
	 * {"@st": {"count": 303, "average": 199, "total": 60396}} */
	assert_true(scalar(ing, "a")->i == 199);
	st = ingest_var_by_name(ing, "st");
	assert_int_equal(st->iv_n, 3);
	assert_string_equal(st->iv_names[0], "average");
	assert_string_equal(st->iv_names[1], "count");
	assert_string_equal(st->iv_names[2], "total");
	assert_true(inst_i(ing, "st", "count") == 303);
	assert_true(inst_i(ing, "st", "average") == 199);
	assert_true(inst_i(ing, "st", "total") == 60396);
	ingest_free(ing);

	ing = ING(tk, -1, NULL);
	feed_fixture(ing, "stats_keyed");
	assert_true(inst_i(ing, "av", "pmproxy") == 91);
	assert_true(inst_i(ing, "av", "bpftrace") == 136);
	assert_int_equal(inst_u(ing, "cnt", "pmproxy"), 21);
	st = ingest_var_by_name(ing, "st");
	assert_int_equal(st->iv_n, 6);
	assert_string_equal(st->iv_names[0], "bpftrace:average");
	assert_string_equal(st->iv_names[5], "pmproxy:total");
	assert_true(inst_i(ing, "st", "pmproxy:count") == 21);
	assert_true(inst_i(ing, "st", "pmproxy:average") == 91);
	assert_true(inst_i(ing, "st", "pmproxy:total") == 1926);
	assert_true(inst_i(ing, "st", "bpftrace:count") == 21);
	assert_true(inst_i(ing, "st", "bpftrace:average") == 136);
	assert_true(inst_i(ing, "st", "bpftrace:total") == 2857);
	ingest_free(ing);
}

/* --- instances ----------------------------------------------------------- */

static uint32_t
id_of(struct ingest *ing, const char *var, const char *name)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	size_t		 i;

	for (i = 0; i < v->iv_n; i++)
		if (strcmp(v->iv_names[i], name) == 0)
			return v->iv_ids[i];
	fail_msg("no instance %s", name);
	return 0;
}

static void
instance_ids_stable_across_reset(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	uint32_t	 ib, ip, im;

	feed_fixture(ing, "scalar_count");	/* attached_probes */
	feed_fixture_lines(ing, "periodic_print_clear", 2, 2);
	ib = id_of(ing, "c", "bpftrace");
	ip = id_of(ing, "c", "python3");
	im = id_of(ing, "c", "memfd:sealed-91");
	assert_true(ib != ip && ip != im && ib != im);
	assert_true(ib < 3 && ip < 3 && im < 3);
	ingest_reset(ing);
	assert_int_equal(c->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_probes, -1);
	assert_int_equal(ingest_stats(ing)->is_lines, 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"new\": 1, \"bpftrace\": 2}}}");
	assert_int_equal(id_of(ing, "c", "bpftrace"), ib);
	assert_int_equal(id_of(ing, "c", "new"), 3);
	feed_fixture_lines(ing, "periodic_print_clear", 3, 3);
	assert_int_equal(id_of(ing, "c", "python3"), ip);
	assert_int_equal(id_of(ing, "c", "memfd:sealed-91"), im);
	assert_false(has_inst(ing, "c", "new"));	/* not reused */
	ingest_free(ing);
}

struct seen {
	int	 n;
	int	 bash;
};

static void
count_inst(const char *var, const char *name, uint32_t id, void *arg)
{
	struct seen	*s = arg;

	s->n++;
	if (strcmp(var, "c") == 0 && strcmp(name, "bash") == 0 && id == 7)
		s->bash = 1;
}

static void
seed_instance(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 },
	    { "x", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct seen	 s = { 0, 0 };

	assert_int_equal(ingest_seed_instance(ing, "c", "bash", 7), 0);
	assert_int_equal(ingest_seed_instance(ing, "c", "bash", 7), 0);
	assert_int_equal(ingest_seed_instance(ing, "c", "bash", 8), -1);
	assert_int_equal(ingest_seed_instance(ing, "c", "zsh", 7), -1);
	assert_int_equal(ingest_seed_instance(ing, "c", "big", 0x80000000u),
	    -1);
	assert_int_equal(ingest_seed_instance(ing, "nope", "bash", 1), -1);
	assert_int_equal(ingest_seed_instance(ing, "x", "bash", 1), -1);
	assert_int_equal(ingest_seed_instance(ing, "c", "sh", 2), 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"python\": 1, \"bash\": 2, \"sh\": 3}}}");
	assert_int_equal(id_of(ing, "c", "bash"), 7);
	assert_int_equal(id_of(ing, "c", "sh"), 2);
	assert_int_equal(id_of(ing, "c", "python"), 8);	/* past the seed */
	ingest_foreach_instance(ing, count_inst, &s);
	assert_int_equal(s.n, 3);
	assert_true(s.bash);
	ingest_free(ing);
}

static void
max_instances_drops(void **state)
{
	struct tv		 tv[] = {
	    { "byid", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest_limits	 lim = { 5, 0, 0, 0 };
	struct ingest		*ing = ING(tv, -1, &lim);
	struct ing_var		*v = ingest_var_by_name(ing, "byid");

	feed_fixture(ing, "map_int_key");	/* 23 keys */
	assert_int_equal(v->iv_n, 5);
	assert_int_equal(v->iv_dropped, 18);
	assert_string_equal(v->iv_names[0], "0");	/* first 5 by name */
	assert_string_equal(v->iv_names[4], "186");
	assert_int_equal(inst_u(ing, "byid", "100"), 1);
	assert_int_equal(inst_u(ing, "byid", "186"), 12);
	/* known names still update; new ones still dropped */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@byid\": "
	    "{\"0\": 99, \"zzz\": 1}}}");
	assert_int_equal(v->iv_n, 1);
	assert_int_equal(inst_u(ing, "byid", "0"), 99);
	assert_int_equal(v->iv_dropped, 19);
	ingest_free(ing);
}

static void
identical_reprint_keeps_seq(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "b", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*b = ingest_var_by_name(ing, "b");
	uint64_t	 seq, bseq;

	feed_fixture_lines(ing, "sigusr1_dump", 1, 4);
	seq = ingest_seq(ing);
	bseq = b->iv_seq;
	feed_fixture_lines(ing, "sigusr1_dump", 5, 0);	/* same values */
	assert_int_equal(ingest_seq(ing), seq);
	assert_int_equal(b->iv_seq, bseq);
	assert_true(inst_i(ing, "b", "k") == 8);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@b\": {\"k\": 9}}}");
	assert_true(ingest_seq(ing) > seq);
	assert_true(b->iv_seq > bseq);
	ingest_free(ing);
}

/* --- one pass, reused order ---------------------------------------------- */

static void
same_names_reprint_keeps_order_and_ids(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	uint64_t	 seq, iseq = c->iv_iseq;

	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"a\": 2, \"c\": 3}}}"), 0);
	assert_names(ing, "c", "a|b|c");
	assert_true(c->iv_iseq != iseq);	/* the first names, too */
	/* new names get ids in instance order */
	assert_int_equal(id_of(ing, "c", "a"), 0);
	assert_int_equal(id_of(ing, "c", "b"), 1);
	assert_int_equal(id_of(ing, "c", "c"), 2);
	seq = c->iv_seq;
	iseq = c->iv_iseq;
	/* the same names in another order: values move, order and ids stay */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"c\": 30, \"a\": 10, \"b\": 20}}}"), 0);
	assert_names(ing, "c", "a|b|c");
	assert_int_equal(c->iv_ids[0], 0);
	assert_int_equal(c->iv_ids[2], 2);
	assert_int_equal(inst_u(ing, "c", "a"), 10);
	assert_int_equal(inst_u(ing, "c", "b"), 20);
	assert_int_equal(inst_u(ing, "c", "c"), 30);
	assert_true(c->iv_seq > seq);
	assert_int_equal(c->iv_iseq, iseq);
	/* and again, same values in yet another order: nothing changed */
	seq = ingest_seq(ing);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 20, \"c\": 30, \"a\": 10}}}"), 0);
	assert_int_equal(ingest_seq(ing), seq);
	/* the same in the generic path's shape (member order, escapes) */
	assert_int_equal(feed(ing, "{\"data\": {\"@c\": {\"\\u0062\": 21, "
	    "\"c\": 31, \"a\": 11}}, \"type\": \"map\"}"), 0);
	assert_names(ing, "c", "a|b|c");
	assert_int_equal(inst_u(ing, "c", "b"), 21);
	assert_int_equal(c->iv_iseq, iseq);
	ingest_free(ing);
}

static void
changed_names_sorted_again(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	uint64_t	 iseq;

	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"a\": 2, \"c\": 3}}}");
	iseq = c->iv_iseq;
	/* one gone, one new */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"d\": 4, \"a\": 5}}}"), 0);
	assert_names(ing, "c", "a|d");
	assert_int_equal(id_of(ing, "c", "d"), 3);
	assert_true(c->iv_iseq != iseq);
	/* one back (its old id), same count as before but other names */
	iseq = c->iv_iseq;
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"d\": 1, \"b\": 1}}}"), 0);
	assert_names(ing, "c", "b|d");
	assert_int_equal(id_of(ing, "c", "b"), 1);
	assert_true(c->iv_iseq != iseq);
	/* a subset, and then the empty map */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": {\"d\": 2}}}");
	assert_names(ing, "c", "d");
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": {}}}");
	assert_int_equal(c->iv_n, 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": {\"c\": 9}}}");
	assert_names(ing, "c", "c");
	assert_int_equal(id_of(ing, "c", "c"), 2);
	ingest_free(ing);
}

static void
duplicates_folded_on_every_path(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 },
	    { "x", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");

	/* new names, repeated */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"a\": 1, \"b\": 2, \"a\": 3, \"b\": 1, \"a\": 1}}}");
	assert_names(ing, "c", "a|b");
	assert_int_equal(inst_u(ing, "c", "a"), 5);
	assert_int_equal(inst_u(ing, "c", "b"), 3);
	/* known names, the same set: summed in place */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"a\": 1, \"b\": 10}}}");
	assert_names(ing, "c", "a|b");
	assert_int_equal(inst_u(ing, "c", "b"), 11);
	assert_int_equal(inst_u(ing, "c", "a"), 1);
	/* a known name twice and a new one */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"z\": 1, \"b\": 1}}}");
	assert_names(ing, "c", "b|z");
	assert_int_equal(inst_u(ing, "c", "b"), 2);
	/* the same set as before, but counted twice: still 2 instances */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"z\": 1, \"z\": 1}}}");
	assert_names(ing, "c", "z");
	assert_int_equal(c->iv_n, 1);
	assert_int_equal(inst_u(ing, "c", "z"), 2);
	/* not a count: the last one wins, on both paths */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"a\": 1, \"b\": 2, \"a\": -5}}}");
	assert_true(inst_i(ing, "x", "a") == -5);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"b\": 7, \"a\": 1, \"a\": 2}}}");
	assert_true(inst_i(ing, "x", "a") == 2);
	assert_true(inst_i(ing, "x", "b") == 7);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"b\": 7, \"\\u0061\": 3, \"a\": \"s\"}}}");
	/* "s" does not fit the INT variable: dropped, the other "a" stays */
	assert_true(inst_i(ing, "x", "a") == 3);
	assert_true(inst_i(ing, "x", "b") == 7);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 1);
	ingest_free(ing);
}

static void
bucket_order_and_name_order_not_mixed(void **state)
{
	struct tv	 tv[] = { { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": ["
	    "{\"min\": 2, \"max\": 3, \"count\": 1}, "
	    "{\"min\": 10, \"max\": 15, \"count\": 2}]}}");
	assert_names(ing, "h", "2-3|10-15");
	/* the same names printed as a map: strcmp order */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@h\": "
	    "{\"2-3\": 1, \"10-15\": 2}}}");
	assert_names(ing, "h", "10-15|2-3");
	/* and back */
	feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": ["
	    "{\"min\": 10, \"max\": 15, \"count\": 2}, "
	    "{\"min\": 2, \"max\": 3, \"count\": 1}]}}");
	assert_names(ing, "h", "2-3|10-15");
	ingest_free(ing);
}

/* many prints with built and escaped names: the scratch is reused */
static void
scratch_reused_across_prints(void **state)
{
	struct tv	 tv[] = { { "hk", BTS_HIST, BTS_V_UINT, 1 },
	    { "k", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	char		 line[512], name[64];
	int		 i, j;

	for (i = 0; i < 300; i++) {
		snprintf(line, sizeof(line), "{\"type\": \"hist\", \"data\": "
		    "{\"@hk\": {\"k\\u00e9%d\": [{\"max\": -1, \"count\": %d}, "
		    "{\"min\": 0, \"max\": 0, \"count\": 1}], \"p\": "
		    "[{\"min\": %d, \"count\": 2}]}}}", i % 7, i, i % 3);
		assert_int_equal(feed(ing, line), 0);
		snprintf(name, sizeof(name), "k\xc3\xa9%d:-inf--1", i % 7);
		assert_int_equal(inst_u(ing, "hk", name), i);
		snprintf(name, sizeof(name), "p:%d-inf", i % 3);
		assert_int_equal(inst_u(ing, "hk", name), 2);
		assert_int_equal(ingest_var_by_name(ing, "hk")->iv_n, 3);
		snprintf(line, sizeof(line), "{\"type\": \"map\", \"data\": "
		    "{\"@k\": {\"a\\tb\": %d, \"c\": 1}}}", i);
		assert_int_equal(feed(ing, line), 0);
		assert_int_equal(inst_u(ing, "k", "a\tb"), i);
	}
	/* names the table gave out stay valid through all that */
	for (j = 0; j < 7; j++) {
		snprintf(name, sizeof(name), "k\xc3\xa9%d:0-0", j);
		assert_true(ingest_seed_instance(ing, "hk", name, 999) == -1);
	}
	assert_int_equal(ingest_var_known(ingest_var_by_name(ing, "hk")),
	    7 * 2 + 3);
	ingest_free(ing);
}

static void
long_and_many_names(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	struct buf	 line;
	const char	*first;
	char		*big;
	size_t		 n = 200 * 1024, i, r;

	/* a 200 KiB name, bigger than a chunk of the name pool */
	big = malloc(n + 1);
	assert_non_null(big);
	for (i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	buf_init(&line, TEST_BUF_MAX);
	buf_printf(&line, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"%s\": 1, \"short\": 2}}}", big);
	assert_int_equal(ingest_line(ing, line.b_data, line.b_len, NULL, 0), 0);
	assert_int_equal(inst_u(ing, "c", big), 1);
	first = c->iv_names[0];
	/* 5,000 names of 300 bytes, in three orders */
	for (r = 0; r < 3; r++) {
		buf_reset(&line);
		buf_puts(&line, "{\"type\": \"map\", \"data\": {\"@c\": {");
		for (i = 0; i < 5000; i++)
			buf_printf(&line, "%s\"%0300zu\": %zu", i ? ", " : "",
			    r == 1 ? 4999 - i : (i * 7919) % 5000, i + r);
		buf_printf(&line, ", \"%s\": 3}}}", big);
		assert_int_equal(ingest_line(ing, line.b_data, line.b_len,
		    NULL, 0), 0);
		assert_int_equal(c->iv_n, 5001);
		for (i = 1; i < c->iv_n; i++)
			assert_true(strcmp(c->iv_names[i - 1],
			    c->iv_names[i]) < 0);
	}
	assert_int_equal(inst_u(ing, "c", big), 3);
	assert_int_equal(strlen(first), n);	/* still the table's copy */
	assert_int_equal(ingest_var_known(c), 5002);
	buf_free(&line);
	free(big);
	ingest_free(ing);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keyed_map_replaced_not_merged),
		cmocka_unit_test(multi_key_joined_names),
		cmocka_unit_test(duplicate_keys_summed),
		cmocka_unit_test(hist_bucket_names_pmda_compatible),
		cmocka_unit_test(lhist_open_ends),
		cmocka_unit_test(keyed_hist_instances),
		cmocka_unit_test(hist_zeroed_empty),
		cmocka_unit_test(avg_and_stats_values),
		cmocka_unit_test(instance_ids_stable_across_reset),
		cmocka_unit_test(seed_instance),
		cmocka_unit_test(max_instances_drops),
		cmocka_unit_test(identical_reprint_keeps_seq),
		cmocka_unit_test(same_names_reprint_keeps_order_and_ids),
		cmocka_unit_test(changed_names_sorted_again),
		cmocka_unit_test(duplicates_folded_on_every_path),
		cmocka_unit_test(bucket_order_and_name_order_not_mixed),
		cmocka_unit_test(scratch_reused_across_prints),
		cmocka_unit_test(long_and_many_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
