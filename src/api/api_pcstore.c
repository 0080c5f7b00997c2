/* SPDX-License-Identifier: MIT */
/*
 * api_pcstore.c - /pmapi/store of a metric pmcd serves (sample.write_me,
 * sample.colour, pmcd.control.*): passed through to pmcd with pmStore,
 * under the rules of the stores to bpftrace.control.*
 * (control_store_allowed: nobody with --control=off, loopback clients
 * with loopback, an authenticated principal with the control or admin
 * role with auth). pmcd's own access rules then apply to bpftraced's
 * connection.
 *
 * Instances as pmproxy 6.0.3 sends them: iname=a,b (names of the
 * metric's indom) or else instance=0,1 (ids, read as atoi reads them);
 * the same value for each, in one pmStore. Neither (or a singular
 * metric): one value for PM_IN_NULL, which the agent reads as it likes
 * (the sample PMDA's colour: any instance). As in pmproxy, a store that
 * names instances also makes them the context's profile for that indom
 * (pmDelProfile of the whole indom, pmAddProfile of those). Unlike
 * pmproxy, a name that is not an instance of the indom (or is given
 * twice) refuses the store (pmproxy stores a zero into instance 0 for
 * each such name): README, differences.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "memcap.h"
#include "pcp.h"
#include "registry.h"
#include "scripts.h"

/* the instances named: ids (*ids, *n; n 0: none named), or an error */
struct pcinsts {
	int	*ids;
	size_t	 n;
	size_t	 charged;	/* bytes charged to ds->mem for ids */
};

static size_t
count_items(const char *list)
{
	size_t	 n = *list ? 1 : 0;

	for (; *list; list++)
		n += *list == ',';
	return n;
}

/*
 * One id of the list as pmproxy 6.0.3 reads it (atoi): its leading
 * number (white space, a sign, digits; past the int range: the bound),
 * else 0. Lenient for pmproxy's sake; strtonum_ll reads the digits.
 */
static int
inst_id(const char *s, size_t len)
{
	char		 tmp[32];
	const char	*errstr;
	size_t		 n = 0, digits;
	long long	 v;
	int		 neg;

	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	while (isspace((unsigned char)tmp[n]))
		n++;
	neg = tmp[n] == '-';
	n += neg || tmp[n] == '+';
	if ((digits = strspn(tmp + n, "0123456789")) == 0)
		return 0;
	tmp[n + digits] = '\0';
	v = strtonum_ll(tmp, INT_MIN, INT_MAX, &errstr);
	if (errstr != NULL)	/* past the int range */
		return neg ? INT_MIN : INT_MAX;
	return (int)v;
}

/*
 * The name s (len bytes) among the indom's instances not named before
 * (used[]): its id, or -1. pmproxy fills one value per instance it
 * finds, so a name given twice is a name it does not find either.
 */
static int
inst_by_name(const struct pmcd_indom *pi, unsigned char *used,
    const char *s, size_t len, int *id)
{
	for (int i = 0; i < pi->pi_n; i++)
		if (strlen(pi->pi_names[i]) == len &&
		    memcmp(pi->pi_names[i], s, len) == 0) {
			if (used[i])
				return -1;
			used[i] = 1;
			*id = pi->pi_ids[i];
			return 0;
		}
	return -1;
}

/*
 * The instances a store names for the indom; 0, or -1 with the answer
 * sent in *ret. what names the metric in the error texts.
 */
static int
store_insts(struct api *a, const pmDesc *desc, const char *what,
    struct pcinsts *pc, int *ret)
{
	const char		*names = api_param(a, "iname");
	const char		*list = names ? names : api_param(a, "instance");
	struct pmcd_indom	 pi;
	unsigned char		*used = NULL;
	size_t			 max = a->a_ds->cfg.max_profile_instances;
	char			 msg[160];
	int			 rc;

