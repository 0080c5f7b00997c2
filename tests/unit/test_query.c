/* SPDX-License-Identifier: MIT */
/* test_query.c - strict query-string parsing and percent decoding. */
#include "testhelp.h"
#include "util.h"

static struct params
parse_ok(const char *qs)
{
	struct params	 ps;
	char		 err[128];

	params_init(&ps, 16);
	assert_int_equal(params_parse(&ps, qs, strlen(qs), err, sizeof(err)),
	    0);
	return ps;
}

static void
query_decodes_keys_values_and_plus(void **state)
{
	struct params	 ps = parse_ok("names=a.b,c.d&iname=1%20minute&x=a+b");

	assert_int_equal(ps.n, 3);
	assert_string_equal(params_get(&ps, "names"), "a.b,c.d");
	assert_string_equal(params_get(&ps, "iname"), "1 minute");
	assert_string_equal(params_get(&ps, "x"), "a b");
	assert_null(params_get(&ps, "nope"));
	params_free(&ps);
}

static void
query_first_occurrence_wins_and_empty_values(void **state)
{
	struct params	 ps = parse_ok("a=1&a=2&&b&c=");

	assert_string_equal(params_get(&ps, "a"), "1");
	assert_string_equal(params_get(&ps, "b"), "");
	assert_string_equal(params_get(&ps, "c"), "");
	assert_int_equal(ps.n, 3);
	params_free(&ps);
}

static void
query_rejects_bad_escapes_and_nul(void **state)
{
	const char	*bad[] = { "a=%zz", "a=%4", "a=%", "a=x%0", "a=%00",
			    "k%g1=v" };
	char		 err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct params	 ps;

		params_init(&ps, 16);
		err[0] = '\0';
		assert_int_equal(params_parse(&ps, bad[i], strlen(bad[i]), err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "percent-encoding"));
		params_free(&ps);
	}
}

static void
query_enforces_parameter_limit(void **state)
{
	struct params	 ps;
	char		 err[128];
	const char	*qs = "a=1&b=2&c=3";

	params_init(&ps, 2);
	assert_int_equal(params_parse(&ps, qs, strlen(qs), err, sizeof(err)),
	    -1);
	assert_string_equal(err, "too many query parameters");
	params_free(&ps);
}

static void
query_keeps_binary_length(void **state)
{
	struct params		 ps = parse_ok("value=%C3%A9%0A");
	const struct param	*p = params_find(&ps, "value");

	assert_non_null(p);
	assert_int_equal(p->p_vlen, 3);
	assert_memory_equal(p->p_val, "\xc3\xa9\n", 3);
	params_free(&ps);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(query_decodes_keys_values_and_plus),
		cmocka_unit_test(query_first_occurrence_wins_and_empty_values),
		cmocka_unit_test(query_rejects_bad_escapes_and_nul),
		cmocka_unit_test(query_enforces_parameter_limit),
		cmocka_unit_test(query_keeps_binary_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
