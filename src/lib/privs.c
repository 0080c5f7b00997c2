/* SPDX-License-Identifier: MIT */
/*
 * privs.c - drop what is not needed once the listeners are bound: the
 * daemon and every bpftrace it starts keep only the capabilities bpftrace
 * uses (BPF programs, perf events, tracefs, kernel symbols, memlock,
 * reading other processes' maps for ustack). Binding low ports, loading
 * modules, changing the network, raw I/O and the rest are gone for good:
 * the bounding set is lowered, so no exec can get them back.
 * Runs once on the main thread before the scripts start.
 *
 * PMDA mode (pmda.c) also keeps, in the daemon's own sets only (they are
 * out of the bounding set, so no bpftrace gets them), what re-creating
 * the PMDA socket needs after pmcd unlinks it (pmcd removes a socket
 * agent's Unix socket when it drops the agent): CAP_DAC_OVERRIDE to bind
 * in PCP_RUN_DIR (owned by PCP_USER), CAP_CHOWN to hand the socket to
 * PCP_USER, and CAP_KILL to SIGHUP pmcd so it connects again.
 */
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"
#include "util.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON	38
#endif
#ifndef CAP_BPF
#define CAP_BPF		39
#endif

/* what bpftrace needs (see bpftraced(8), CAPABILITIES) */
static const int keep_caps[] = {
	CAP_SYS_ADMIN,		/* bpf(2) before CAP_BPF, perf, tracefs */
	CAP_BPF,
	CAP_PERFMON,
	CAP_SYS_RESOURCE,	/* RLIMIT_MEMLOCK for BPF maps */
	CAP_IPC_LOCK,
	CAP_SYSLOG,		/* /proc/kallsyms addresses for ksym() */
	CAP_SYS_PTRACE,		/* /proc/PID/maps for ustack, uprobes */
	CAP_DAC_READ_SEARCH,	/* debugfs/tracefs, /proc of others */
};

/* daemon-only, PMDA mode */
static const int pmda_caps[] = { CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_KILL };

static int
kept(int cap)
{
	for (size_t i = 0; i < sizeof(keep_caps) / sizeof(keep_caps[0]); i++)
		if (keep_caps[i] == cap)
			return 1;
	return 0;
}

static int
last_cap(void)
{
	FILE		*f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	char		 line[32];
	const char	*errstr;
	long long	 n = CAP_LAST_CAP;

	if (f) {
		if (fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			n = strtonum_ll(line, 0, INT_MAX, &errstr);
			if (errstr != NULL)
				n = CAP_LAST_CAP;
		}
		fclose(f);
	}
	return (int)n;
}

/*
 * Lower the bounding set, then the daemon's own sets, to keep_caps.
 * Not root: nothing to do. Returns -1 (errno set) when a step failed.
 */
int
privs_drop(int pmda)
{
	struct __user_cap_header_struct	 hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0
	};
	struct __user_cap_data_struct	 data[2], have[2];
	int				 last = last_cap(), dropped = 0;

	if (geteuid() != 0)
		return 0;
	if (syscall(SYS_capget, &hdr, have) == -1)
		return -1;
	for (int cap = 0; cap <= last; cap++) {
		if (kept(cap) || cap == CAP_SETPCAP)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 &&
		    errno != EINVAL)
			return -1;
		dropped++;
	}
	if (prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		return -1;
	memset(data, 0, sizeof(data));
	for (size_t i = 0; i < sizeof(keep_caps) / sizeof(keep_caps[0]); i++) {
		int	 c = keep_caps[i];

		if (c > last)
			continue;
		data[c / 32].effective |= 1u << (c % 32);
		data[c / 32].permitted |= 1u << (c % 32);
	}
	for (size_t i = 0; pmda && i < sizeof(pmda_caps) / sizeof(pmda_caps[0]);
	    i++) {
		data[pmda_caps[i] / 32].effective |= 1u << (pmda_caps[i] % 32);
		data[pmda_caps[i] / 32].permitted |= 1u << (pmda_caps[i] % 32);
	}
	for (int i = 0; i < 2; i++) {	/* a container may give us less */
		data[i].permitted &= have[i].permitted;
		data[i].effective &= have[i].permitted;
	}
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -1;
	log_info("dropped %d capabilities; kept those bpftrace needs", dropped);
	return 0;
}
