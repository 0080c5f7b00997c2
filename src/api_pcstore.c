/* SPDX-License-Identifier: MIT */
/*
 * api_pcstore.c - /pmapi/store of a metric pmcd serves (sample.write_me,
 * pmcd.control.*): passed through to pmcd with pmStore, under the rules
 * of the stores to bpftrace.control.* (control_store_allowed: nobody
 * with --control=off, loopback clients with loopback, an authenticated
 * principal with the control or admin role with auth). pmcd's own
 * access rules then apply to bpftraced's connection. Only singular
 * metrics: a value for every instance of an indom is not sent.
 */
#include <string.h>

#include "bpftraced.h"

/* the store answer: 1 when name/pmid is not pmcd's (the caller goes on) */
int
api_pcstore(struct api *a, const char *name, const struct store_req *sr,
    pmID pmid, int *ret)
{
	char	 err[512] = "", *owned = NULL;
	pmDesc	 desc;
	int	 rc;

	rc = name ? pmcd_lookup(name, &pmid, &desc) :
	    pmcd_lookup_pmid(pmid, &owned, &desc);
	if (rc == PMCD_ECONN) {
		*ret = api_error(a, 400, 1, pmcd_error_code(), "%s",
		    pmcd_error_text());
		return 0;
	}
	if (rc < 0)
		return 1;
	if (name == NULL)
		name = owned;
	if ((rc = control_store_allowed(a->a_ds, sr, err, sizeof(err))) != 0) {
		*ret = api_error(a, rc < -1 ? (unsigned)-rc : 400, 1,
		    PM_ERR_PERMISSION, "failed to store value to metric %s: "
		    "%s", name, err);
		goto done;
	}
	if (desc.indom != PM_INDOM_NULL) {
		*ret = api_error(a, 400, 1, PM_ERR_INST, "failed to store "
		    "value to metric %s: only metrics without instances can "
		    "be stored here", name);
		goto done;
	}
	if (memchr(sr->sr_value, '\0', sr->sr_vlen) != NULL)
		rc = PM_ERR_TYPE;
	else
		rc = pmcd_store(&desc, sr->sr_value, sr->sr_vlen, err,
		    sizeof(err));
	if (rc == PMCD_ECONN)
		*ret = api_error(a, 400, 1, pmcd_error_code(), "%s",
		    pmcd_error_text());
	else if (rc == PM_ERR_TYPE)
		*ret = api_error(a, 400, 1, rc, "failed to store value to "
		    "metric %s: Unknown or illegal metric type", name);
	else if (rc < 0)
		*ret = api_error(a, 400, 1, rc, "failed to store value to "
		    "metric %s: %s", name, err);
	else {
		log_info("store to pmcd metric %s by %s", name,
		    sr->sr_user ? sr->sr_user : sr->sr_peer);
		*ret = api_send_success(a);
	}
done:
	free(owned);
	return 0;
}
