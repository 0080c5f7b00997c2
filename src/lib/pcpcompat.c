/* SPDX-License-Identifier: MIT */
/*
 * pcpcompat.c - the PCP API functions bpftraced needs whether or not
 * libpcp is loaded (pcplib.h): identifier packing, units and instance
 * domain text, error text and pcp.conf values. Their results equal
 * libpcp 6's; tests/unit/test_pcplib.c compares them with the real ones.
 *
 * Lock story: the pcp.conf cache (conf) is guarded by conf.lock; its
 * entries live until exit, so returned pointers stay valid. The error
 * text of pmErrStr is per thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcp/pmapi.h>

#include "pcplib.h"
#include "spawnenv.h"

/* ---- identifiers: 9-bit domain, 12-bit cluster, 10-bit item ---- */

pmID
pmID_build(unsigned int domain, unsigned int cluster, unsigned int item)
{
	return ((domain & 0x1ffu) << 22) | ((cluster & 0xfffu) << 10) |
	    (item & 0x3ffu);
}

unsigned int
pmID_domain(pmID id)
{
	return (id >> 22) & 0x1ffu;
}

unsigned int
pmID_cluster(pmID id)
{
	return (id >> 10) & 0xfffu;
}

unsigned int
pmID_item(pmID id)
{
	return id & 0x3ffu;
}

/* ---- instance domains: 9-bit domain, 22-bit serial ---- */

pmInDom
pmInDom_build(unsigned int domain, unsigned int serial)
{
	return ((domain & 0x1ffu) << 22) | (serial & 0x3fffffu);
}

unsigned int
pmInDom_domain(pmInDom indom)
{
	return (indom >> 22) & 0x1ffu;
}

unsigned int
pmInDom_serial(pmInDom indom)
{
	return indom & 0x3fffffu;
}

const char *
pmInDomStr(pmInDom indom)
{
	static _Thread_local char	 text[32];

	if (indom == PM_INDOM_NULL)
		return "PM_INDOM_NULL";
	snprintf(text, sizeof(text), "%u.%u", pmInDom_domain(indom),
	    pmInDom_serial(indom));
	return text;
}

/* ---- units: "Kbyte / sec", "count x 10^3", "x 10" ---- */

static const char *
space_name(int scale, char *tmp, size_t len)
{
	static const char *const names[] = { "byte", "Kbyte", "Mbyte",
	    "Gbyte", "Tbyte", "Pbyte", "Ebyte", "Zbyte", "Ybyte" };

	if (scale >= 0 && scale < (int)(sizeof(names) / sizeof(names[0])))
		return names[scale];
	snprintf(tmp, len, "space-%d", scale);
	return tmp;
}

static const char *
time_name(int scale, char *tmp, size_t len)
{
	static const char *const names[] = { "nanosec", "microsec",
	    "millisec", "sec", "min", "hour" };

	if (scale >= 0 && scale < (int)(sizeof(names) / sizeof(names[0])))
		return names[scale];
	snprintf(tmp, len, "time-%d", scale);
	return tmp;
}

static const char *
count_name(int scale, char *tmp, size_t len)
{
	if (scale == 0)
		return "count";
	if (scale == 1)
		snprintf(tmp, len, "count x 10");
	else
		snprintf(tmp, len, "count x 10^%d", scale);
	return tmp;
}

