/* SPDX-License-Identifier: MIT */
/*
 * metric_store.h - what a metric's store (m_store) did, in PCP's words,
 * for the dialects that answer with a PCP code: pmda_store.c (pmcd's
 * clients) and api.c (pmwebd's error answers). Defined in registry.c,
 * beside struct metric; enum store_result is in bpftraced.h.
 */
#ifndef BT_METRIC_STORE_H
#define BT_METRIC_STORE_H

#include "bpftraced.h"

int	 metric_store_pmcode(enum store_result rv);

#endif /* BT_METRIC_STORE_H */
