/* SPDX-License-Identifier: MIT */
/*
 * test_derive.c - the derived-metric parser, binder and evaluator, and
 * the per-context set. Expected texts and values were checked against a
 * live pmproxy 6.0.3 (libpcp's pmAddDerivedMetric).
 */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "testhelp.h"
#include "bt_limits.h"
#include "buf.h"
#include "registry.h"

#define IND_A	pmInDom_build(BT_DOMAIN, 1)
#define IND_B	pmInDom_build(BT_DOMAIN, 2)
#define NONE	BT_UNITS(0, 0, 0, 0, 0, 0)
#define KBYTE	BT_UNITS(1, 0, 0, PM_SPACE_KBYTE, 0, 0)
#define MBYTE	BT_UNITS(1, 0, 0, PM_SPACE_MBYTE, 0, 0)
#define COUNT1	BT_UNITS(0, 0, 1, 0, 0, PM_COUNT_ONE)

/* a tiny namespace: name, metric, values */
struct fake {
	const char	*name;
	int		 type, sem;
	int		 ind;		/* 0: singular, else serial */
	pmUnits		 units;
	struct valset	 vs;
	struct metric	*m;
};

static const uint32_t	 inst_a[] = { 1, 2, 3 };
static const union value vals_a[] = { { .u = 10 }, { .u = 20 }, { .u = 30 } };
static const uint32_t	 inst_b[] = { 3, 2, 4 };
static const union value vals_b[] = { { .u = 300 }, { .u = 200 },
				    { .u = 400 } };
static const union value val_ncpu[] = { { .u = 2 } };
static const union value val_cnt[] = { { .u = 1000 } };
static const union value val_str[] = { { .s = "text" } };
static const union value val_kb[] = { { .u = 2048 } };
static const union value val_mb[] = { { .u = 1 } };
static const union value val_flt[] = { { .d = 0.25 } };

static struct fake fakes[] = {
	{ "hinv.ncpu", PM_TYPE_U32, PM_SEM_DISCRETE, 0, NONE,
	  { 1, 0, NULL, val_ncpu }, NULL },
	{ "cpu.user", PM_TYPE_U64, PM_SEM_COUNTER, 0,
	  BT_UNITS(0, 1, 0, 0, PM_TIME_MSEC, 0), { 1, 0, NULL, val_cnt }, NULL },
	{ "cnt", PM_TYPE_U64, PM_SEM_COUNTER, 0, COUNT1,
	  { 1, 0, NULL, val_cnt }, NULL },
	{ "a.inst", PM_TYPE_U32, PM_SEM_INSTANT, 1, NONE,
	  { 3, 0, inst_a, vals_a }, NULL },
	{ "b.inst", PM_TYPE_U32, PM_SEM_INSTANT, 1, NONE,
	  { 3, 0, inst_b, vals_b }, NULL },
	{ "c.other", PM_TYPE_U32, PM_SEM_INSTANT, 2, NONE,
	  { 3, 0, inst_b, vals_b }, NULL },
	{ "s.str", PM_TYPE_STRING, PM_SEM_DISCRETE, 0, NONE,
	  { 1, 0, NULL, val_str }, NULL },
	{ "mem.kb", PM_TYPE_U64, PM_SEM_INSTANT, 0, KBYTE,
	  { 1, 0, NULL, val_kb }, NULL },
	{ "mem.mb", PM_TYPE_U64, PM_SEM_INSTANT, 0, MBYTE,
	  { 1, 0, NULL, val_mb }, NULL },
	{ "load", PM_TYPE_FLOAT, PM_SEM_INSTANT, 0, NONE,
	  { 1, 0, NULL, val_flt }, NULL },
	{ "empty", PM_TYPE_U32, PM_SEM_INSTANT, 1, NONE,
	  { 0, 0, inst_a, vals_a }, NULL },
	{ "gone", PM_TYPE_U32, PM_SEM_INSTANT, 0, NONE,
	  { 0, PM_ERR_VALUE, NULL, NULL }, NULL },
	{ "c32.inst", PM_TYPE_U32, PM_SEM_COUNTER, 1, COUNT1,
	  { 3, 0, inst_a, vals_a }, NULL },
	{ "t2", PM_TYPE_DOUBLE, PM_SEM_INSTANT, 0,
	  BT_UNITS(0, 2, 0, 0, PM_TIME_SEC, 0), { 1, 0, NULL, val_flt }, NULL },
};
#define NFAKES	(sizeof(fakes) / sizeof(fakes[0]))

static int
setup(void **state)
{
	for (size_t i = 0; i < NFAKES; i++)
		fakes[i].m = metric_new(fakes[i].name, pmID_build(BT_DOMAIN, 9,
		    (unsigned)i), fakes[i].ind ? pmInDom_build(BT_DOMAIN,
		    (unsigned)fakes[i].ind) : PM_INDOM_NULL, fakes[i].type, fakes[i].sem,
		    fakes[i].units, "x", "x", "", NULL, 0);
	return 0;
}

