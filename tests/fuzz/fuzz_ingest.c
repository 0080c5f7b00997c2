/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ingest.c - libFuzzer harness for the bpftrace JSON line ingester
 * (src/bpftrace/ingest.c, src/bpftrace/jsonr.c). The input is
 *
 *	SCRIPT "\n//--ingest--\n" LINES
 *
 * (the seeds are the bpftrace 0.17, 0.23 and 0.27 fixtures: NAME.bt, the
 * separator, then NAME.stdout; a script line "// bpftrace: vX.Y.Z" makes
 * the ingesters read as that version, ingest_set_version()), or only LINES, which are then read for a built-in script
 * that has a variable of every kind. Each line goes to ingest_line() with
 * small limits (so the instance and @output bounds are reached), then the
 * state is read back the way the daemon does and checked against what
 * ingest.h promises; then ingest_reset() and the lines again. A second
 * ingester reads every line with an extra top-level member ("zz": 0)
 * before its last '}', which the one-pass reader (ingest_fast.c) never
 * takes: when both accepted the same lines, their variables must be the
 * same (the fast and the generic path read a print alike).
 */
#include "fuzzhelp.h"
#include "btscript.h"
#include "buf.h"
#include "ingest.h"
#include "log.h"

#define SEP		"\n//--ingest--\n"
#define MAX_INST	40

static const char default_script[] =
	"// table-retain-lines: 3\n"
	"BEGIN { @c = count(); @s = sum(1); @mi = min(1); @ma = max(1);\n"
	"  @a = avg(1); @st = stats(1); @h = hist(1); @l = lhist(1, 0, 100, 10);\n"
	"  @m[comm] = count(); @mk[comm, pid] = sum(1); @hk[comm] = hist(1);\n"
	"  @lk[comm] = lhist(1, 0, 10, 1); @stk[comm] = stats(1);\n"
	"  @avk[comm] = avg(1); @str = comm; @t = (1, \"a\");\n"
	"  @ks[kstack] = count(); @ = count(); @x = 1; @neg = -1;\n"
	"  @us[ustack] = count(); @smap[\"k\"] = \"v\";\n"
	"  printf(\"x\\n\"); time(); }\n";

static struct bts_info	 default_info;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	 err[256];

	log_init(-1);
	if (bts_analyze(default_script, strlen(default_script), &default_info,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_ingest: built-in script refused: %s\n",
		    err);
		abort();
	}
	return 0;
}

static void
on_instance(const char *var, const char *name, uint32_t id, void *arg)
{
	size_t	*n = arg;

	FZ_CHECK(var != NULL && name != NULL, "instance without a name");
	(*n)++;
}

static void
check_state(struct ingest *ing, const struct ingest_limits *lim)
{
	struct buf	 out;
	size_t		 known = 0, seen = 0;

	for (size_t k = 0; k < ingest_nvars(ing); k++) {
		struct ing_var	*v = ingest_var(ing, k);

		FZ_CHECK(v != NULL && v->iv_name != NULL, "variable %zu", k);
		FZ_CHECK(ingest_var_by_name(ing, v->iv_name) == v,
		    "variable %s not found by name", v->iv_name);
		if (v->iv_kind == BTS_OUTPUT) {
			FZ_CHECK(v->iv_n == 0, "@output has instances");
			continue;
		}
		FZ_CHECK(v->iv_n <= lim->il_max_instances || v->iv_scalar,
		    "@%s has %zu instances, the limit is %zu", v->iv_name,
		    v->iv_n, lim->il_max_instances);
		for (size_t i = 0; i < v->iv_n; i++) {
			const struct ing_val	*val = &v->iv_vals[i];

			FZ_CHECK(val->t != ING_STR || val->s != NULL,
			    "@%s: string value NULL", v->iv_name);
			if (v->iv_scalar)
				continue;
			FZ_CHECK(v->iv_names[i] != NULL, "@%s: instance %zu "
			    "unnamed", v->iv_name, i);
			for (size_t j = 0; j < i; j++)
				FZ_CHECK(v->iv_ids[j] != v->iv_ids[i] &&
				    strcmp(v->iv_names[j], v->iv_names[i]) != 0,
				    "@%s: instance %zu repeats %zu",
				    v->iv_name, i, j);
		}
		for (size_t i = 0; i < ingest_var_known(v); i++) {
			const char	*name = NULL;
			uint32_t	 id = 0;

			ingest_var_instance_at(v, i, &name, &id);
			FZ_CHECK(name != NULL, "@%s: known %zu unnamed",
			    v->iv_name, i);
			known++;
		}
	}
	ingest_foreach_instance(ing, on_instance, &seen);
	FZ_CHECK(seen == known, "foreach saw %zu instances, %zu known", seen,
	    known);
	buf_init(&out, lim->il_output_bytes * 2 + 4096);
	FZ_CHECK(ingest_output_text(ing, &out) == 0, "output text overflows");
	buf_free(&out);
	(void)ingest_seq(ing);
	(void)ingest_stats(ing)->is_last_error[0];
}