/* Appends "name" or "name^|dim|" and a space when dim has sign sign. */
static void
put_dim(char *buf, size_t len, size_t *off, int dim, int sign,
    const char *name)
{
	int	 n, mag = dim < 0 ? -dim : dim;

	if (dim == 0 || (dim > 0) != (sign > 0) || *off >= len)
		return;
	if (mag == 1)
		n = snprintf(buf + *off, len - *off, "%s ", name);
	else
		n = snprintf(buf + *off, len - *off, "%s^%d ", name, mag);
	if (n > 0)
		*off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

char *
pmUnitsStr_r(const pmUnits *pu, char *buf, int buflen)
{
	char		 sb[24], tb[24], cb[24];
	const char	*sp = space_name(pu->scaleSpace, sb, sizeof(sb));
	const char	*tp = time_name(pu->scaleTime, tb, sizeof(tb));
	const char	*cp = count_name(pu->scaleCount, cb, sizeof(cb));
	size_t		 len = buflen > 0 ? (size_t)buflen : 0, off = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	put_dim(buf, len, &off, pu->dimSpace, 1, sp);
	put_dim(buf, len, &off, pu->dimTime, 1, tp);
	put_dim(buf, len, &off, pu->dimCount, 1, cp);
	if ((pu->dimSpace < 0 || pu->dimTime < 0 || pu->dimCount < 0) &&
	    off + 2 < len) {
		memcpy(buf + off, "/ ", 3);
		off += 2;
		put_dim(buf, len, &off, pu->dimSpace, -1, sp);
		put_dim(buf, len, &off, pu->dimTime, -1, tp);
		put_dim(buf, len, &off, pu->dimCount, -1, cp);
	}
	if (off > 0) {
		if (buf[off - 1] == ' ')	/* the last space (not cut) */
			buf[off - 1] = '\0';
	}
	else if (pu->scaleCount == 1)		/* no dimension, a scale */
		snprintf(buf, len, "x 10");
	else if (pu->scaleCount != 0)
		snprintf(buf, len, "x 10^%d", pu->scaleCount);
	return buf;
}

/* ---- error text ---- */

static const struct {
	int		 code;
	const char	*text;
} errtab[] = {
	{ PM_ERR_GENERIC, "Generic error, already reported above" },
	{ PM_ERR_NAME, "Unknown metric name" },
	{ PM_ERR_PMID, "Unknown or illegal metric identifier" },
	{ PM_ERR_INDOM, "Unknown or illegal instance domain identifier" },
	{ PM_ERR_INST, "Unknown or illegal instance identifier" },
	{ PM_ERR_TEXT, "One-line or help text is not available" },
	{ PM_ERR_VALUE, "Missing metric value(s)" },
	{ PM_ERR_TIMEOUT, "Timeout waiting for a response from PMCD" },
	{ PM_ERR_IPC, "IPC protocol failure" },
	{ PM_ERR_NOCONTEXT, "Attempt to use an illegal context" },
	{ PM_ERR_PERMISSION, "No permission to perform requested operation" },
	{ PM_ERR_NOTCONN, "Not Connected" },
	{ PM_ERR_TYPE, "Unknown or illegal metric type" },
	{ PM_ERR_BADSTORE, "Bad input to pmstore" },
	{ PM_ERR_BADDERIVE, "Derived metric definition failed" },
	{ PM_ERR_TOOSMALL, "Insufficient elements in list" },
	{ PM_ERR_TOOBIG, "Result size exceeded" },
	{ PM_ERR_NYI, "Functionality not yet implemented" },
};

char *
pmErrStr_r(int code, char *buf, int buflen)
{
	size_t	 len = buflen > 0 ? (size_t)buflen : 0;
	char	 tmp[128];

	if (len == 0 || pcplib_errstr_r(code, buf, buflen) != NULL)
		return buf;
	if (code == 0) {
		snprintf(buf, len, "No error");
		return buf;
	}
	for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (errtab[i].code == code) {
			snprintf(buf, len, "%s", errtab[i].text);
			return buf;
		}
	if (code < 0 && code > -PM_ERR_BASE)	/* -errno */
		snprintf(buf, len, "%s", strerror_r(-code, tmp, sizeof(tmp)));
	else
		snprintf(buf, len, "No such PMAPI error code (%d)", code);
	return buf;
}

char *
pmErrStr(int code)
{
	static _Thread_local char	 text[PM_MAXERRMSGLEN];

	return pmErrStr_r(code, text, sizeof(text));
}

/* ---- pcp.conf: the environment first, then $PCP_CONF or /etc ---- */

struct conf_ent {
	struct conf_ent	*next;
	char		*name;
	char		*value;		/* NULL: not set anywhere */
};

static struct {
	pthread_mutex_t	 lock;
	struct conf_ent	*head;
} conf = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* name's value in the pcp.conf file, malloc'd; NULL if absent. */
static char *
conf_file_value(const char *name)
{
	const char	*path = spawnenv_get("PCP_CONF");
	size_t		 nlen = strlen(name);
	char		 line[1024], *v = NULL;
	FILE		*f;

	if (path == NULL || *path == '\0')
		path = "/etc/pcp.conf";
	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	while (v == NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, nlen) == 0 && line[nlen] == '=') {
			line[strcspn(line, "\r\n")] = '\0';
			v = strdup(line + nlen + 1);
		}
	fclose(f);
	return v;
}

static struct conf_ent *
conf_lookup_locked(const char *name)
{
	struct conf_ent	*e;

	for (e = conf.head; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->name = strdup(name)) == NULL) {
		free(e);
		return NULL;
	}
	e->value = conf_file_value(name);
	e->next = conf.head;
	conf.head = e;
	return e;
}

char *
pmGetOptionalConfig(const char *name)
{
	struct conf_ent	*e;
	char		*v;

	if ((v = pcplib_config(name)) != NULL || pcplib_loaded())
		return v;
	if ((v = (char *)spawnenv_get(name)) != NULL)
		return v;
	pthread_mutex_lock(&conf.lock);
	e = conf_lookup_locked(name);
	v = e != NULL ? e->value : NULL;
	pthread_mutex_unlock(&conf.lock);
	return v;
}

/* libpcp's value; unset: "" (PCP_VERSION: the version built against). */
char *
pmGetConfig(const char *name)
{
	static _Thread_local char	 built[16];
	char		*v = pmGetOptionalConfig(name);

	if (v != NULL)
		return v;
	if (strcmp(name, "PCP_VERSION") != 0)
		return "";
	snprintf(built, sizeof(built), "%d.%d.%d", PM_VERSION_CURRENT >> 16,
	    (PM_VERSION_CURRENT >> 8) & 0xff, PM_VERSION_CURRENT & 0xff);
	return built;
}