static int
teardown(void **state)
{
	for (size_t i = 0; i < NFAKES; i++)
		metric_unref(fakes[i].m);
	return 0;
}

static const struct metric *
find(void *arg, const char *name)
{
	for (size_t i = 0; i < NFAKES; i++)
		if (strcmp(fakes[i].name, name) == 0)
			return fakes[i].m;
	return NULL;
}

static const struct valset *
values(void *arg, const char *name)
{
	for (size_t i = 0; i < NFAKES; i++)
		if (strcmp(fakes[i].name, name) == 0)
			return &fakes[i].vs;
	return NULL;
}

/* parse + bind + eval; returns bind's code, fills desc and values */
static int
run(const char *expr, struct ddesc *d, struct dvals *v, const char **why)
{
	struct buf	 err;
	struct dexpr	*t, *b;
	int		 rc;

	buf_init(&err, TEST_BUF_MAX);
	rc = derive_parse("n", expr, &t, &err);
	if (rc != 0)
		fail_msg("parse of %s failed: %s", expr, buf_cstr(&err));
	buf_free(&err);
	rc = derive_bind(t, find, NULL, &b, d, why);
	derive_free(t);
	if (rc != 0)
		return rc;
	if (v && derive_eval(b, values, NULL, v) != 0)
		rc = 1;
	derive_free(b);
	return rc;
}

static double
num1(const char *expr, int *type)
{
	struct ddesc	 d;
	struct dvals	 v;
	const char	*why;
	double		 r;

	assert_int_equal(run(expr, &d, &v, &why), 0);
	assert_int_equal(v.dv_n, 1);
	assert_null(v.dv_inst);
	*type = d.dd_type;
	switch (d.dd_type) {
	case PM_TYPE_32: case PM_TYPE_64: r = (double)v.dv_vals[0].i; break;
	case PM_TYPE_U32: case PM_TYPE_U64: r = (double)v.dv_vals[0].u; break;
	default: r = v.dv_vals[0].d;
	}
	dvals_free(&v);
	return r;
}

static char *
syntax(const char *expr)
{
	struct buf	 err;
	struct dexpr	*t = NULL;
	size_t		 len;

	buf_init(&err, TEST_BUF_MAX);
	assert_int_equal(derive_parse("my.bad", expr, &t, &err), -1);
	assert_null(t);
	return buf_take(&err, &len);
}

static void
check_syntax(const char *expr, const char *want)
{
	char	*got = syntax(expr);

	assert_string_equal(got, want);
	free(got);
}

static void
precedence_and_parentheses(void **state)
{
	int	 t;

	assert_true(num1("1 + 2 * 3", &t) == 7);
	assert_int_equal(t, PM_TYPE_U32);
	assert_true(num1("(1 + 2) * 3", &t) == 9);
	assert_true(num1("10 - 4 - 3", &t) == 3);
	assert_true(num1("((((7))))", &t) == 7);
	assert_true(num1("7 / 2", &t) == 3.5);
	assert_int_equal(t, PM_TYPE_DOUBLE);
	/* unary minus binds like binary minus: -2*3 is -(2*3), type 32 */
	assert_true(num1("-2*3", &t) == -6);
	assert_int_equal(t, PM_TYPE_32);
	/* 2 * -(3*4): u32 times 32 is u32 in libpcp, so it wraps */
	assert_true(num1("2 * -3 * 4", &t) == 4294967272.0);
	assert_int_equal(t, PM_TYPE_U32);
	assert_true(num1("- - 3", &t) == 3);
	assert_true(num1(".5 + 1", &t) == 1.5);
	assert_int_equal(t, PM_TYPE_DOUBLE);
	/* U32 arithmetic wraps as libpcp's does */
	assert_true(num1("2 - 3", &t) == 4294967295.0);
	assert_int_equal(t, PM_TYPE_U32);
	assert_true(num1("hinv.ncpu * 2", &t) == 4);
	assert_true(num1("4294967295", &t) == 4294967295.0);
}

static void
division_by_zero(void **state)
{
	int	 t;

	/* libpcp: 0 / x is 0 (0/0 too); x / 0 is IEEE infinity */
	assert_true(num1("0 / 0", &t) == 0);
	assert_true(num1("hinv.ncpu * 0 / 0", &t) == 0);
	assert_true(isinf(num1("1 / 0", &t)) && num1("1 / 0", &t) > 0);
	assert_true(isinf(num1("-1 / 0", &t)) && num1("-1 / 0", &t) < 0);
	assert_int_equal(t, PM_TYPE_DOUBLE);
}