/* "// bpftrace: vX.Y.Z" in the script: both read as that version */
static void
set_version(struct ingest *a, struct ingest *b, const char *s, size_t n)
{
	static const char	 tag[] = "// bpftrace: ";
	const char		*p = memmem(s, n, tag, strlen(tag));
	char			 v[16];
	size_t			 i = 0;

	if (p == NULL)
		return;
	for (p += strlen(tag); p < s + n && *p != '\n' && i + 1 < sizeof(v);)
		v[i++] = *p++;
	v[i] = '\0';
	ingest_set_version(a, v);
	ingest_set_version(b, v);
}

/* line with ,"zz":0 before its last '}' (when it ends so) in b */
static void
slow_variant(struct buf *b, const char *p, size_t len)
{
	size_t	 end = len;

	buf_reset(b);
	while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t' ||
	    p[end - 1] == '\r'))
		end--;
	if (end == 0 || p[end - 1] != '}') {
		buf_append(b, p, len);
		return;
	}
	buf_append(b, p, end - 1);
	buf_puts(b, ",\"zz\":0");
	buf_append(b, p + end - 1, len - (end - 1));
}

/* The variables of a and b are the same (names, ids, values, types). */
static void
check_same_vars(struct ingest *a, struct ingest *b)
{
	for (size_t k = 0; k < ingest_nvars(a); k++) {
		struct ing_var	*va = ingest_var(a, k), *vb = ingest_var(b, k);

		FZ_CHECK(va->iv_n == vb->iv_n && va->iv_vtype == vb->iv_vtype &&
		    va->iv_dropped == vb->iv_dropped &&
		    ingest_var_known(va) == ingest_var_known(vb),
		    "@%s: fast and generic paths differ (%zu/%zu instances)",
		    va->iv_name, va->iv_n, vb->iv_n);
		for (size_t i = 0; i < va->iv_n; i++) {
			const struct ing_val	*x = &va->iv_vals[i];
			const struct ing_val	*y = &vb->iv_vals[i];

			FZ_CHECK(x->t == y->t && (x->t == ING_STR ?
			    strcmp(x->s, y->s) == 0 : x->t == ING_NONE ||
			    x->u == y->u), "@%s: value %zu differs", va->iv_name,
			    i);
			if (va->iv_scalar)
				continue;
			FZ_CHECK(va->iv_ids[i] == vb->iv_ids[i] &&
			    strcmp(va->iv_names[i], vb->iv_names[i]) == 0,
			    "@%s: instance %zu: %s/%s", va->iv_name, i,
			    va->iv_names[i], vb->iv_names[i]);
		}
	}
}

/*
 * Feeds the lines to ing and their slow variants to slow (NULL: none);
 * returns 1 when both accepted and refused the same lines.
 */
static int
feed_lines(struct ingest *ing, struct ingest *slow, const char *p, size_t n)
{
	struct buf	 b;
	int		 same = 1;

	buf_init(&b, n + 16);	/* a line of p and ",\"zz\":0" */
	char	 err[256];

	while (n > 0) {
		const char	*nl = memchr(p, '\n', n);
		size_t		 len = nl ? (size_t)(nl - p) : n;
		int		 rv;

		err[0] = '\0';
		rv = ingest_line(ing, p, len, err, sizeof(err));
		FZ_CHECK(rv >= -1 && rv <= 1, "ingest_line returned %d", rv);
		if (slow != NULL) {
			slow_variant(&b, p, len);
			if (ingest_line(slow, b.b_data ? b.b_data : "", b.b_len,
			    NULL, 0) != rv)
				same = 0;
		}
		FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
		    "error text not terminated");
		if (rv == -1)
			FZ_CHECK(err[0] != '\0', "invalid line without reason");
		p += len;
		n -= len;
		if (nl) {
			p++;
			n--;
		}
	}
	buf_free(&b);
	return same;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*text = (const char *)data, *lines = text;
	const char		*sep;
	size_t			 nlines = size;
	struct bts_info		 info, *ip = &default_info;
	struct ingest_limits	 lim = {
		.il_max_instances = MAX_INST,
		.il_output_bytes = 2048,
		.il_output_lines = 16,
	};
	struct ingest		*ing, *slow;
	char			 err[256];
	int			 own = 0;

	sep = memmem(text, size, SEP, strlen(SEP));
	if (sep != NULL) {
		if (bts_analyze(text, (size_t)(sep - text), &info, err,
		    sizeof(err)) == -1)
			return 0;
		ip = &info;
		own = 1;
		lines = sep + strlen(SEP);
		nlines = size - (size_t)(lines - text);
	}
	if ((ing = ingest_new(ip, &lim)) == NULL ||
	    (slow = ingest_new(ip, &lim)) == NULL)
		abort();
	if (sep != NULL)
		set_version(ing, slow, text, (size_t)(sep - text));
	if (own)
		bts_info_free(&info);
	if (feed_lines(ing, slow, lines, nlines))
		check_same_vars(ing, slow);
	check_state(ing, &lim);
	ingest_reset(ing);
	check_state(ing, &lim);
	feed_lines(ing, NULL, lines, nlines);
	check_state(ing, &lim);
	ingest_free(ing);
	ingest_free(slow);
	return 0;
}