	memset(pc, 0, sizeof(*pc));
	if (desc->indom == PM_INDOM_NULL || list == NULL ||
	    (pc->n = count_items(list)) == 0)
		return 0;
	if (pc->n > max) {
		*ret = api_error(a, 400, 1, -E2BIG, "failed to store value to "
		    "metric %s: more than %zu instances (bpftraced limit, see "
		    "--max-profile-instances)", what, max);
		return -1;
	}
	pc->charged = pc->n * (sizeof(int) + sizeof(pmValue));
	if (memcap_charge(&a->a_ds->mem, pc->charged) == -1) {
		pc->charged = 0;
		memcap_message(&a->a_ds->mem, msg, sizeof(msg));
		*ret = api_error(a, 503, 1, -ENOMEM, "failed to store value "
		    "to metric %s: %s", what, msg);
		return -1;
	}
	if ((pc->ids = calloc(pc->n, sizeof(int))) == NULL) {
		*ret = api_error(a, 500, 1, -ENOMEM, "failed to store value "
		    "to metric %s: out of memory", what);
		return -1;
	}
	memset(&pi, 0, sizeof(pi));
	if (names && (rc = pmcd_indom(desc->indom, &pi, 0)) < 0) {
		*ret = rc == PMCD_ECONN ? api_error(a, 400, 1,
		    pmcd_error_code(), "%s", pmcd_error_text()) :
		    api_error(a, 400, 1, rc, "failed to store value to metric "
		    "%s: %s", what, pmErrStr_r(rc, msg, sizeof(msg)));
		return -1;
	}
	if (names && (used = calloc((size_t)pi.pi_n + 1, 1)) == NULL) {
		pmcd_indom_free(&pi);
		*ret = api_error(a, 500, 1, -ENOMEM, "failed to store value "
		    "to metric %s: out of memory", what);
		return -1;
	}
	for (size_t i = 0; i < pc->n; i++) {
		const char	*end = strchr(list, ',');
		size_t		 len = end ? (size_t)(end - list) : strlen(list);

		if (names == NULL)
			pc->ids[i] = inst_id(list, len);
		else if (inst_by_name(&pi, used, list, len, &pc->ids[i]) ==
		    -1) {
			free(used);
			pmcd_indom_free(&pi);
			*ret = api_error(a, 400, 1, PM_ERR_INST, "failed to store "
			    "value to metric %s: Unknown or illegal instance "
			    "identifier", what);
			return -1;
		}
		list += len + (end != NULL);
	}
	free(used);
	pmcd_indom_free(&pi);
	/* pmproxy's side effect: the context's profile is these now */
	if (a->a_ctx != 0 && ctx_profile_change(a->a_ds->ctx, a->a_ctx, 0,
	    desc->indom, NULL, 0) == CTX_OK)
		(void)ctx_profile_change(a->a_ds->ctx, a->a_ctx, 1,
		    desc->indom, (const uint32_t *)pc->ids, pc->n);
	return 0;
}

static void
store_insts_free(struct api *a, struct pcinsts *pc)
{
	free(pc->ids);
	if (pc->charged)
		memcap_release(&a->a_ds->mem, pc->charged);
	memset(pc, 0, sizeof(*pc));
}

/* the store answer: 1 when name/pmid is not pmcd's (the caller goes on) */
int
api_pcstore(struct api *a, const char *name, const struct store_req *sr,
    pmID pmid, int *ret)
{
	char		 err[512] = "", *owned = NULL;
	const char	*what;
	struct pcinsts	 pc = { NULL, 0, 0 };
	pmDesc		 desc;
	enum store_result st;
	int		 rc;

	rc = name ? pmcd_lookup(name, &pmid, &desc) :
	    pmcd_lookup_pmid(pmid, &owned, &desc);
	if (rc == PMCD_ECONN) {
		*ret = api_error(a, 400, 1, pmcd_error_code(), "%s",
		    pmcd_error_text());
		return 0;
	}
	if (rc < 0)
		return 1;
	/* pmproxy names the metric as the request did (pmid= by its id) */
	what = name ? name : api_param(a, "pmid");
	if ((st = control_store_allowed(a->a_ds, sr, err, sizeof(err))) !=
	    STORE_OK) {
		*ret = api_store_error(a, st, what, err);
		goto done;
	}
	if (store_insts(a, &desc, what, &pc, ret) == -1)
		goto done;
	if (memchr(sr->sr_value, '\0', sr->sr_vlen) != NULL)
		rc = PM_ERR_TYPE;
	else
		rc = pmcd_store(&desc, pc.ids, pc.n, sr->sr_value, sr->sr_vlen,
		    err, sizeof(err));
	if (rc == PMCD_ECONN)
		*ret = api_error(a, 400, 1, pmcd_error_code(), "%s",
		    pmcd_error_text());
	else if (rc == PM_ERR_TYPE)
		*ret = api_error(a, 400, 1, rc, "failed to store value to "
		    "metric %s: Unknown or illegal metric type", what);
	else if (rc < 0)
		*ret = api_error(a, 400, 1, rc, "failed to store value to "
		    "metric %s: %s", what, err);
	else {
		log_info("store to pmcd metric %s (%zu instances) by %s",
		    owned ? owned : what, pc.n,
		    sr->sr_user ? sr->sr_user : sr->sr_peer);
		*ret = api_send_success(a);
	}
done:
	store_insts_free(a, &pc);
	free(owned);
	return 0;
}