static void
broadcast_and_intersection(void **state)
{
	struct ddesc	 d;
	struct dvals	 v;
	const char	*why;

	assert_int_equal(run("a.inst * 2", &d, &v, &why), 0);
	assert_int_equal(d.dd_indom, IND_A);
	assert_int_equal(v.dv_n, 3);
	assert_int_equal(v.dv_inst[0], 1);
	assert_int_equal(v.dv_vals[0].u, 20);
	assert_int_equal(v.dv_vals[2].u, 60);
	dvals_free(&v);
	assert_int_equal(run("hinv.ncpu + a.inst", &d, &v, &why), 0);
	assert_int_equal(v.dv_n, 3);
	assert_int_equal(v.dv_inst[1], 2);
	assert_int_equal(v.dv_vals[1].u, 22);
	dvals_free(&v);
	/* both with instances: only common ids, in the left one's order */
	assert_int_equal(run("a.inst + b.inst", &d, &v, &why), 0);
	assert_int_equal(v.dv_n, 2);
	assert_int_equal(v.dv_inst[0], 2);
	assert_int_equal(v.dv_vals[0].u, 220);
	assert_int_equal(v.dv_inst[1], 3);
	assert_int_equal(v.dv_vals[1].u, 330);
	dvals_free(&v);
	/* an empty operand: no instances; one without values: no value */
	assert_int_equal(run("empty * 2", &d, &v, &why), 0);
	assert_int_equal(v.dv_n, 0);
	dvals_free(&v);
	assert_int_equal(run("gone + 1", &d, &v, &why), 1);
	/* a bare name copies values, strings too */
	assert_int_equal(run("s.str", &d, &v, &why), 0);
	assert_int_equal(d.dd_type, PM_TYPE_STRING);
	assert_string_equal(v.dv_vals[0].s, "text");
	dvals_free(&v);
}

static void
type_and_semantics_rules(void **state)
{
	struct ddesc	 d;
	const char	*why;
	char		 u[64];

	assert_int_equal(run("cpu.user * 2", &d, NULL, &why), 0);
	assert_int_equal(d.dd_sem, PM_SEM_COUNTER);
	assert_int_equal(d.dd_type, PM_TYPE_U64);
	bt_units_str(&d.dd_units, u, sizeof(u));
	assert_string_equal(u, "millisec");
	assert_int_equal(run("2 * cpu.user", &d, NULL, &why), 0);
	assert_int_equal(d.dd_sem, PM_SEM_COUNTER);
	/* libpcp keeps the left operand's descriptor: discrete here */
	assert_int_equal(run("hinv.ncpu * cpu.user", &d, NULL, &why), 0);
	assert_int_equal(d.dd_sem, PM_SEM_DISCRETE);
	assert_int_equal(run("cpu.user + cpu.user", &d, NULL, &why), 0);
	assert_int_equal(d.dd_sem, PM_SEM_COUNTER);
	assert_int_equal(run("a.inst + hinv.ncpu", &d, NULL, &why), 0);
	assert_int_equal(d.dd_sem, PM_SEM_INSTANT);
	assert_int_equal(run("load + hinv.ncpu", &d, NULL, &why), 0);
	assert_int_equal(d.dd_type, PM_TYPE_FLOAT);
	assert_int_equal(run("-hinv.ncpu", &d, NULL, &why), 0);
	assert_int_equal(d.dd_type, PM_TYPE_32);
	assert_int_equal(d.dd_sem, PM_SEM_INSTANT);
	assert_int_equal(run("mem.kb / mem.kb", &d, NULL, &why), 0);
	bt_units_str(&d.dd_units, u, sizeof(u));
	assert_string_equal(u, "none");
	assert_int_equal(run("cnt + hinv.ncpu * 0 + cnt", &d, NULL, &why), -1);
	/* different space scales: the larger wins, the result is double */
	{
		struct dvals	 v;

		assert_int_equal(run("mem.mb + mem.kb", &d, &v, &why), 0);
		assert_int_equal(d.dd_type, PM_TYPE_DOUBLE);
		bt_units_str(&d.dd_units, u, sizeof(u));
		assert_string_equal(u, "Mbyte");
		assert_true(v.dv_vals[0].d == 3.0);
		dvals_free(&v);
	}
}

static void
semantic_errors(void **state)
{
	static const struct { const char *e, *why; } cases[] = {
		{ "cpu.user + 1", "Illegal operator for counter and "
		  "non-counter" },
		{ "cpu.user / cpu.user", "Illegal operator for counters" },
		{ "cpu.user * cpu.user", "Illegal operator for counters" },
		{ "2 / cpu.user", "Illegal operator for non-counter and "
		  "counter" },
		{ "s.str + 1", "Non-arithmetic type for left operand" },
		{ "1 + s.str", "Non-arithmetic type for right operand" },
		{ "-s.str", "Non-arithmetic operand for unary negation" },
		{ "a.inst * c.other", "Operands should have the same "
		  "instance domain" },
		{ "mem.kb + hinv.ncpu", "Dimensions are not the same" },
		{ "mem.kb + 1", "Dimensions are not the same" },
		{ "mem.kb * cnt", "Non-counter and not dimensionless for left "
		  "operand" },
	};
	struct ddesc	 d;
	const char	*why;
	struct buf	 b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(run(cases[i].e, &d, NULL, &why), -1);
		assert_string_equal(why, cases[i].why);
	}
	buf_init(&b, TEST_BUF_MAX);
	derive_semantic_text(&b, "q.e7", "kernel.all.cpu.user + 1",
	    "Illegal operator for counter and non-counter");
	assert_string_equal(buf_cstr(&b), "Semantic Error: pmAddDerivedMetric("
	    "\"q.e7\", ...)\nkernel.all.cpu.user + 1\n^\nIllegal operator "
	    "for counter and non-counter\n");
	buf_free(&b);
	/* an unknown operand is not an error (pmproxy answers success) */
	assert_int_equal(run("hinv.ncpu + no.such", &d, NULL, &why), -2);
	assert_int_equal(run("no.such + s.str", &d, NULL, &why), -2);
}

