/* SPDX-License-Identifier: MIT */
/*
 * fuzz_btscript.c - libFuzzer harness for the bpftrace script tokenizer
 * and rewriter (src/bpftrace/btscript.c): the input is a script, as a client would
 * register it. bts_analyze() must accept or refuse it without a memory
 * error; when it accepts, bts_rewrite() must keep the code as its prefix,
 * and the rewritten code must analyse to the same variables (the appended
 * print block defines none; @output aside, see below).
 */
#include "fuzzhelp.h"
#include "btscript.h"
#include "log.h"

FZ_INITIALIZE_QUIET_LOG()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*code = (const char *)data;
	struct bts_info	 info, again;
	char		 err[256], *run, *name;
	size_t		 runlen = 0;

	if (bts_analyze(code, size, &info, err, sizeof(err)) == -1) {
		FZ_CHECK(info.i_vars == NULL && info.i_nvars == 0,
		    "a refused script left variables behind");
		FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0],
		    "refused without a reason");
		return 0;
	}
	FZ_CHECK(info.i_nvars <= 256 + 1, "%zu variables", info.i_nvars);
	for (size_t i = 0; i < info.i_nvars; i++)
		FZ_CHECK(info.i_vars[i].v_name != NULL &&
		    info.i_vars[i].v_name[0] != '\0', "variable %zu unnamed", i);
	if (info.i_meta.m_name)
		FZ_CHECK(bts_name_valid(info.i_meta.m_name),
		    "accepted name \"%s\" is not valid", info.i_meta.m_name);

	run = bts_rewrite(code, size, &info, info.i_meta.m_interval_ms,
	    &runlen);
	FZ_CHECK(run != NULL, "rewrite failed");
	FZ_CHECK(runlen >= size && memcmp(run, code, size) == 0,
	    "the rewrite does not start with the code");
	FZ_CHECK(run[runlen] == '\0', "rewrite not NUL-terminated");
	/*
	 * Code that ends inside an unclosed "print(" or "printf(" gets the
	 * block as arguments: bpftrace refuses that, and the analysis may
	 * then see output. So @output is left out of the comparison.
	 */
	if (bts_analyze(run, runlen, &again, err, sizeof(err)) == 0) {
		size_t	 i = 0, j = 0;

		for (;; i++, j++) {
			while (i < info.i_nvars &&
			    info.i_vars[i].v_kind == BTS_OUTPUT)
				i++;
			while (j < again.i_nvars &&
			    again.i_vars[j].v_kind == BTS_OUTPUT)
				j++;
			if (i == info.i_nvars || j == again.i_nvars)
				break;
			FZ_CHECK(strcmp(again.i_vars[j].v_name,
			    info.i_vars[i].v_name) == 0 &&
			    again.i_vars[j].v_kind == info.i_vars[i].v_kind,
			    "rewritten code changed variable %s",
			    info.i_vars[i].v_name);
		}
		FZ_CHECK(i == info.i_nvars && j == again.i_nvars,
		    "rewritten code has %zu variables, not %zu",
		    again.i_nvars, info.i_nvars);
		bts_info_free(&again);
	} else {
		FZ_CHECK(0, "rewritten code refused: %s", err);
	}
	free(run);
	bts_info_free(&info);

	/* the name check on any text (NUL-terminated, bounded) */
	name = fz_strndup(data, size < 80 ? size : 80);
	(void)bts_name_valid(name);
	free(name);
	return 0;
}
