/* SPDX-License-Identifier: MIT */
/*
 * scrape.h - one /metrics answer being written (api_metrics.c), shared
 * with the part that writes pmcd's metrics into it (scrape_pmcd.c) and
 * the text writer both use (scrape_text.c).
 * A struct scrape lives on one HTTP worker's stack for one request.
 */
#ifndef BT_SCRAPE_H
#define BT_SCRAPE_H

#include "buf.h"
#include "http.h"
#include "registry.h"

#define SCRAPE_MAX_SOURCES	64

struct scrape {
	struct httpreq	*hr;
	struct reader	 rd;		/* --auth-reads: who scrapes */
	struct ns	*ns;
	struct buf	 out;
	int		 om;		/* OpenMetrics */
	int		 times;
	int		 pmcd_err;	/* pmcd failed: pmcd_error_text() */
	struct snapcache snaps;		/* one snapshot per source */
	struct snapcache_slot snap_slot[SCRAPE_MAX_SOURCES];
};

/* what a family's header says about one metric */
struct scrape_meta {
	const char	*name;		/* PCP name */
	pmID		 pmid;
	int		 type;
	pmInDom		 indom;
	int		 sem;
	pmUnits		 units;
	const char	*oneline;	/* NULL: empty HELP */
};

/* scrape_text.c: the answer's text */
void	scrape_name(struct buf *b, const char *name);
void	scrape_label(struct buf *b, int *first, const char *key,
	    const char *val, size_t vlen);
void	scrape_value(struct buf *b, int type, const union value *v, int om);
void	scrape_time(struct scrape *sc, const struct timespec *ts);
/* "# PCP5" (text form), HELP and TYPE; the suffix every sample takes */
const char *scrape_head(struct scrape *sc, const struct scrape_meta *mt);
/* the same with the TYPE given ("histogram"); NULL: from the semantics */
const char *scrape_head_as(struct scrape *sc, const struct scrape_meta *mt,
	    const char *type);

/*
 * pmcd's metrics at or below name into sc (scrape_pmcd.c): how many
 * metrics were found (0: none there), -1 when pmcd failed (sc->pmcd_err
 * set) or memory ran out.
 */
int	scrape_pmcd(struct scrape *sc, const char *name);

/* a label name, for pmproxy's label order (scrape_order.c) */
struct scrape_lkey {
	const char	*name;
	size_t		 len;
};

uint64_t scrape_siphash12(const void *data, size_t len);
int	scrape_label_order(const struct scrape_lkey *keys, size_t n,
	    size_t *order);

#endif