#define SE(e)	"Syntax Error: pmAddDerivedMetric(\"my.bad\", ...)\n" e

static void
syntax_errors_as_libpcp(void **state)
{
	check_syntax("hinv.ncpu +", SE("hinv.ncpu +\n          ^\n"
	    "Arithmetic expression expected to follow PLUS\n"));
	check_syntax("hinv.ncpu+", SE("hinv.ncpu+\n         ^\n"
	    "Arithmetic expression expected to follow PLUS\n"));
	check_syntax("+ hinv.ncpu", SE("+ hinv.ncpu\n  ^\n"
	    "Unexpected initial '+'\n"));
	check_syntax("hinv.ncpu hinv.ncpu", SE("hinv.ncpu hinv.ncpu\n"
	    "          ^\nArithmetic or relational or boolean operator "
	    "expected to follow NAME\n"));
	check_syntax("(hinv.ncpu", SE("(hinv.ncpu\n         ^\n"
	    "Unexpected initial '('\n"));
	check_syntax("hinv.ncpu)", SE("hinv.ncpu)\n         ^\n"
	    "Unexpected ')'\n"));
	check_syntax("", SE("\n ^\n"));
	check_syntax(")", SE(")\n^\nUnexpected initial ')'\n"));
	check_syntax("1e3", SE("1e3\n ^\n"));
	check_syntax("4294967296", SE("4294967296\n^\n"
	    "Constant value too large\n"));
	check_syntax("_x", SE("_x\n^\nIllegal character\n"));
	check_syntax("1 + + 2", SE("1 + + 2\n    ^\n"
	    "Arithmetic expression expected to follow PLUS\n"));
	check_syntax("-", SE("-\n^\nArithmetic expression expected to "
	    "follow NEG\n"));
	check_syntax("2 * (hinv.ncpu", SE("2 * (hinv.ncpu\n             ^\n"
	    "Arithmetic expression expected to follow STAR\n"));
	check_syntax("1 + 2 3", SE("1 + 2 3\n      ^\n"));
	check_syntax("1 * (2 + 3 4)", SE("1 * (2 + 3 4)\n           ^\n"
	    "Arithmetic expression expected to follow STAR\n"));
	check_syntax("3 (", SE("3 (\n  ^\nUnexpected '('\n"));
	check_syntax("1 /", SE("1 /\n  ^\nArithmetic expression expected "
	    "to follow SLASH\n"));
	check_syntax("1 - ", SE("1 - \n   ^\nArithmetic expression expected "
	    "to follow MINUS\n"));
	check_syntax("1 = 2", SE("1 = 2\n  ^\n"));
	/* libpcp's other operators and functions: named as unsupported */
	check_syntax("delta(x)", SE("delta(x)\n^\nFunction delta() is not "
	    "supported by bpftraced\n"));
	check_syntax("1 < 2", SE("1 < 2\n  ^\nOperator '<' is not supported "
	    "by bpftraced (only + - * / and parentheses)\n"));
}

