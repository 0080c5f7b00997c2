/* SPDX-License-Identifier: MIT */
/*
 * btdiag.c - bpftrace's helper_error and runtime_error lines, counted.
 *
 * A map that fills up makes bpftrace 0.23+ print one helper_error line
 * per failed update (the fixture's machine: 223,952 lines, 37 MB in
 * 0.7 s):
 *   {"type": "helper_error", "msg": "Map full; ...", "helper":
 *    "map_update_elem", "retcode": -7, "line": 3, "col": 30}
 * (0.27 adds "filename"; its runtime_error lines have msg, filename,
 * line and col). They are no data: each is recognised by its first
 * member ("type" comes first in every version that prints them), counted
 * under its kind "HELPER:RETCODE" ("map_update_elem:-7"), and turned
 * into text for the kept message at most once every BTDIAG_KEEP_MS: the
 * common line costs a prefix compare and two short searches, no JSON
 * parse. A line of another shape is left to the ingester (0 back).
 * Pure: one struct btdiag per script, on the thread that reads it.
 */
#include <stdio.h>
#include <string.h>

#include "btdiag.h"

#define OTHER_KIND	"other"

void
btdiag_init(struct btdiag *bd)
{
	memset(bd, 0, sizeof(*bd));
	bd->bd_last_ms = -1;
}

