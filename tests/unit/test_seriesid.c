/* SPDX-License-Identifier: MIT */
/*
 * test_seriesid.c - series and source identifiers equal the ones the live
 * pmproxy 6.0.3 answered for the same metrics (its /pmapi/metric and
 * /pmapi/context answers on the development host, recorded below), and
 * the in-answer placeholder is filled from the labels written.
 */
#include "testhelp.h"

#include <pcp/pmapi.h>

#include "buf.h"
#include "seriesid.h"
#include "util.h"

#define HOST	"\"domainname\":\"localdomain\",\"hostname\":\"vm\"," \
		"\"machineid\":\"3d1219c7c4c5404aaa1f6d2a48adfda4\""
#define LINUX	"{\"agent\":\"linux\"," HOST "}"
#define SAMPLE	"{\"agent\":\"sample\",\"cluster\":\"zero\"," HOST \
		",\"role\":\"testing\"}"

struct vec {
	const char	*name, *labels;
	int		 type, sem;
	pmUnits		 units;
	const char	*series;	/* pmproxy's answer */
};

static const pmUnits	 NONE = { 0 };

static void
check(const struct vec *v)
{
	char	 out[41];

	seriesid_metric(v->name, v->labels, v->labels ? strlen(v->labels) : 0,
	    v->type, v->sem, &v->units, out);
	assert_string_equal(out, v->series);
}

static void
metrics_match_pmproxy(void **state)
{
	pmUnits	 kb = { .dimSpace = 1, .scaleSpace = PM_SPACE_KBYTE };
	pmUnits	 ms = { .dimTime = 1, .scaleTime = PM_TIME_MSEC };
	pmUnits	 bps = { .dimSpace = 1, .dimTime = -1,
	    .scaleSpace = PM_SPACE_BYTE, .scaleTime = PM_TIME_SEC };
	const struct vec v[] = {
		{ "kernel.all.load", LINUX, PM_TYPE_FLOAT, PM_SEM_INSTANT,
		  NONE, "8e183fa35f854031788fa180d0132ff054c97029" },
		{ "hinv.ncpu", LINUX, PM_TYPE_U32, PM_SEM_DISCRETE, NONE,
		  "7684cafcc92e880b399615d227c4bebf68df359c" },
		{ "mem.util.free", LINUX, PM_TYPE_U64, PM_SEM_INSTANT, kb,
		  "8c3a54ad5b81fee52863605efeaa44c6e14978a1" },
		{ "kernel.all.cpu.user", "{\"agent\":\"linux\","
		  "\"device_type\":\"cpu\"," HOST "}", PM_TYPE_U64,
		  PM_SEM_COUNTER, ms,
		  "5ea2ad3fe0bacadefb704b9c880198b8e6ad151c" },
		{ "sample.long.one", SAMPLE, PM_TYPE_32, PM_SEM_INSTANT, NONE,
		  "b6fbfda3a82cc8eba561344afff63b65b050eb7f" },
		{ "sample.byte_rate", SAMPLE, PM_TYPE_32, PM_SEM_INSTANT, bps,
		  "921e377240bcf9a352002f005f5079de695bbc08" },
		{ "sample.string.hullo", SAMPLE, PM_TYPE_STRING,
		  PM_SEM_INSTANT, NONE,
		  "e50bb4e26ae9e34b3b45312900adeb8f99523be7" },
		{ "sample.double.bin", SAMPLE, PM_TYPE_DOUBLE, PM_SEM_INSTANT,
		  NONE, "dd9e4119fb2cd8127e5c10f504c8e715605cc1d7" },
		/* a derived metric (hinv.ncpu*2): context labels only */
		{ "xtest.ncpu2", "{" HOST "}", PM_TYPE_U32, PM_SEM_DISCRETE,
		  NONE, "bb7b0394d578b7b36c63854b588543b5a4ad6041" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		check(&v[i]);
}

static void
every_input_counts(void **state)
{
	const struct vec base = { "hinv.ncpu", LINUX, PM_TYPE_U32,
	    PM_SEM_DISCRETE, { 0 }, "7684cafcc92e880b399615d227c4bebf68df359c" };
	char	 a[41], b[41];

	/* labels, type, semantics, units and name each change the id */
	seriesid_metric(base.name, "{" HOST "}", strlen("{" HOST "}"),
	    base.type, base.sem, &base.units, a);
	assert_string_not_equal(a, base.series);
	seriesid_metric(base.name, LINUX, strlen(LINUX), PM_TYPE_U64,
	    base.sem, &base.units, b);
	assert_string_not_equal(b, base.series);
	seriesid_metric(base.name, LINUX, strlen(LINUX), base.type,
	    PM_SEM_INSTANT, &base.units, b);
	assert_string_not_equal(b, base.series);
	seriesid_metric("hinv.ncpus", LINUX, strlen(LINUX), base.type,
	    base.sem, &base.units, b);
	assert_string_not_equal(b, base.series);
	/* no labels hash as JSON null, as libpcp_web does */
	seriesid_metric(base.name, NULL, 0, base.type, base.sem,
	    &base.units, a);
	sha1_hex("{\"series\":\"metric\",\"name\":\"hinv.ncpu\",\"labels\":"
	    "null,\"semantics\":\"discrete\",\"type\":\"U32\",\"units\":\"\"}",
	    strlen("{\"series\":\"metric\",\"name\":\"hinv.ncpu\",\"labels\":"
	    "null,\"semantics\":\"discrete\",\"type\":\"U32\",\"units\":\"\"}"),
	    b);
	assert_string_equal(a, b);
}

static void
source_matches_pmproxy(void **state)
{
	char	 out[41];

	seriesid_source(HOST, out);
	assert_string_equal(out, "81540769f309cae4b59d5d434d6bb15a19c0e014");
}

static void
slot_is_filled_from_the_labels_written(void **state)
{
	struct buf	 b;
	size_t		 slot, lab;
	const char	*want = "{\"series\":\"7684cafcc92e880b399615d227c4bebf"
	    "68df359c\",\"labels\":" LINUX "}";

	buf_init(&b, 4096);
	buf_puts(&b, "{\"series\":\"");
	slot = seriesid_slot(&b);
	buf_puts(&b, "\",\"labels\":");
	lab = b.b_len;
	buf_puts(&b, LINUX);
	seriesid_fill(&b, slot, lab, "hinv.ncpu", PM_TYPE_U32,
	    PM_SEM_DISCRETE, &NONE);
	buf_putc(&b, '}');
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void
failed_buffer_is_left_alone(void **state)
{
	struct buf	 b;
	size_t		 slot;

	buf_init(&b, 16);	/* the cap: the labels cannot fit */
	buf_puts(&b, "\"");
	slot = seriesid_slot(&b);
	buf_puts(&b, LINUX);
	assert_true(b.b_failed != 0);
	seriesid_fill(&b, slot, b.b_len, "x", PM_TYPE_U32, PM_SEM_DISCRETE,
	    &NONE);	/* must not write past what was written */
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metrics_match_pmproxy),
		cmocka_unit_test(every_input_counts),
		cmocka_unit_test(source_matches_pmproxy),
		cmocka_unit_test(slot_is_filled_from_the_labels_written),
		cmocka_unit_test(failed_buffer_is_left_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
