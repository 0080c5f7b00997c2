/* SPDX-License-Identifier: MIT */
/*
 * btdiag.h - the helper_error and runtime_error lines bpftrace prints on
 * stdout (btdiag.c): counted per kind, the last one kept as text, at a
 * cost small enough for the hundreds of thousands a second a full map
 * makes bpftrace 0.23+ print.
 */
#ifndef BT_BTDIAG_H
#define BT_BTDIAG_H

#include <stddef.h>
#include <stdint.h>

#define BTDIAG_MAX_KINDS	16	/* helper:retcode kinds kept apart; the
					   rest are counted under "other" */
#define BTDIAG_KIND_MAX		64	/* a kind's name, with its NUL */
#define BTDIAG_KEEP_MS		1000	/* the kept message changes at most
					   this often */
#define BTDIAG_TEXT_MAX		256	/* the kept message, with its NUL */

struct btdiag_kind {
	char		 k_name[BTDIAG_KIND_MAX];	/* "map_update_elem:-7" */
	uint64_t	 k_count;
};

/*
 * One script's counts. The kinds (names and their order, which is their
 * instance id) last as long as the script; btdiag_reset() zeroes the
 * counts and the kept message only (a restart).
 */
struct btdiag {
	struct btdiag_kind bd_kinds[BTDIAG_MAX_KINDS + 1];	/* + "other" */
	size_t		 bd_nkinds;
	uint64_t	 bd_helper;	/* helper_error lines */
	uint64_t	 bd_runtime;	/* runtime_error lines */
	uint64_t	 bd_bytes;	/* bytes of both, newlines included */
	char		 bd_last[BTDIAG_TEXT_MAX];	/* "" until one came */
	int64_t		 bd_last_ms;	/* when bd_last was set; -1: never */
	uint64_t	 bd_seq;	/* moves with every counted line */
};

void	 btdiag_init(struct btdiag *bd);
void	 btdiag_reset(struct btdiag *bd);

/*
 * One stdout line (without its '\n'), at now_ms (monotonic). Returns 1
 * when it was a helper_error or runtime_error line (counted; the caller
 * need not parse it again), 0 for anything else (untouched).
 */
int	 btdiag_line(struct btdiag *bd, const char *line, size_t len,
	    int64_t now_ms);

#endif
