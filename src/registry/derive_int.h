/* SPDX-License-Identifier: MIT */
/*
 * derive_int.h - private to the derived metrics: the expression tree that
 * derive.c parses, derive_bind.c types (d_desc, the scale factors) and
 * derive_eval.c evaluates. A tree is built by one thread and then only
 * read; a bound tree is its caller's own copy.
 */
#ifndef BT_DERIVE_INT_H
#define BT_DERIVE_INT_H

#include "registry.h"


/* a parse error's text: the message quotes the name and the expression
   (each at most DERIVE_MAX_EXPR bytes) with a marker line under it */
#define DERIVE_ERR_MAX		(3 * DERIVE_MAX_EXPR + 1024)

enum dop { D_INT, D_DBL, D_NAME, D_NEG, D_ADD, D_SUB, D_MUL, D_DIV,
	D_RATE };

struct dexpr {
	enum dop	 d_op;
	union value	 d_num;		/* D_INT (u) / D_DBL (d) */
	char		*d_name;	/* D_NAME */
	struct dexpr	*d_l, *d_r;
	/* filled by derive_bind(): each node's descriptor and scaling */
	struct ddesc	 d_desc;
	double		 d_lmul, d_rmul; /* operand scale factors */
	/* D_RATE: d_lmul scales a time counter's rate to seconds/second */
};

#endif