static void
adversarial_input(void **state)
{
	char	*big, *msg;
	size_t	 n;

	/* 100 KB: refused by length, before any parsing */
	n = 100 * 1024;
	big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 2 ? '+' : '1';
	big[n - 1] = '1';
	big[n] = '\0';
	msg = syntax(big);
	assert_non_null(strstr(msg, "is too long (bpftraced limit 8192)"));
	free(msg);
	/* deep nesting within the length limit */
	memset(big, '(', 4000);
	big[4000] = '1';
	memset(big + 4001, ')', 4000);
	big[8001] = '\0';
	msg = syntax(big);
	assert_non_null(strstr(msg, "\nExpression nested too deeply\n"));
	free(msg);
	for (int i = 0; i < 4000; i++) {
		big[2 * i] = '-';
		big[2 * i + 1] = ' ';
	}
	strcpy(big + 8000, "1");
	msg = syntax(big);
	assert_non_null(strstr(msg, "\nExpression nested too deeply\n"));
	free(msg);
	/* many operators: node limit */
	for (int i = 0; i < 4000; i++) {
		big[2 * i] = '1';
		big[2 * i + 1] = '+';
	}
	strcpy(big + 8000, "1");
	msg = syntax(big);
	assert_non_null(strstr(msg, "\nExpression too large\n"));
	free(msg);
	/* garbage: every answer is a tree or an error, never a crash */
	srandom(42);
	for (int round = 0; round < 2000; round++) {
		struct buf	 err;
		struct dexpr	*t = NULL;
		size_t		 len = (size_t)(random() % 64);
		static const char alpha[] = "()+-*/ 01.9a.b\t\xff\x80=&|<\"[#";

		for (size_t i = 0; i < len; i++)
			big[i] = round % 2 ? (char)(random() % 255 + 1) :
			    alpha[random() % (sizeof(alpha) - 1)];
		big[len] = '\0';
		buf_init(&err, TEST_BUF_MAX);
		if (derive_parse("g", big, &t, &err) == 0) {
			struct dexpr	*b;
			struct ddesc	 d;
			const char	*why;
			struct dvals	 v;

			assert_int_equal(err.b_len, 0);
			if (derive_bind(t, find, NULL, &b, &d, &why) == 0) {
				if (derive_eval(b, values, NULL, &v) == 0)
					dvals_free(&v);
				derive_free(b);
			}
			derive_free(t);
		} else {
			assert_true(strncmp(buf_cstr(&err), "Syntax Error: ",
			    14) == 0);
		}
		buf_free(&err);
	}
	free(big);
}

static void
pmids_and_sets(void **state)
{
	struct dset	*s1, *s2;
	struct dmetric	*a, *b;
	struct dexpr	*t;
	struct buf	 err;

	assert_int_equal(derive_pmid(0), pmID_build(511, 2047, 1023));
	assert_int_equal(derive_pmid(1), pmID_build(511, 2047, 1022));
	assert_int_equal(derive_pmid(1022), pmID_build(511, 2047, 1));
	assert_int_equal(derive_pmid(1023), pmID_build(511, 2046, 1023));
	buf_init(&err, TEST_BUF_MAX);
	assert_int_equal(derive_parse("a", "1", &t, &err), 0);
	a = dmetric_new("a", "1", 0);
	derive_free(t);
	assert_int_equal(derive_parse("b", "2", &t, &err), 0);
	b = dmetric_new("b", "2", 1);
	derive_free(t);
	buf_free(&err);
	s1 = dset_add(NULL, a);
	s2 = dset_add(s1, b);
	assert_int_equal(a->dm_pmid, pmID_build(511, 2047, 1023));
	assert_int_equal(b->dm_pmid, pmID_build(511, 2047, 1022));
	assert_ptr_equal(dset_find(s2, "b"), b);
	assert_null(dset_find(s1, "b"));	/* the old set is unchanged */
	assert_null(dset_find(NULL, "a"));
	dmetric_unref(a);
	dmetric_unref(b);
	dset_release(s1);
	assert_string_equal(dset_find(s2, "a")->dm_name, "a");
	dset_release(s2);
}

static void
context_sets_limits_and_expiry(void **state)
{
	struct ctxtab	*ct = ctx_new(10);
	struct dset	*held = NULL;
	uint32_t	 id;
	char		 name[16];

	assert_int_equal(ctx_create(ct, 0.2, &id), CTX_OK);
	for (int i = 0; i < 3; i++) {
		struct buf	 err;
		struct dexpr	*t;
		struct dmetric	*dm;
		int		 want = i < 2 ? CTX_OK : CTX_LIMIT;

		buf_init(&err, TEST_BUF_MAX);
		assert_int_equal(derive_parse("x", "1", &t, &err), 0);
		buf_free(&err);
		snprintf(name, sizeof(name), "d%d", i);
		dm = dmetric_new(name, "1", 0);
		derive_free(t);
		assert_int_equal(ctx_derive_add(ct, id, dm, 2), want);
		if (i == 0)	/* the same name again */
			assert_int_equal(ctx_derive_add(ct, id, dm, 2),
			    CTX_DUP);
		dmetric_unref(dm);
	}
	assert_int_equal(ctx_use(ct, id, NULL, &held), CTX_OK);
	assert_int_equal(held->ds_n, 2);
	assert_int_equal(ctx_derive_add(ct, 12345, NULL, 2), CTX_UNKNOWN);
	/* the context expires; a request still holding its set is safe */
	usleep(300 * 1000);
	assert_int_equal(ctx_gc(ct), 1);
	assert_string_equal(dset_find(held, "d1")->dm_name, "d1");
	dset_release(held);
	ctx_free(ct);
}

/* ---- rate() ---- */

static struct dvals
mkvals(int n, const uint32_t *inst, const union value *v)
{
	struct dvals	 d = { PM_TYPE_U64, n, NULL, NULL };

	d.dv_inst = inst ? (uint32_t *)(uintptr_t)inst : NULL;
	d.dv_vals = (union value *)(uintptr_t)v;
	return d;
}

