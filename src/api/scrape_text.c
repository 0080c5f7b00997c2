/* SPDX-License-Identifier: MIT */
/*
 * scrape_text.c - the text of one /metrics answer: Prometheus and
 * OpenMetrics names, escaped label values, numbers, timestamps and the
 * family header ("# PCP5", HELP, TYPE). Shared by api_metrics.c (the
 * registry's metrics) and scrape_pmcd.c (pmcd's), so neither calls the
 * other for it. Threads: HTTP workers, on the request's own struct scrape.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "scrape.h"
#include "util.h"

/* --- names, escaping, numbers --- */

/* pmproxy's mapping ('.' to '_'), plus anything else invalid to '_' */
void
scrape_name(struct buf *b, const char *name)
{
	for (const char *p = name; *p; p++) {
		char	 c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9' && p != name) || c == '_' ||
		    c == ':'))
			c = '_';
		buf_putc(b, c);
	}
}

static void
put_name_n(struct buf *b, const char *name, size_t n)
{
	char	 tmp[512];

	snprintf(tmp, sizeof(tmp), "%.*s", (int)n, name);
	scrape_name(b, tmp);
}

/*
 * Escaped text: '\\' and '\n' always, '"' in label values (and in
 * OpenMetrics HELP); invalid UTF-8 bytes become U+FFFD.
 */
static void
put_escaped(struct buf *b, const char *s, size_t n, int quote)
{
	size_t	 i = 0;

	while (i < n) {
		unsigned char	 c = (unsigned char)s[i];

		if (c == '\\') {
			buf_puts(b, "\\\\");
			i++;
		} else if (c == '\n') {
			buf_puts(b, "\\n");
			i++;
		} else if (c == '"' && quote) {
			buf_puts(b, "\\\"");
			i++;
		} else if (c < 0x80) {
			buf_putc(b, (char)c);
			i++;
		} else {
			size_t	 k = 1;

			while (k < 4 && i + k < n &&
			    ((unsigned char)s[i + k] & 0xC0) == 0x80)
				k++;
			while (k > 0 && !utf8_valid(s + i, k))
				k--;
			if (k == 0) {
				buf_puts(b, "\xEF\xBF\xBD");
				i++;
			} else {
				buf_append(b, s + i, k);
				i += k;
			}
		}
	}
}

void
scrape_label(struct buf *b, int *first, const char *key, const char *val,
    size_t vlen)
{
	buf_putc(b, *first ? '{' : ',');
	*first = 0;
	scrape_name(b, key);
	buf_puts(b, "=\"");
	put_escaped(b, val, vlen, 1);
	buf_putc(b, '"');
}

static void
put_float(struct buf *b, double d, int om)
{
	if (isnan(d))
		buf_puts(b, "NaN");
	else if (isinf(d))
		buf_puts(b, d > 0 ? "+Inf" : "-Inf");
	else if (om && d == floor(d) && fabs(d) < 1e15)
		buf_printf(b, "%.1f", d);
	else
		buf_printf(b, "%.17g", d);
}

/* a value as pmproxy writes it (its fetch encoding) */
void
scrape_value(struct buf *b, int type, const union value *v, int om)
{
	switch (type) {
	case PM_TYPE_32:
		buf_printf(b, "%d", (int32_t)v->i);
		break;
	case PM_TYPE_U32:
		buf_printf(b, "%u", (uint32_t)v->u);
		break;
	case PM_TYPE_64:
		buf_printf(b, "%" PRId64, v->i);
		break;
	case PM_TYPE_U64:
		buf_printf(b, "%" PRIu64, v->u);
		break;
	case PM_TYPE_FLOAT:
		if (isfinite(v->d))
			buf_printf(b, "%.8g", (double)(float)v->d);
		else
			put_float(b, v->d, om);
		break;
	default:
		if (isfinite(v->d))
			buf_printf(b, "%.16g", v->d);
		else
			put_float(b, v->d, om);
		break;
	}
}

void
scrape_time(struct scrape *sc, const struct timespec *ts)
{
	if (!sc->times)
		return;
	if (sc->om)
		buf_printf(&sc->out, " %lld.%03ld", (long long)ts->tv_sec,
		    ts->tv_nsec / 1000000);
	else
		buf_printf(&sc->out, " %lld", (long long)ts->tv_sec * 1000 +
		    ts->tv_nsec / 1000000);
}

/* does the Prometheus form of name end in "_total" ("x.total" too)? */
static int
ends_total(const char *name)
{
	size_t	 n = strlen(name);
	char	 c;

	if (n <= 6 || strcmp(name + n - 5, "total") != 0)
		return 0;
	c = name[n - 6];
	return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == ':');
}

/*
 * The family header of one metric; type NULL: from its semantics. In
 * OpenMetrics a counter's samples are FAMILY_total: a PCP name that ends
 * in _total is the sample name as it is (the family drops the suffix),
 * any other gets "_total" appended (returned, for the caller's samples).
 */
const char *
scrape_head_as(struct scrape *sc, const struct scrape_meta *mt,
    const char *type)
{
	struct buf	*b = &sc->out;
	char		 units[64];
	size_t		 n = strlen(mt->name);
	const char	*suffix = "";

	if (type == NULL)
		type = mt->sem == PM_SEM_COUNTER ? "counter" : "gauge";
	if (sc->om && strcmp(type, "counter") == 0) {
		if (ends_total(mt->name))
			n -= 6;
		else
			suffix = "_total";
	}
	if (!sc->om) {
		bt_units_str(&mt->units, units, sizeof(units));
		buf_printf(b, "# PCP5 %s %u.%u.%u %s ", mt->name,
		    pmID_domain(mt->pmid), pmID_cluster(mt->pmid),
		    pmID_item(mt->pmid), bt_type_str(mt->type));
		if (mt->indom == PM_INDOM_NULL)
			buf_puts(b, "PM_INDOM_NULL");
		else
			buf_printf(b, "%u.%u", pmInDom_domain(mt->indom),
			    pmInDom_serial(mt->indom));
		buf_printf(b, " %s %s\n", bt_sem_str(mt->sem), units);
	}
	buf_puts(b, "# HELP ");
	put_name_n(b, mt->name, n);
	buf_putc(b, ' ');
	if (mt->oneline)
		put_escaped(b, mt->oneline, strlen(mt->oneline), sc->om);
	buf_puts(b, "\n# TYPE ");
	put_name_n(b, mt->name, n);
	buf_printf(b, " %s\n", type);
	return suffix;
}

const char *
scrape_head(struct scrape *sc, const struct scrape_meta *mt)
{
	return scrape_head_as(sc, mt, NULL);
}
