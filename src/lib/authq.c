/* SPDX-License-Identifier: MIT */
/*
 * authq.c - password checks off the HTTP threads. A crypt(3) check costs
 * ~25 ms of CPU; run on libmicrohttpd's few threads, a client sending bad
 * Basic credentials on a handful of connections made every other client
 * wait. Here:
 *   - a bounded queue (--auth-queue) and --auth-threads verifier threads
 *     run auth_check_basic(); the HTTP layer suspends the connection, and
 *     the job's done callback stores the answer and resumes it;
 *   - a token bucket per client address (--auth-fail-rate tokens a
 *     minute, as many at most): a check that needs crypt takes a token
 *     before it is queued and a success gives it back, so an address
 *     makes at most that many failed checks a minute; without a token it
 *     is told to retry later (429) and nothing runs. The table holds
 *     --auth-fail-addresses addresses; a new one replaces the one with
 *     the most tokens (a full bucket says nothing worth keeping).
 *
 * Threads and locks: authq_submit(), authq_take_token() and
 * authq_refund() run on MHD threads, the verifiers on their own; q_lock
 * guards the queue, q_stopping and the address table, and is never held
 * across crypt or a done callback. The submitter's prepare callback runs
 * under q_lock (it suspends the connection: MHD's own mutex nests inside
 * ours, never the other way round), so a verifier can never resume a
 * connection before it was suspended. authq_stop() answers every queued
 * job with AUTH_ERROR and joins the verifiers, so that no connection is
 * left suspended when the HTTP server stops.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "authq.h"
#include "util.h"

struct authq_addr {
	uint8_t		 qa_key[16];
	double		 qa_tokens;
	int64_t		 qa_time;	/* now_mono_ms() of qa_tokens */
	int		 qa_used;
};

struct authq {
	pthread_mutex_t		 q_lock;
	pthread_cond_t		 q_cond;
	struct authq_job	*q_head, *q_tail;
	unsigned		 q_len, q_max;
	int			 q_stopping;
	pthread_t		*q_threads;
	unsigned		 q_nthreads;
	unsigned		 q_rate;	/* tokens a minute; 0: no limit */
	struct authq_addr	*q_addrs;
	size_t			 q_naddrs;
	_Atomic uint64_t	 q_verified;
	_Atomic uint64_t	 q_throttled;
	_Atomic uint64_t	 q_full;
};

/* Run one job, then hand it to its owner's done callback. */
static void
authq_run(struct authq_job *j, int stopping)
{
	struct auth_user	 u;
	char			 err[256];
	enum auth_result	 r;

	if (stopping) {
		memset(&u, 0, sizeof(u));
		seterr(err, sizeof(err), "server shutting down");
		r = AUTH_ERROR;
	} else
		r = auth_check_basic(j->aj_db, j->aj_hdr, &u, err, sizeof(err));
	explicit_bzero(j->aj_hdr, strlen(j->aj_hdr));
	j->aj_done(j->aj_arg, r, &u, err);
	explicit_bzero(&u, sizeof(u));
}

static void *
authq_worker(void *arg)
{
	struct authq		*q = arg;
	struct authq_job	*j;

	for (;;) {
		pthread_mutex_lock(&q->q_lock);
		while (q->q_head == NULL && !q->q_stopping)
			pthread_cond_wait(&q->q_cond, &q->q_lock);
		if ((j = q->q_head) == NULL) {	/* stopping, nothing left */
			pthread_mutex_unlock(&q->q_lock);
			return NULL;
		}
		q->q_head = j->aj_next;
		if (q->q_head == NULL)
			q->q_tail = NULL;
		q->q_len--;
		pthread_mutex_unlock(&q->q_lock);
		authq_run(j, 0);
		atomic_fetch_add(&q->q_verified, 1);
	}
}

struct authq *
authq_new(unsigned nthreads, unsigned qmax, unsigned rate, size_t naddrs,
    char *err, size_t errlen)
{
	struct authq	*q;

	if (naddrs == 0)	/* authq_addr() needs one slot to reuse */
		naddrs = 1;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		seterr(err, errlen, "password verifiers: out of memory");
		return NULL;
	}
	pthread_mutex_init(&q->q_lock, NULL);
	pthread_cond_init(&q->q_cond, NULL);
	if ((q->q_threads = calloc(nthreads, sizeof(pthread_t))) == NULL ||
	    (q->q_addrs = calloc(naddrs, sizeof(*q->q_addrs))) == NULL) {
		seterr(err, errlen, "password verifiers: out of memory");
		goto fail;
	}
	q->q_max = qmax;
	q->q_rate = rate;
	q->q_naddrs = naddrs;
	for (; q->q_nthreads < nthreads; q->q_nthreads++)
		if (pthread_create(&q->q_threads[q->q_nthreads], NULL,
		    authq_worker, q) != 0) {
			seterr(err, errlen, "password verifiers: cannot start a "
			    "thread");
			goto fail;
		}
	return q;
fail:
	authq_free(q);
	return NULL;
}

