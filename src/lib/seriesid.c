/* SPDX-License-Identifier: MIT */
/*
 * seriesid.c - "series" and "source" identifiers as pmproxy (libpcp_web)
 * derives them, so the same metric has the same id from bpftraced and
 * from pmproxy, and pmseries/Grafana can match the two.
 *
 * The recipe (PCP 6 libpcp_web, checked against the live pmproxy 6.0.3):
 * the 40-hex SHA-1 of a small JSON text,
 *   metric:  {"series":"metric","name":N,"labels":L,"semantics":S,
 *             "type":T,"units":U}
 *   source:  {"series":"source","labels":L}
 * where L is the merged identifying labels (context, domain, indom,
 * cluster, item; optional labels left out) as pmMergeLabelSets writes
 * them (sorted keys, no spaces) or null when there are none, and S, T, U
 * are libpcp's pmSemStr, pmTypeStr (upper case: "U64", "FLOAT") and
 * pmUnitsStr ("" for no units). N is the name as is (no escaping: PMNS
 * names have no quotes or backslashes). The JSON the answer shows under
 * "labels" is that same L, so the id is computed from the text written.
 *
 * No state; no allocation.
 */
#include <string.h>

#include "buf.h"
#include "pcplib.h"
#include "seriesid.h"
#include "util.h"

#define SERIESID_LEN	40

/* pmTypeStr's spelling (pmproxy's answers use it in lower case) */
static const char *
type_name(int type)
{
	static const char *const names[] = { "32", "U32", "64", "U64",
	    "FLOAT", "DOUBLE", "STRING", "AGGREGATE", "AGGREGATE_STATIC",
	    "EVENT", "HIGHRES_EVENT" };

	if (type >= 0 && type < (int)(sizeof(names) / sizeof(names[0])))
		return names[type];
	if (type == PM_TYPE_NOSUPPORT)
		return "NO_SUPPORT";
	if (type == PM_TYPE_UNKNOWN)
		return "UNKNOWN";
	return "???";
}

/* pmSemStr's spelling */
static const char *
sem_name(int sem)
{
	switch (sem) {
	case PM_SEM_COUNTER:	return "counter";
	case PM_SEM_INSTANT:	return "instant";
	case PM_SEM_DISCRETE:	return "discrete";
	default:		return "???";
	}
}

static void
add_str(struct sha1 *c, const char *s)
{
	sha1_add(c, s, strlen(s));
}

void
seriesid_metric(const char *name, const char *labels, size_t labels_len,
    int type, int sem, const pmUnits *units, char out[41])
{
	struct sha1	 c;
	char		 ustr[64];
	pmUnits		 u = *units;

	if (pmUnitsStr_r(&u, ustr, (int)sizeof(ustr)) == NULL)
		ustr[0] = '\0';
	sha1_init(&c);
	add_str(&c, "{\"series\":\"metric\",\"name\":\"");
	add_str(&c, name);
	add_str(&c, "\",\"labels\":");
	if (labels && labels_len)
		sha1_add(&c, labels, labels_len);
	else
		add_str(&c, "null");
	add_str(&c, ",\"semantics\":\"");
	add_str(&c, sem_name(sem));
	add_str(&c, "\",\"type\":\"");
	add_str(&c, type_name(type));
	add_str(&c, "\",\"units\":\"");
	add_str(&c, ustr);
	add_str(&c, "\"}");
	sha1_end_hex(&c, out);
}

void
seriesid_source(const char *members, char out[41])
{
	struct sha1	 c;

	sha1_init(&c);
	add_str(&c, "{\"series\":\"source\",\"labels\":");
	if (members && *members) {
		add_str(&c, "{");
		add_str(&c, members);
		add_str(&c, "}");
	} else
		add_str(&c, "null");
	add_str(&c, "}");
	sha1_end_hex(&c, out);
}

size_t
seriesid_slot(struct buf *b)
{
	size_t	 at = b->b_len;

	buf_printf(b, "%0*d", SERIESID_LEN, 0);
	return at;
}

void
seriesid_fill(struct buf *b, size_t slot, size_t labels_at,
    const char *name, int type, int sem, const pmUnits *units)
{
	char	 id[41];

	if (b->b_failed || labels_at > b->b_len ||
	    slot + SERIESID_LEN > labels_at)
		return;		/* the answer fails as a whole */
	seriesid_metric(name, b->b_data + labels_at, b->b_len - labels_at,
	    type, sem, units, id);
	memcpy(b->b_data + slot, id, SERIESID_LEN);
}
