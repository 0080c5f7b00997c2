/* SPDX-License-Identifier: MIT */
/*
 * btscript_testhelp.h - what the script analyser's unit tests
 * (test_btscript*.c) share: bts_analyze() on a C string, a refusal
 * checked for its reason and for leaving nothing behind, and the real
 * bpftrace 0.17 scripts under $BT_SHARED/fixtures/bpftrace-0.17. Include
 * after testhelp.h.
 */
#ifndef BT_BTSCRIPT_TESTHELP_H
#define BT_BTSCRIPT_TESTHELP_H
#include <stdio.h>

#include "testhelp_fixtures.h"

#include "btscript.h"

#define ERRLEN	256

static inline int
analyze(const char *code, struct bts_info *info, char *err)
{
	err[0] = '\0';
	return bts_analyze(code, strlen(code), info, err, ERRLEN);
}

static inline void
assert_refused(const char *code, const char *reason_part)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze(code, &info, err), -1);
	if (strstr(err, reason_part) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, reason_part);
	assert_null(info.i_vars);
	assert_int_equal(info.i_nvars, 0);
	assert_null(info.i_meta.m_name);
	assert_null(info.i_meta.m_include);
}

/* Reads $BT_SHARED/fixtures/bpftrace-0.17/file; NULL when unavailable. */
static inline char *
read_fixture(const char *file, size_t *lenp)
{
	char	 rel[1024];

	snprintf(rel, sizeof(rel), "bpftrace-0.17/%s", file);
	return th_fixture(rel, lenp);
}

static inline int
fixtures_present(void)
{
	size_t	 len;
	char	*s = read_fixture("scalar_count.bt", &len);

	free(s);
	if (s == NULL)
		print_message("# skipped: bpftrace fixtures not found under "
		    "$BT_SHARED/fixtures/bpftrace-0.17 (BT_SHARED=%s)\n",
		    getenv("BT_SHARED") ? getenv("BT_SHARED") : "unset");
	return s != NULL;
}

#endif
