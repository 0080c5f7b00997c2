/* SPDX-License-Identifier: MIT */
/*
 * seriesid.h - pmproxy's identifiers, computed the way libpcp_web does,
 * so a metric has one series id whether bpftraced or pmproxy serves it.
 */
#ifndef BT_SERIESID_H
#define BT_SERIESID_H

#include <stddef.h>

#include <pcp/pmapi.h>

struct buf;

/* a metric's "series": labels is the JSON object of its identifying
   labels exactly as the answer shows them (labels_len bytes; NULL: none) */
void	 seriesid_metric(const char *name, const char *labels,
	    size_t labels_len, int type, int sem, const pmUnits *units,
	    char out[41]);

/* a context's "source": members is the context labels' JSON object
   without its braces ("\"domainname\":\"x\",\"hostname\":...") */
void	 seriesid_source(const char *members, char out[41]);

/*
 * In an answer being written: seriesid_slot() writes a 40-character
 * placeholder and returns where it is; once the metric's labels are in
 * b (from labels_at to the end), seriesid_fill() puts the id there.
 */
size_t	 seriesid_slot(struct buf *b);
void	 seriesid_fill(struct buf *b, size_t slot, size_t labels_at,
	    const char *name, int type, int sem, const pmUnits *units);

#endif
