/* SPDX-License-Identifier: MIT */
/*
 * test_pcplib.c - bpftraced's own PCP API functions (src/lib/pcpcompat.c)
 * against libpcp's, opened here with dlopen: identifier packing, instance
 * domain and units text over a grid, error text for every code bpftraced
 * answers with, pcp.conf values; then pcplib_load() and the forwarders.
 */
#include "testhelp.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcp/pmapi.h>

#include "pcplib.h"
#include "spawnenv.h"

extern char **environ;

static void	*real;		/* libpcp, RTLD_LOCAL: its own symbols */

static void *
real_fn(const char *name)
{
	void	*f;

	if (real == NULL)
		real = dlopen("libpcp.so.3", RTLD_NOW | RTLD_LOCAL);
	if (real == NULL)
		return NULL;
	f = dlsym(real, name);
	assert_non_null(f);
	return f;
}

#define REAL(var, name)	do {					\
	void *f_ = real_fn(name);					\
	if (f_ == NULL)							\
		skip();							\
	memcpy(&(var), &f_, sizeof(f_));				\
} while (0)

static void
ids_pack_like_libpcp(void **state)
{
	pmID		(*id_build)(unsigned, unsigned, unsigned);
	pmInDom		(*in_build)(unsigned, unsigned);
	const char	*(*in_str)(pmInDom);
	char		 want[32];

	(void)state;
	REAL(id_build, "pmID_build");
	REAL(in_build, "pmInDom_build");
	REAL(in_str, "pmInDomStr");
	for (unsigned d = 0; d < 512; d += 7)
		for (unsigned c = 0; c < 4096; c += 211)
			for (unsigned i = 0; i < 1024; i += 101) {
				pmID	 id = pmID_build(d, c, i);

				assert_int_equal(id, id_build(d, c, i));
				assert_int_equal(pmID_domain(id), d);
				assert_int_equal(pmID_cluster(id), c);
				assert_int_equal(pmID_item(id), i);
			}
	for (unsigned d = 0; d < 512; d += 5)
		for (unsigned s = 0; s < (1u << 22); s += 65537) {
			pmInDom	 in = pmInDom_build(d, s);

			assert_int_equal(in, in_build(d, s));
			assert_int_equal(pmInDom_domain(in), d);
			assert_int_equal(pmInDom_serial(in), s);
			snprintf(want, sizeof(want), "%s", in_str(in));
			assert_string_equal(pmInDomStr(in), want);
		}
	assert_string_equal(pmInDomStr(PM_INDOM_NULL), "PM_INDOM_NULL");
	assert_string_equal(pmInDomStr(pmInDom_build(151, 3)), "151.3");
}

static void
units_text_like_libpcp(void **state)
{
	char	*(*str)(const pmUnits *, char *, int);
	char	 got[80], want[80];
	long	 n = 0;

	(void)state;
	REAL(str, "pmUnitsStr_r");
	for (int ds = -3; ds <= 3; ds++)
	for (int dt = -3; dt <= 3; dt++)
	for (int dc = -3; dc <= 3; dc++)
	for (int ss = 0; ss <= 9; ss++)
	for (int st = 0; st <= 7; st++)
	for (int sc = -3; sc <= 3; sc++) {
		pmUnits	 u = { .dimSpace = ds, .dimTime = dt, .dimCount = dc,
			     .scaleSpace = ss, .scaleTime = st,
			     .scaleCount = sc };

		str(&u, want, sizeof(want));
		pmUnitsStr_r(&u, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fail_msg("units %d %d %d / %d %d %d: \"%s\", libpcp "
			    "\"%s\"", ds, dt, dc, ss, st, sc, got, want);
		n++;
	}
	assert_int_equal(n, 7 * 7 * 7 * 10 * 8 * 7);
	/* a short buffer is cut, still terminated */
	{
		pmUnits	 u = { .dimSpace = 1, .dimTime = -1,
			     .scaleSpace = PM_SPACE_KBYTE,
			     .scaleTime = PM_TIME_SEC };

		assert_string_equal(pmUnitsStr_r(&u, got, 6), "Kbyte");
		assert_string_equal(pmUnitsStr_r(&u, got, sizeof(got)),
		    "Kbyte / sec");
	}
}

static void
error_text_like_libpcp(void **state)
{
	char		*(*str)(int, char *, int);
	static const int codes[] = { 0, 5, -1, -2, -12, -111, -200, -4000,
	    -12344, -12999, -13000, PM_ERR_GENERIC, PM_ERR_NAME, PM_ERR_PMID,
	    PM_ERR_INDOM, PM_ERR_INST, PM_ERR_TEXT, PM_ERR_VALUE,
	    PM_ERR_TIMEOUT, PM_ERR_IPC, PM_ERR_NOCONTEXT, PM_ERR_PERMISSION,
	    PM_ERR_NOTCONN, PM_ERR_TYPE, PM_ERR_BADSTORE, PM_ERR_BADDERIVE,
	    PM_ERR_TOOSMALL, PM_ERR_TOOBIG, PM_ERR_NYI };
	char		 got[PM_MAXERRMSGLEN], want[PM_MAXERRMSGLEN];

	(void)state;
	REAL(str, "pmErrStr_r");
	assert_false(pcplib_loaded());		/* bpftraced's table */
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		str(codes[i], want, sizeof(want));
		assert_string_equal(pmErrStr_r(codes[i], got, sizeof(got)),
		    want);
		assert_string_equal(pmErrStr(codes[i]), want);
	}
}