static double
rate1(int type, uint64_t now, uint64_t prev, double dt, double mul)
{
	union value	 a = { .u = now }, b = { .u = prev };
	struct dvals	 vn = mkvals(1, NULL, &a), vp = mkvals(1, NULL, &b);
	struct dvals	 out;
	double		 r;

	assert_int_equal(derive_rate(type, &vn, &vp, dt, mul, &out), 0);
	assert_int_equal(out.dv_n, 1);
	assert_int_equal(out.dv_type, PM_TYPE_DOUBLE);
	r = out.dv_vals[0].d;
	dvals_free(&out);
	return r;
}

static void
rate_arithmetic_and_wrap(void **state)
{
	union value	 a = { .u = 7 }, da, db;
	struct dvals	 vn = mkvals(1, NULL, &a), out;

	/* (now - prev) / dt */
	assert_true(rate1(PM_TYPE_U64, 1300, 1000, 2.0, 1) == 150.0);
	/* counter wrap: the difference is taken in the operand's type */
	assert_true(rate1(PM_TYPE_U32, 5, 4294967290u, 2.0, 1) == 5.5);
	assert_true(rate1(PM_TYPE_U64, 5, UINT64_MAX - 5, 1.0, 1) == 11.0);
	assert_true(rate1(PM_TYPE_32, (uint64_t)(int64_t)INT32_MIN,
	    (uint64_t)INT32_MAX, 1.0, 1) == 1.0);
	/* a signed operand that went down gives a negative rate (libpcp) */
	assert_true(rate1(PM_TYPE_64, 10, 30, 1.0, 1) == -20.0);
	assert_true(rate1(PM_TYPE_32, 10, 30, 2.0, 1) == -10.0);
	/* an unsigned one is taken as a wrap, as libpcp does */
	assert_true(rate1(PM_TYPE_U64, 10, 30, 1.0, 1) ==
	    (double)(UINT64_MAX - 19));
	/* msec time counter: seconds per second */
	assert_true(fabs(rate1(PM_TYPE_U64, 3000, 1000, 4.0, 0.001) - 0.5) <
	    1e-12);
	da.d = 2.5;
	db.d = 1.5;
	{
		struct dvals	 dn = mkvals(1, NULL, &da), dp = mkvals(1, NULL,
				    &db);

		assert_int_equal(derive_rate(PM_TYPE_DOUBLE, &dn, &dp, 0.5, 1,
		    &out), 0);
		assert_true(out.dv_n == 1 && out.dv_vals[0].d == 2.0);
		dvals_free(&out);
		/* dt 0 or a clock stepped back: no value, no inf/nan */
		assert_int_equal(derive_rate(PM_TYPE_DOUBLE, &dn, &dp, 0, 1,
		    &out), 0);
		assert_int_equal(out.dv_n, 0);
		dvals_free(&out);
		assert_int_equal(derive_rate(PM_TYPE_DOUBLE, &dn, &dp, -1, 1,
		    &out), 0);
		assert_int_equal(out.dv_n, 0);
		dvals_free(&out);
	}
	/* the first fetch: nothing to compare with, no value */
	assert_int_equal(derive_rate(PM_TYPE_U64, &vn, NULL, 1, 1, &out), 0);
	assert_int_equal(out.dv_n, 0);
	dvals_free(&out);
}

static void
rate_instances_come_and_go(void **state)
{
	static const uint32_t	 in[] = { 1, 2, 4 }, ip[] = { 2, 3, 1 };
	static const union value vn_[] = { { .u = 100 }, { .u = 200 },
				    { .u = 50 } };
	static const union value vp_[] = { { .u = 100 }, { .u = 7 },
				    { .u = 40 } };
	struct dvals	 vn = mkvals(3, in, vn_), vp = mkvals(3, ip, vp_), out;
	struct dvals	 single = mkvals(1, NULL, vn_);

	assert_int_equal(derive_rate(PM_TYPE_U64, &vn, &vp, 2.0, 1, &out), 0);
	/* 1 and 2 in both (any order); 4 is new, 3 vanished: no value */
	assert_int_equal(out.dv_n, 2);
	assert_int_equal(out.dv_inst[0], 1);
	assert_true(out.dv_vals[0].d == 30.0);
	assert_int_equal(out.dv_inst[1], 2);
	assert_true(out.dv_vals[1].d == 50.0);
	dvals_free(&out);
	/* singular now, per-instance before (the operand changed): none */
	assert_int_equal(derive_rate(PM_TYPE_U64, &single, &vp, 2.0, 1, &out),
	    0);
	assert_int_equal(out.dv_n, 0);
	dvals_free(&out);
}

/* values that change between fetches: name -> valset override */
static struct valset	 over_vs;
static const char	*over_name;

static const struct valset *
values_over(void *arg, const char *name)
{
	if (over_name && strcmp(name, over_name) == 0)
		return &over_vs;
	return values(arg, name);
}

