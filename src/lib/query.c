/* SPDX-License-Identifier: MIT */
/*
 * query.c - strict parsing of query strings and form bodies
 * (application/x-www-form-urlencoded). Malformed percent-escapes and NUL
 * bytes are errors (a 400 upstream), never silently repaired. The first
 * occurrence of a key wins, as in pmproxy's parameter dictionary.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
params_init(struct params *ps, int max)
{
	memset(ps, 0, sizeof(*ps));
	ps->max = max;
}

void
params_free(struct params *ps)
{
	for (int i = 0; i < ps->n; i++) {
		free(ps->v[i].p_key);
		free(ps->v[i].p_val);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = ps->cap = 0;
}

/*
 * Decode s[0..n) ('+' is a space). Caller frees *out. Returns -1 for a bad
 * escape or an encoded NUL, -2 on allocation failure.
 */
int
pct_decode(const char *s, size_t n, char **out, size_t *outlen)
{
	char	*d;
	size_t	 i, j = 0;

	if ((d = malloc(n + 1)) == NULL)
		return -2;
	for (i = 0; i < n; i++) {
		int	 hi, lo;

		if (s[i] == '+') {
			d[j++] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= n)
				goto bad;
			hi = hex_value((unsigned char)s[i + 1]);
			lo = hex_value((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			d[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '\0') {
			goto bad;
		} else {
			d[j++] = s[i];
		}
	}
	d[j] = '\0';
	*out = d;
	if (outlen)
		*outlen = j;
	return 0;
bad:
	free(d);
	return -1;
}

/* Add a parameter unless the key is already present. Takes copies. */
int
params_set(struct params *ps, const char *key, const char *val, size_t vlen)
{
	struct param	*p;

	if (params_find(ps, key) != NULL)
		return 0;
	if (ps->max && ps->n >= ps->max)
		return -1;
	if (ps->n == ps->cap) {
		int	 ncap = ps->cap ? ps->cap * 2 : 8;

		if ((p = realloc(ps->v, (size_t)ncap * sizeof(*p))) == NULL)
			return -1;
		ps->v = p;
		ps->cap = ncap;
	}
	p = &ps->v[ps->n];
	if ((p->p_key = strdup(key)) == NULL)
		return -1;
	if ((p->p_val = malloc(vlen + 1)) == NULL) {
		free(p->p_key);
		return -1;
	}
	memcpy(p->p_val, val, vlen);
	p->p_val[vlen] = '\0';
	p->p_vlen = vlen;
	ps->n++;
	return 0;
}

/* Parse "a=1&b=2"; on error err says what was wrong. */
int
params_parse(struct params *ps, const char *qs, size_t len, char *err,
    size_t errlen)
{
	size_t	 i = 0;

	while (i < len) {
		size_t	 end = i, eq;
		char	*key = NULL, *val = NULL;
		size_t	 vlen = 0;
		int	 rv;

		while (end < len && qs[end] != '&')
			end++;
		for (eq = i; eq < end && qs[eq] != '='; eq++)
			;
		if (end == i) {		/* empty segment: "a=1&&b=2" */
			i = end + 1;
			continue;
		}
		rv = pct_decode(qs + i, eq - i, &key, NULL);
		if (rv == 0)
			rv = eq < end ? pct_decode(qs + eq + 1, end - eq - 1,
			    &val, &vlen) : pct_decode("", 0, &val, &vlen);
		if (rv != 0) {
			free(key);
			seterr(err, errlen, rv == -2 ? "out of memory" :
			    "malformed percent-encoding in query parameter");
			return -1;
		}
		rv = params_set(ps, key, val, vlen);
		free(key);
		free(val);
		if (rv == -1) {
			seterr(err, errlen, "too many query parameters");
			return -1;
		}
		i = end + 1;
	}
	return 0;
}

const struct param *
params_find(const struct params *ps, const char *key)
{
	for (int i = 0; i < ps->n; i++)
		if (strcmp(ps->v[i].p_key, key) == 0)
			return &ps->v[i];
	return NULL;
}

const char *
params_get(const struct params *ps, const char *key)
{
	const struct param	*p = params_find(ps, key);

	return p ? p->p_val : NULL;
}
