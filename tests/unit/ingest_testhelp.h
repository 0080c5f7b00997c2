/* SPDX-License-Identifier: MIT */
/*
 * ingest_testhelp.h - what the ingester's unit tests (test_ingest*.c)
 * share: a bts_info built by hand, an ingester fed from hand-made lines
 * or from $BT_SHARED/fixtures/bpftrace-0.17 (a test skips when they are
 * absent), and its values, instances and @output text read back. Include
 * after testhelp.h.
 */
#ifndef BT_INGEST_TESTHELP_H
#define BT_INGEST_TESTHELP_H
#include <stdio.h>

#include "testhelp_fixtures.h"

#include "buf.h"
#include "ingest.h"

#define FIXDIR		"/fixtures/bpftrace-0.17/"

struct tv {
	const char	*name;
	enum bts_kind	 kind;
	enum bts_vtype	 vt;
	int		 nkeys;
};

#define OUTPUT_VAR	{ "output", BTS_OUTPUT, BTS_V_STRING, 0 }

/* Builds the bts_info btscript.c would give, by hand; caller frees. */
static inline struct bts_info *
info_new(const struct tv *tv, size_t n, long retain)
{
	struct bts_info	*info = calloc(1, sizeof(*info));
	size_t		 i;

	assert_non_null(info);
	info->i_vars = calloc(n ? n : 1, sizeof(*info->i_vars));
	assert_non_null(info->i_vars);
	for (i = 0; i < n; i++) {
		info->i_vars[i].v_name = strdup(tv[i].name);
		info->i_vars[i].v_kind = tv[i].kind;
		info->i_vars[i].v_vtype = tv[i].vt;
		info->i_vars[i].v_nkeys = tv[i].nkeys;
		if (tv[i].kind == BTS_OUTPUT)
			info->i_has_output = 1;
	}
	info->i_nvars = n;
	info->i_meta.m_table_retain_lines = retain;
	info->i_meta.m_interval_ms = -1;
	return info;
}

static inline void
info_free(struct bts_info *info)
{
	size_t	 i;

	for (i = 0; i < info->i_nvars; i++)
		free(info->i_vars[i].v_name);
	free(info->i_vars);
	free(info);
}

static inline struct ingest *
ing_new(const struct tv *tv, size_t n, long retain,
    const struct ingest_limits *lim)
{
	struct bts_info	*info = info_new(tv, n, retain);
	struct ingest	*ing = ingest_new(info, lim);

	info_free(info);	/* ingest_new keeps its own copy */
	assert_non_null(ing);
	return ing;
}

#define ING(tvs, retain, lim) \
	ing_new(tvs, sizeof(tvs) / sizeof(tvs[0]), retain, lim)

static inline int
feed(struct ingest *ing, const char *line)
{
	char	 err[256] = "";

	return ingest_line(ing, line, strlen(line), err, sizeof(err));
}

static inline char *
fixture_path(const char *name)
{
	const char	*shared = getenv("BT_SHARED");
	size_t		 len;
	char		*p;

	if (shared == NULL)
		return NULL;
	len = strlen(shared) + strlen(FIXDIR) + strlen(name) + 1;
	p = malloc(len);
	assert_non_null(p);
	snprintf(p, len, "%s%s%s", shared, FIXDIR, name);
	return p;
}

/* NAME.stdout, or skip the test when the fixtures are not there. */
static inline char *
fixture(const char *name, size_t *lenp)
{
	char	 file[256];
	char	*path, *s;

	snprintf(file, sizeof(file), "%s.stdout", name);
	path = fixture_path(file);
	s = th_slurp(path, lenp);
	free(path);
	if (s == NULL) {
		print_message("skipped: fixture %s not found (BT_SHARED=%s)\n",
		    file, getenv("BT_SHARED") ? getenv("BT_SHARED") : "unset");
		skip();
	}
	return s;
}

/*
 * Feeds lines first..last (1-based, 0: to the end) of NAME.stdout and
 * fails on any line the ingester calls invalid.
 */
static inline void
feed_fixture_lines(struct ingest *ing, const char *name, size_t first,
    size_t last)
{
	char	 err[256];
	char	*text, *p, *nl;
	size_t	 len = 0, no = 0;
	int	 rv;

	text = fixture(name, &len);
	for (p = text; p < text + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(text + len - p))) == NULL)
			nl = text + len;
		no++;
		if (no < first || (last && no > last))
			continue;
		err[0] = '\0';
		rv = ingest_line(ing, p, (size_t)(nl - p), err, sizeof(err));
		if (rv == -1)
			fail_msg("%s.stdout line %zu: %s", name, no, err);
	}
	free(text);
}

static inline void
feed_fixture(struct ingest *ing, const char *name)
{
	feed_fixture_lines(ing, name, 1, 0);
}

static inline const struct ing_val *
inst(struct ingest *ing, const char *var, const char *name)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	size_t		 i;

	assert_non_null(v);
	assert_false(v->iv_scalar);
	for (i = 0; i < v->iv_n; i++)
		if (strcmp(v->iv_names[i], name) == 0)
			return &v->iv_vals[i];
	fail_msg("@%s has no instance \"%s\"", var, name);
	return NULL;
}

static inline int
has_inst(struct ingest *ing, const char *var, const char *name)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	size_t		 i;

	for (i = 0; v != NULL && i < v->iv_n; i++)
		if (strcmp(v->iv_names[i], name) == 0)
			return 1;
	return 0;
}

static inline uint64_t
inst_u(struct ingest *ing, const char *var, const char *name)
{
	const struct ing_val	*v = inst(ing, var, name);

	assert_int_equal(v->t, ING_U64);
	return v->u;
}

static inline int64_t
inst_i(struct ingest *ing, const char *var, const char *name)
{
	const struct ing_val	*v = inst(ing, var, name);

	assert_int_equal(v->t, ING_I64);
	return v->i;
}

static inline const char *
inst_s(struct ingest *ing, const char *var, const char *name)
{
	const struct ing_val	*v = inst(ing, var, name);

	assert_int_equal(v->t, ING_STR);
	return v->s;
}

static inline const struct ing_val *
scalar(struct ingest *ing, const char *var)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);

	assert_non_null(v);
	assert_true(v->iv_scalar);
	assert_int_equal(v->iv_n, 1);
	return &v->iv_vals[0];
}

/* the @output text, NUL-terminated; caller frees */
static inline char *
output(struct ingest *ing)
{
	struct buf	 b;

	buf_init(&b, TEST_BUF_MAX);
	assert_int_equal(ingest_output_text(ing, &b), 0);
	return buf_take(&b, NULL);
}

static inline void
assert_output(struct ingest *ing, const char *want)
{
	char	*got = output(ing);

	assert_string_equal(got, want);
	free(got);
}

/* names of @var joined with '|', for order checks; caller frees */
static inline char *
names_of(struct ingest *ing, const char *var)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	struct buf	 b;
	size_t		 i;

	buf_init(&b, TEST_BUF_MAX);
	for (i = 0; i < v->iv_n; i++)
		buf_printf(&b, "%s%s", i ? "|" : "", v->iv_names[i]);
	return buf_take(&b, NULL);
}

static inline void
assert_names(struct ingest *ing, const char *var, const char *want)
{
	char	*got = names_of(ing, var);

	assert_string_equal(got, want);
	free(got);
}
#endif
