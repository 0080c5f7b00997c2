/* SPDX-License-Identifier: MIT */
/*
 * bterr.c - sorting bpftrace's stderr, line by line, into warnings and
 * errors. Known warnings (bterr_line answers BTERR_WARNING):
 *   - the RLIMIT_MEMLOCK line, whatever its prefix (0.17 says "ERROR:",
 *     later versions "WARNING:"): bpftrace goes on and runs;
 *   - a line with "WARNING:" (bpftrace's own) or a clang diagnostic
 *     "FILE:L:C: warning:";
 *   - after a warning with a source location ("stdin:1:25-26: WARNING:"),
 *     the source line it quotes and the marker line under it (only
 *     spaces, '~' and '^'), when they are there;
 *   - a "HINT:" line (0.24+, e.g. after "While loops are deprecated")
 *     belongs to the diagnostic before it: a warning's hint is a
 *     warning, an error's an error; with none before it, a warning.
 * The versions write these shapes (0.17 / 0.23 / 0.27, every recorded
 * stderr in tests/unit/test_bterr.c): 0.17 starts the RLIMIT line with
 * "ERROR:", 0.23 with "WARNING:"; 0.27 adds "WARNING: Could not read
 * functions from .../available_filter_functions" and "WARNING: Total
 * lost event count: N" on healthy runs, and HINT lines. The shapes do
 * not clash between versions, so one classifier serves all three.
 * Every other line is an error: bpftrace's "ERROR:" lines with their
 * source and marker, and anything else it or clang writes, such as
 * "definitions.h:2:10: fatal error: 'net/tcp_states.h' file not found"
 * after a missing #include (bpftrace 0.17 writes it without a newline
 * and exits 1). The PMDA puts all of stderr in the error metric; we keep
 * the known warnings apart and everything else there.
 * Pure: the caller keeps one struct bterr per stream.
 */
#include <string.h>

#include "bterr.h"

#define RLIMIT_TEXT	"couldn't set RLIMIT_MEMLOCK"
#define HINT_TAG	"HINT: "

/* Is s[0..n) of the form "FILE:L[:C][-R]: " (the location prefix)? */
static int
is_location(const char *s, size_t n)
{
	size_t	 digits = 0;

	if (n < 4 || s[n - 1] != ' ' || s[n - 2] != ':')
		return 0;
	n -= 2;
	while (n > 0 && ((s[n - 1] >= '0' && s[n - 1] <= '9') ||
	    s[n - 1] == '-' || s[n - 1] == ':')) {
		digits += s[n - 1] >= '0' && s[n - 1] <= '9';
		n--;
	}
	/* a file name before the numbers, none of them with a space */
	if (digits == 0 || n == 0 || s[n] != ':')
		return 0;
	return memchr(s, ' ', n) == NULL;
}

/* where tag starts in line[0..len), or -1 */
static long
find_tag(const char *line, size_t len, const char *tag)
{
	const char	*p = memmem(line, len, tag, strlen(tag));

	return p ? (long)(p - line) : -1;
}

/* a diagnostic line: its class, whether it has a location; 0 if none */
static enum bterr_class
diagnostic(const char *line, size_t len, int *located)
{
	static const struct {
		const char		*tag;
		enum bterr_class	 cl;
	} tags[] = {
		{ "WARNING:", BTERR_WARNING }, { "ERROR:", BTERR_ERROR },
		{ " warning: ", BTERR_WARNING }, { " error: ", BTERR_ERROR },
		{ " fatal error: ", BTERR_ERROR },
	};

	*located = 0;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		long	 at = find_tag(line, len, tags[i].tag);

		if (at < 0)
			continue;
		if (tags[i].tag[0] == ' ')	/* clang: "FILE:L:C: warning: " */
			at++;
		*located = is_location(line, (size_t)at);
		if (tags[i].tag[0] == ' ' && !*located)
			continue;	/* " error: " inside some other text */
		if (at != 0 && !*located)
			continue;	/* not a diagnostic of bpftrace's */
		return tags[i].cl;
	}
	return BTERR_NONE;
}

/* only spaces, '~' and '^', at least one of the last two */
static int
is_marker(const char *line, size_t len)
{
	int	 mark = 0;

	for (size_t i = 0; i < len; i++) {
		if (line[i] == '~' || line[i] == '^')
			mark = 1;
		else if (line[i] != ' ' && line[i] != '\t')
			return 0;
	}
	return mark;
}

enum bterr_class
bterr_line(struct bterr *be, const char *line, size_t len)
{
	enum bterr_class	 cl;
	int			 located;

	if (memmem(line, len, RLIMIT_TEXT, strlen(RLIMIT_TEXT)) != NULL) {
		be->be_class = BTERR_WARNING;
		be->be_cont = 0;
		return BTERR_WARNING;
	}
	if (len >= strlen(HINT_TAG) && memcmp(line, HINT_TAG,
	    strlen(HINT_TAG)) == 0) {
		be->be_cont = 0;
		if (be->be_class == BTERR_NONE)
			be->be_class = BTERR_WARNING;
		return be->be_class;
	}
	cl = diagnostic(line, len, &located);
	if (be->be_cont == 2 && cl == BTERR_NONE) {
		be->be_cont = 1;	/* the source line quoted */
		return be->be_class;
	}
	if (be->be_cont == 1 && is_marker(line, len)) {
		be->be_cont = 0;	/* the marker under it */
		return be->be_class;
	}
	be->be_cont = 0;
	if (cl == BTERR_NONE) {		/* not a known warning: an error */
		be->be_class = BTERR_ERROR;
		return BTERR_ERROR;
	}
	be->be_class = cl;
	be->be_cont = located ? 2 : 0;
	return cl;
}
