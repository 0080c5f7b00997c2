/* SPDX-License-Identifier: MIT */
/*
 * pcplib.h - libpcp and libpcp_pmda, loaded only when bpftraced talks to
 * PCP (pmcd passthrough or PMDA mode).
 *
 * bpftraced is not linked against libpcp: without a pmcd it must run where
 * PCP is not installed (a container), and libpcp with what it pulls in
 * (OpenSSL, SASL, libsystemd) is 2.9 MiB of resident pages that a daemon
 * serving only bpftrace metrics never uses (tests/bench/floor.c).
 *
 * pcplib.c defines the PCP API functions bpftraced calls under their own
 * names and prototypes (<pcp/pmapi.h>, <pcp/pmda.h>), so callers are
 * written as against libpcp. There are three kinds:
 *  - pure ones, always bpftraced's own: pmID_build/_domain/_cluster/_item,
 *    pmInDom_build/_domain/_serial, pmInDomStr, pmUnitsStr_r (the same
 *    results as libpcp's: tests/unit/test_pcplib.c compares them);
 *  - ones with a fallback: pmErrStr/pmErrStr_r (libpcp's text when it is
 *    loaded, else bpftraced's table of the codes it answers with), and
 *    pmGetConfig/pmGetOptionalConfig (else the environment, then
 *    $PCP_CONF or /etc/pcp.conf);
 *  - the rest forward to libpcp, loading it on first use; when it cannot
 *    be loaded they fail with PM_ERR_NYI (void ones do nothing).
 * Callers that must not load libpcp for nothing check first (pmcd.c: is
 * anything listening on pmcd's port; pmda.c: is PCP set up).
 */
#ifndef BT_PCPLIB_H
#define BT_PCPLIB_H

#include <stddef.h>

/* libpcp exports it but no public header declares it (PMDA mode) */
extern int	 __pmSetVersionIPC(int fd, int version);

/*
 * Loads libpcp and libpcp_pmda once (thread-safe; later calls return the
 * first result). 0, or -1 with the reason in err. The library paths are
 * their sonames, or $BPFTRACED_LIBPCP / $BPFTRACED_LIBPCP_PMDA.
 */
int	 pcplib_load(char *err, size_t errlen);

/* Why pcplib_load failed ("" before it was tried, or if it did not). */
const char *pcplib_error(void);

/* 1 once pcplib_load succeeded; never loads anything itself. */
int	 pcplib_loaded(void);

/* libpcp's pmErrStr_r / pmGetOptionalConfig if loaded, else NULL. */
char	*pcplib_errstr_r(int code, char *buf, int buflen);
char	*pcplib_config(const char *name);

#endif
