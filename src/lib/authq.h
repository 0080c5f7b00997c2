/* SPDX-License-Identifier: MIT */
/*
 * authq.h - verifier threads for HTTP Basic credentials, and the per-
 * address budget of failed verifications (see authq.c). Depends on
 * auth.h and util.h only, so it is unit-tested alone.
 */
#ifndef BT_AUTHQ_H
#define BT_AUTHQ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define AUTHQ_QUEUED	0
#define AUTHQ_FULL	1	/* --auth-queue jobs waiting already */
#define AUTHQ_STOPPING	2

/* What the verifier hands back; err is safe to send to the client. */
typedef void (*authq_done_fn)(void *arg, enum auth_result r,
    const struct auth_user *u, const char *err);

/* One check; the submitter owns it (and aj_db's reference, aj_hdr). */
struct authq_job {
	struct auth_db		*aj_db;
	char			*aj_hdr;	/* Authorization value */
	authq_done_fn		 aj_done;
	void			*aj_arg;
	struct authq_job	*aj_next;	/* queue link */
};

struct authq_stats {
	uint64_t	 aqs_verified;	/* checks run by the verifiers */
	uint64_t	 aqs_throttled;	/* refused: no token for the address */
	uint64_t	 aqs_full;	/* refused: queue full */
};

struct authq;

struct authq	*authq_new(unsigned nthreads, unsigned qmax, unsigned rate,
		    size_t naddrs, char *err, size_t errlen);
void		 authq_stop(struct authq *q);
void		 authq_free(struct authq *q);
int		 authq_submit(struct authq *q, struct authq_job *j,
		    void (*prepare)(void *arg));
int		 authq_take_token(struct authq *q, const uint8_t key[16],
		    unsigned *retry_s);
void		 authq_refund(struct authq *q, const uint8_t key[16]);
void		 authq_get_stats(struct authq *q, struct authq_stats *st);

#endif