/*
 * Stop taking jobs, answer the queued ones with AUTH_ERROR (their done
 * callbacks resume their connections), let running checks finish, join.
 */
void
authq_stop(struct authq *q)
{
	struct authq_job	*j;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->q_lock);
	q->q_stopping = 1;
	j = q->q_head;
	q->q_head = q->q_tail = NULL;
	q->q_len = 0;
	pthread_cond_broadcast(&q->q_cond);
	pthread_mutex_unlock(&q->q_lock);
	while (j != NULL) {
		struct authq_job	*next = j->aj_next;

		authq_run(j, 1);
		j = next;
	}
	for (unsigned i = 0; i < q->q_nthreads; i++)
		pthread_join(q->q_threads[i], NULL);
	q->q_nthreads = 0;
}

void
authq_free(struct authq *q)
{
	if (q == NULL)
		return;
	if (q->q_nthreads > 0)
		authq_stop(q);
	pthread_cond_destroy(&q->q_cond);
	pthread_mutex_destroy(&q->q_lock);
	free(q->q_threads);
	free(q->q_addrs);
	free(q);
}

/*
 * Queue j. prepare(arg) runs first, under q_lock, only when the job will
 * be queued (it suspends the connection). AUTHQ_QUEUED: j belongs to the
 * queue until its done callback, which runs on a verifier thread (or in
 * authq_stop()); AUTHQ_FULL or AUTHQ_STOPPING: j stays the caller's.
 */
int
authq_submit(struct authq *q, struct authq_job *j, void (*prepare)(void *))
{
	pthread_mutex_lock(&q->q_lock);
	if (q->q_stopping) {
		pthread_mutex_unlock(&q->q_lock);
		return AUTHQ_STOPPING;
	}
	if (q->q_len >= q->q_max) {
		pthread_mutex_unlock(&q->q_lock);
		atomic_fetch_add(&q->q_full, 1);
		return AUTHQ_FULL;
	}
	prepare(j->aj_arg);
	j->aj_next = NULL;
	if (q->q_tail)
		q->q_tail->aj_next = j;
	else
		q->q_head = j;
	q->q_tail = j;
	q->q_len++;
	pthread_cond_signal(&q->q_cond);
	pthread_mutex_unlock(&q->q_lock);
	return AUTHQ_QUEUED;
}

/* --- failed verifications per address --- */

/* The address's entry, refilled to now; a new one if absent. Lock held. */
static struct authq_addr *
authq_addr(struct authq *q, const uint8_t key[16], int64_t now)
{
	struct authq_addr	*a, *victim = NULL;
	double			 per_ms = q->q_rate / 60000.0;

	for (size_t i = 0; i < q->q_naddrs; i++) {
		a = &q->q_addrs[i];
		if (!a->qa_used) {
			if (victim == NULL || victim->qa_used)
				victim = a;
			continue;
		}
		a->qa_tokens += (double)(now - a->qa_time) * per_ms;
		if (a->qa_tokens > q->q_rate)
			a->qa_tokens = q->q_rate;
		a->qa_time = now;
		if (memcmp(a->qa_key, key, 16) == 0)
			return a;
		if (victim == NULL || (victim->qa_used &&
		    a->qa_tokens > victim->qa_tokens))
			victim = a;
	}
	memcpy(victim->qa_key, key, 16);
	victim->qa_tokens = q->q_rate;
	victim->qa_time = now;
	victim->qa_used = 1;
	return victim;
}

/*
 * Take the token a crypt check needs. 0: taken (give it back with
 * authq_refund() when the check succeeds); -1: none left, *retry_s is
 * how many seconds until there is one.
 */
int
authq_take_token(struct authq *q, const uint8_t key[16], unsigned *retry_s)
{
	struct authq_addr	*a;
	int			 ret = 0;

	if (q->q_rate == 0)
		return 0;
	pthread_mutex_lock(&q->q_lock);
	a = authq_addr(q, key, now_mono_ms());
	if (a->qa_tokens >= 1.0)
		a->qa_tokens -= 1.0;
	else {
		*retry_s = (unsigned)((1.0 - a->qa_tokens) * 60.0 /
		    q->q_rate) + 1;
		ret = -1;
	}
	pthread_mutex_unlock(&q->q_lock);
	if (ret == -1)
		atomic_fetch_add(&q->q_throttled, 1);
	return ret;
}

void
authq_refund(struct authq *q, const uint8_t key[16])
{
	struct authq_addr	*a;

	if (q->q_rate == 0)
		return;
	pthread_mutex_lock(&q->q_lock);
	a = authq_addr(q, key, now_mono_ms());
	if ((a->qa_tokens += 1.0) > q->q_rate)
		a->qa_tokens = q->q_rate;
	pthread_mutex_unlock(&q->q_lock);
}

void
authq_get_stats(struct authq *q, struct authq_stats *st)
{
	st->aqs_verified = atomic_load(&q->q_verified);
	st->aqs_throttled = atomic_load(&q->q_throttled);
	st->aqs_full = atomic_load(&q->q_full);
}