static void
config_from_environment_then_file(void **state)
{
	char	 path[] = "/tmp/test_pcplib.XXXXXX", err[256];
	int	 fd;
	FILE	*f;

	(void)state;
	assert_false(pcplib_loaded());
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "# comment\nPCP_RUN_DIR_X=/nope\nPCP_RUN_DIR=/run/x\n"
	    "PCP_VERSION=9.8.7\r\n");
	fclose(f);
	setenv("PCP_CONF", path, 1);
	unsetenv("PCP_RUN_DIR");
	/* the fallback reads the daemon's copy of the environment */
	assert_int_equal(spawnenv_init(environ, "bpftrace", err, sizeof(err)), 0);
	assert_string_equal(pmGetOptionalConfig("PCP_RUN_DIR"), "/run/x");
	assert_string_equal(pmGetConfig("PCP_VERSION"), "9.8.7");
	assert_null(pmGetOptionalConfig("PCP_NOT_THERE"));
	assert_string_equal(pmGetConfig("PCP_NOT_THERE"), "");
	setenv("PCP_USER_X", "someone", 1);
	assert_null(pmGetOptionalConfig("PCP_USER_X"));	/* not copied */
	assert_int_equal(spawnenv_init(environ, "bpftrace", err, sizeof(err)), 0);
	assert_string_equal(pmGetOptionalConfig("PCP_USER_X"), "someone");
	unsetenv("PCP_USER_X");
	unsetenv("PCP_CONF");
	spawnenv_fini();
	unlink(path);
}

static void
load_then_forward(void **state)
{
	char	 err[256] = "", got[PM_MAXERRMSGLEN], want[PM_MAXERRMSGLEN];
	char	*(*str)(int, char *, int);

	(void)state;
	REAL(str, "pmErrStr_r");
	assert_string_equal(pcplib_error(), "");
	assert_int_equal(pcplib_load(err, sizeof(err)), 0);
	assert_true(pcplib_loaded());
	assert_int_equal(pcplib_load(err, sizeof(err)), 0);	/* once */
	/* now libpcp's text, also for codes outside bpftraced's table */
	str(-30000, want, sizeof(want));
	assert_string_equal(pmErrStr_r(-30000, got, sizeof(got)), want);
	assert_non_null(strstr(got, "secure sockets"));
	/* a forwarder: no context was made, so there is none to use */
	assert_true(pmUseContext(12345) < 0);
	assert_true(strlen(pmGetConfig("PCP_VERSION")) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_pack_like_libpcp),
		cmocka_unit_test(units_text_like_libpcp),
		cmocka_unit_test(error_text_like_libpcp),
		cmocka_unit_test(config_from_environment_then_file),
		cmocka_unit_test(load_then_forward),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