static struct dexpr *
bound(const char *expr, struct ddesc *d)
{
	struct buf	 err;
	struct dexpr	*t, *b;
	const char	*why;

	buf_init(&err, TEST_BUF_MAX);
	assert_int_equal(derive_parse("n", expr, &t, &err), 0);
	buf_free(&err);
	assert_int_equal(derive_bind(t, find, NULL, &b, d, &why), 0);
	derive_free(t);
	return b;
}

static void
rate_over_fetches(void **state)
{
	static const union value v1[] = { { .u = 1000 } }, v2[] = {
				    { .u = 1400 } };
	static const union value c1[] = { { .u = 10 }, { .u = 20 },
				    { .u = 30 } };
	struct timespec	 t1 = { 100, 0 }, t2 = { 102, 0 };
	struct dhist	 h1, h2;
	struct dvals	 v;
	struct ddesc	 d;
	struct dexpr	*b = bound("rate(cnt) * 2", &d);

	/* descriptor: instant double, count / sec, the operand's indom */
	assert_int_equal(d.dd_type, PM_TYPE_DOUBLE);
	assert_int_equal(d.dd_sem, PM_SEM_INSTANT);
	assert_int_equal(d.dd_units.dimCount, 1);
	assert_int_equal(d.dd_units.dimTime, -1);
	assert_int_equal(d.dd_units.scaleTime, PM_TIME_SEC);
	assert_int_equal(d.dd_indom, PM_INDOM_NULL);
	over_name = "cnt";
	over_vs = (struct valset){ 1, 0, NULL, v1 };
	assert_int_equal(derive_eval_hist(b, values_over, NULL, NULL, &h1,
	    &t1, &v), 0);
	assert_int_equal(v.dv_n, 0);		/* first fetch */
	assert_int_equal(h1.dh_n, 1);
	assert_true(h1.dh_v[0].dv_n == 1 && h1.dh_v[0].dv_vals[0].u == 1000);
	assert_true(dhist_bytes(&h1) > 0);
	dvals_free(&v);
	over_vs.vs_vals = v2;
	assert_int_equal(derive_eval_hist(b, values_over, NULL, &h1, &h2,
	    &t2, &v), 0);
	assert_int_equal(v.dv_n, 1);
	assert_true(v.dv_vals[0].d == 400.0);	/* 400 / 2 s * 2 */
	assert_true(h2.dh_stamp.tv_sec == 102 &&
	    h2.dh_v[0].dv_vals[0].u == 1400);
	dvals_free(&v);
	dhist_free(&h1);
	dhist_free(&h2);
	derive_free(b);

	/* a time counter in msec: utilization, units none */
	b = bound("rate(cpu.user)", &d);
	assert_int_equal(d.dd_units.dimTime, 0);
	assert_int_equal(d.dd_units.scaleTime, 0);
	over_name = "cpu.user";
	over_vs = (struct valset){ 1, 0, NULL, v1 };
	assert_int_equal(derive_eval_hist(b, values_over, NULL, NULL, &h1,
	    &t1, &v), 0);
	dvals_free(&v);
	over_vs.vs_vals = v2;
	assert_int_equal(derive_eval_hist(b, values_over, NULL, &h1, &h2,
	    &t2, &v), 0);
	assert_true(v.dv_n == 1 && fabs(v.dv_vals[0].d - 0.2) < 1e-12);
	dvals_free(&v);
	dhist_free(&h1);
	dhist_free(&h2);
	derive_free(b);

	/* two rate() nodes keep two slots; per-instance counter u32 */
	b = bound("rate(c32.inst) + rate(c32.inst)", &d);
	assert_int_equal(d.dd_indom, pmInDom_build(BT_DOMAIN, 1));
	over_name = "c32.inst";
	over_vs = (struct valset){ 3, 0, inst_a, vals_a };
	assert_int_equal(derive_eval_hist(b, values_over, NULL, NULL, &h1,
	    &t1, &v), 0);
	assert_int_equal(h1.dh_n, 2);
	assert_int_equal(v.dv_n, 0);
	dvals_free(&v);
	over_vs.vs_vals = c1;		/* 10,20,30 -> 10,20,30: zero */
	assert_int_equal(derive_eval_hist(b, values_over, NULL, &h1, &h2,
	    &t2, &v), 0);
	assert_int_equal(v.dv_n, 3);
	assert_true(v.dv_vals[0].d == 0 && v.dv_inst[2] == 3);
	dvals_free(&v);
	/* the copy a context hands out is equal and separate */
	{
		struct dhist	 c;

		assert_int_equal(dhist_copy(&c, &h2), 0);
		assert_int_equal(c.dh_n, 2);
		assert_ptr_not_equal(c.dh_v[1].dv_vals, h2.dh_v[1].dv_vals);
		assert_true(c.dh_v[1].dv_n == 3 &&
		    c.dh_v[1].dv_vals[2].u == 30 && c.dh_v[1].dv_inst[2] == 3);
		dhist_free(&c);
	}
	dhist_free(&h1);
	dhist_free(&h2);
	derive_free(b);
	/* an operand without a value: no value, its slot stays empty */
	b = bound("rate(gone)", &d);
	assert_int_equal(derive_eval_hist(b, values, NULL, NULL, &h1, &t1,
	    &v), -1);
	assert_null(h1.dh_v[0].dv_vals);
	dhist_free(&h1);
	derive_free(b);
	over_name = NULL;
}

