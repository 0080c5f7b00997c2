/* SPDX-License-Identifier: MIT */
/*
 * bterr.h - which lines of bpftrace's stderr are warnings and which are
 * errors (bterr.c).
 */
#ifndef BT_BTERR_H
#define BT_BTERR_H

#include <stddef.h>

enum bterr_class { BTERR_NONE, BTERR_WARNING, BTERR_ERROR };

/* what one line tells about the next ones; zero it before the first */
struct bterr {
	enum bterr_class	 be_class;	/* of the last diagnostic */
	int			 be_cont;	/* its source and marker lines
						   still to come (2, 1, 0) */
};

enum bterr_class	 bterr_line(struct bterr *be, const char *line,
			    size_t len);

#endif