void
btdiag_reset(struct btdiag *bd)
{
	for (size_t i = 0; i < bd->bd_nkinds; i++)
		bd->bd_kinds[i].k_count = 0;
	bd->bd_helper = bd->bd_runtime = bd->bd_bytes = 0;
	bd->bd_last[0] = '\0';
	bd->bd_last_ms = -1;
	bd->bd_seq++;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* p past the literal word w, or NULL */
static const char *
take(const char *p, const char *end, const char *w)
{
	size_t	 n = strlen(w);

	return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

/* 1: helper_error, 2: runtime_error, 0: another line */
static int
line_kind(const char *line, size_t len)
{
	const char	*p = line, *end = line + len;

	p = skip_ws(p, end);
	if ((p = take(p, end, "{")) == NULL)
		return 0;
	p = skip_ws(p, end);
	if ((p = take(p, end, "\"type\"")) == NULL)
		return 0;
	p = skip_ws(p, end);
	if ((p = take(p, end, ":")) == NULL)
		return 0;
	p = skip_ws(p, end);
	if (take(p, end, "\"helper_error\"") != NULL)
		return 1;
	if (take(p, end, "\"runtime_error\"") != NULL)
		return 2;
	return 0;
}

/*
 * Where the value of the member "name" starts, or NULL. A quote inside a
 * JSON string is escaped, so "\"name\":" cannot match inside one.
 */
static const char *
member(const char *line, size_t len, const char *key)
{
	const char	*end = line + len, *p = line;
	size_t		 kl = strlen(key);

	while ((p = memmem(p, (size_t)(end - p), key, kl)) != NULL) {
		const char	*v = skip_ws(p + kl, end);

		if (v < end && *v == ':')
			return skip_ws(v + 1, end);
		p += kl;
	}
	return NULL;
}

/* the integer at p (JSON number or a string of one); 0 when none */
static int
int_at(const char *p, const char *end, long long *out)
{
	int		 neg = 0, digits = 0;
	long long	 v = 0;

	if (p == NULL)
		return 0;
	if (p < end && *p == '"')
		p++;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	for (; p < end && *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
		v = v * 10 + (*p - '0');
	*out = neg ? -v : v;
	return digits > 0;
}

/*
 * The string at p into out (at most n - 1 bytes): simple escapes
 * undone, control characters and \u escapes as '?'. 0 when no string.
 */
static int
str_at(const char *p, const char *end, char *out, size_t n)
{
	size_t	 k = 0;

	out[0] = '\0';
	if (p == NULL || p >= end || *p != '"')
		return 0;
	for (p++; p < end && *p != '"' && k + 1 < n; p++) {
		char	 c = *p;

		if (c == '\\' && p + 1 < end) {
			c = *++p;
			if (c == 'u') {
				p += p + 4 < end ? 4 : 0;
				c = '?';
			} else if (c != '"' && c != '\\' && c != '/')
				c = ' ';	/* \n, \t ...: one line */
		} else if ((unsigned char)c < 0x20)
			c = '?';
		out[k++] = c;
	}
	out[k] = '\0';
	return 1;
}

/* the kind's slot for "helper:retcode", made when new */
static struct btdiag_kind *
kind_of(struct btdiag *bd, const char *helper, long long ret, int has_ret)
{
	char	 name[BTDIAG_KIND_MAX];
	size_t	 i;

	if (has_ret)
		snprintf(name, sizeof(name), "%s:%lld", helper, ret);
	else
		snprintf(name, sizeof(name), "%s", helper);
	for (i = 0; i < bd->bd_nkinds; i++)
		if (strcmp(bd->bd_kinds[i].k_name, name) == 0)
			return &bd->bd_kinds[i];
	if (bd->bd_nkinds == BTDIAG_MAX_KINDS) {
		/* full: the last slot is "other" from now on */
		snprintf(bd->bd_kinds[i].k_name, BTDIAG_KIND_MAX, "%s",
		    OTHER_KIND);
		bd->bd_nkinds++;
	}
	if (bd->bd_nkinds > BTDIAG_MAX_KINDS)
		return &bd->bd_kinds[BTDIAG_MAX_KINDS];
	snprintf(bd->bd_kinds[i].k_name, BTDIAG_KIND_MAX, "%s", name);
	bd->bd_nkinds++;
	return &bd->bd_kinds[i];
}

/* a helper's name: [A-Za-z0-9_], else "unknown" */
static void
helper_name(const char *line, size_t len, char *out, size_t n)
{
	if (!str_at(member(line, len, "\"helper\""), line + len, out, n) ||
	    out[0] == '\0' || out[strspn(out, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] != '\0')
		snprintf(out, n, "unknown");
}

/* the kept message: "helper_error: H returned R at line L col C: MSG" */
static void
keep_text(struct btdiag *bd, const char *line, size_t len, int kind,
    const char *helper, long long ret)
{
	const char	*end = line + len;
	char		 msg[BTDIAG_TEXT_MAX], where[64] = "";
	char		 t[BTDIAG_TEXT_MAX + 192];
	long long	 l, c;
	size_t		 n;

	if (int_at(member(line, len, "\"line\""), end, &l)) {
		if (!int_at(member(line, len, "\"col\""), end, &c))
			c = 0;
		snprintf(where, sizeof(where), " at line %lld col %lld", l, c);
	}
	str_at(member(line, len, "\"msg\""), end, msg, sizeof(msg));
	/* written whole, then cut to bd_last's size on purpose */
	if (kind == 1)
		snprintf(t, sizeof(t), "helper_error: %s returned %lld%s%s%s",
		    helper, ret, where, msg[0] ? ": " : "", msg);
	else
		snprintf(t, sizeof(t), "runtime_error: %s%s", msg, where);
	n = strnlen(t, sizeof(bd->bd_last) - 1);
	memcpy(bd->bd_last, t, n);
	bd->bd_last[n] = '\0';
}

int
btdiag_line(struct btdiag *bd, const char *line, size_t len, int64_t now_ms)
{
	char		 helper[BTDIAG_KIND_MAX - 24] = "";
	long long	 ret = 0;
	int		 kind = line_kind(line, len), has_ret = 0;

	if (kind == 0)
		return 0;
	if (kind == 1) {
		helper_name(line, len, helper, sizeof(helper));
		has_ret = int_at(member(line, len, "\"retcode\""), line + len,
		    &ret);
		kind_of(bd, helper, ret, has_ret)->k_count++;
		bd->bd_helper++;
	} else
		bd->bd_runtime++;
	bd->bd_bytes += len + 1;
	bd->bd_seq++;
	if (bd->bd_last_ms < 0 || now_ms - bd->bd_last_ms >= BTDIAG_KEEP_MS) {
		keep_text(bd, line, len, kind, helper, ret);
		bd->bd_last_ms = now_ms;
	}
	return 1;
}