static void
rate_syntax_and_semantics(void **state)
{
	struct ddesc	 d;
	const char	*why;

	/* libpcp 6.0.3: rate() takes a metric name, nothing else */
	check_syntax("rate(5)", SE("rate(5)\n     ^\nMetric name expected "
	    "to follow rate(\n"));
	check_syntax("rate(rate(x))", SE("rate(rate(x))\n     ^\nMetric name "
	    "expected to follow rate(\n"));
	check_syntax("rate(a+b)", SE("rate(a+b)\n      ^\nMetric name "
	    "expected to follow rate(\n"));
	check_syntax("rate(a", SE("rate(a\n     ^\nMetric name expected to "
	    "follow rate(\n"));
	/* a name "rate" without a parenthesis is a metric name */
	assert_int_equal(run("rate * 2", &d, NULL, &why), -2);
	assert_int_equal(run("rate(s.str)", &d, NULL, &why), -1);
	assert_string_equal(why, "Non-arithmetic operand for function");
	assert_int_equal(run("rate(t2)", &d, NULL, &why), -1);
	assert_string_equal(why, "Incorrect time dimension for operand");
	/* a non-counter is allowed: per second of an instant value */
	assert_int_equal(run("rate(load)", &d, NULL, &why), 0);
	assert_true(d.dd_sem == PM_SEM_INSTANT && d.dd_units.dimTime == -1);
	/* the result is instant: a counter cannot be added to it */
	assert_int_equal(run("rate(cnt) + cnt", &d, NULL, &why), -1);
	assert_string_equal(why, "Illegal operator for non-counter and "
	    "counter");
}

static void
rate_history_limits(void **state)
{
	struct ctx_limits l = { .cl_max = 4, .cl_per_peer = 4,
				.cl_derived_bytes = 600,
				.cl_profile_insts = 10 };
	struct ctxtab	*ct = ctx_new_limits(&l);
	static const union value v1[] = { { .u = 1000 } };
	struct timespec	 t1 = { 100, 0 };
	struct dhist	 h, got;
	struct dvals	 v;
	struct ddesc	 d;
	struct dexpr	*b = bound("rate(cnt)", &d);
	struct dvals	*big;
	uint32_t	 id;

	assert_int_equal(ctx_create(ct, 10, &id), CTX_OK);
	assert_int_equal(ctx_rate_get(ct, id, 7, &got), CTX_OK);
	assert_int_equal(got.dh_n, 0);		/* none yet: a first fetch */
	over_name = "cnt";
	over_vs = (struct valset){ 1, 0, NULL, v1 };
	assert_int_equal(derive_eval_hist(b, values_over, NULL, NULL, &h, &t1,
	    &v), 0);
	dvals_free(&v);
	assert_int_equal(ctx_rate_put(ct, id, 7, &h), CTX_OK);
	assert_null(h.dh_v);			/* moved into the context */
	assert_int_equal(ctx_rate_get(ct, id, 7, &got), CTX_OK);
	assert_true(got.dh_n == 1 && got.dh_v[0].dv_vals[0].u == 1000 &&
	    got.dh_stamp.tv_sec == 100);
	/* past --max-derived-bytes: refused, and the old one is dropped */
	big = &got.dh_v[0];
	free(big->dv_vals);
	big->dv_vals = calloc(100, sizeof(*big->dv_vals));
	big->dv_n = 100;
	assert_int_equal(ctx_rate_put(ct, id, 7, &got), CTX_BYTES);
	dhist_free(&got);
	assert_int_equal(ctx_rate_get(ct, id, 7, &got), CTX_OK);
	assert_int_equal(got.dh_n, 0);
	assert_int_equal(ctx_rate_put(ct, 4242, 7, &got), CTX_UNKNOWN);
	ctx_free(ct);			/* frees what contexts hold */
	derive_free(b);
	over_name = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(precedence_and_parentheses),
		cmocka_unit_test(division_by_zero),
		cmocka_unit_test(broadcast_and_intersection),
		cmocka_unit_test(type_and_semantics_rules),
		cmocka_unit_test(semantic_errors),
		cmocka_unit_test(syntax_errors_as_libpcp),
		cmocka_unit_test(adversarial_input),
		cmocka_unit_test(pmids_and_sets),
		cmocka_unit_test(context_sets_limits_and_expiry),
		cmocka_unit_test(rate_arithmetic_and_wrap),
		cmocka_unit_test(rate_instances_come_and_go),
		cmocka_unit_test(rate_over_fetches),
		cmocka_unit_test(rate_syntax_and_semantics),
		cmocka_unit_test(rate_history_limits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
