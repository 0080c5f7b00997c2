/* SPDX-License-Identifier: MIT */
/*
 * control_answer.c - the answers to the bpftrace.control.* stores, kept
 * per principal until read back: a store's answer (control.c) waits here
 * until the client that stored it fetches the same metric in the same
 * context, as PCP's bpftrace PMDA does. Charged to --max-memory while
 * kept; dropped when read, after ANSWER_TTL_MS, or once the context is
 * gone. Below control.c, which calls it; it calls nothing of the scripts.
 *
 * Threads and locks: stores and fetches on libmicrohttpd threads, the
 * sweep on the main thread; the answer table is under ss_ans_lock, which
 * is never held with ss_lock (ctx_alive() takes ct_lock inside it).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "log.h"
#include "scripts.h"
#include "util.h"
#include "scripts.h"

#define ANSWERS_MAX		4096	/* kept per (context, metric) */
#define ANSWER_TTL_MS		(10 * 60 * 1000)

/*
 * The answer to a store is kept until the principal that stored it reads
 * it back in the same context: an authenticated user by name, anyone else
 * (anonymous loopback control, a pmcd client without a name) by address.
 * Another client that guesses the context id gets "{}" and leaves the
 * answer alone. An answer holds at most --max-control-answer-bytes of
 * text (the code it echoes is cut to fit), and its bytes are charged to
 * ds->mem while it is kept (an_charged, released with it).
 */
struct answer {
	uint32_t	 an_ctx;
	int		 an_item;
	int64_t		 an_time;
	char		*an_text;
	char		*an_user;	/* NULL: anonymous, an_peer decides */
	char		 an_peer[64];
	size_t		 an_charged;	/* bytes charged to ds->mem */
};

/* Does the answer belong to this principal? */
static int
answer_owned(const struct answer *a, uint32_t ctx, int item,
    const char *user, const char *peer)
{
	if (a->an_ctx != ctx || a->an_item != item)
		return 0;
	if (a->an_user || user)
		return a->an_user && user && strcmp(a->an_user, user) == 0;
	return strcmp(a->an_peer, peer ? peer : "") == 0;
}

/* Free answer i's memory and uncharge it. Lock held. */
static void
answer_clear(struct scripts *ss, struct answer *a)
{
	free(a->an_text);
	free(a->an_user);
	memcap_release(&ss->ss_ds->mem, a->an_charged);
	memset(a, 0, sizeof(*a));
}

/* Drop answer i: the last one moves into its slot. Lock held. */
static void
answer_remove(struct scripts *ss, size_t i)
{
	answer_clear(ss, &ss->ss_answers[i]);
	ss->ss_answers[i] = ss->ss_answers[--ss->ss_nanswers];
	memset(&ss->ss_answers[ss->ss_nanswers], 0, sizeof(struct answer));
}

/*
 * Can anyone still read answer a? Not after ANSWER_TTL_MS, and not once
 * its REST context is gone (expired or evicted). A store without a
 * context makes an implicit one that lives BT_CTX_TIMEOUT, so before this
 * check a client storing context-less left up to ANSWERS_MAX answers
 * (each with the script's code) that nobody could ask for any more.
 * PMDA contexts (PMDA_CTX_BIT) are not in the REST table: TTL only.
 * ss_ans_lock held; ctx_alive takes ct_lock inside it (nothing holding
 * ct_lock waits for ss_ans_lock).
 */
static int
answer_readable(struct scripts *ss, const struct answer *a, int64_t now)
{
	struct ctxtab	*ct = ss->ss_ds ? ss->ss_ds->ctx : NULL;

	if (now - a->an_time > ANSWER_TTL_MS)
		return 0;
	if ((a->an_ctx & PMDA_CTX_BIT) || ct == NULL)
		return 1;
	return ctx_alive(ct, a->an_ctx);
}

/*
 * What one answer costs: the allocations of its text and user (as
 * malloc sized them, which may be more than their strings) and its slot.
 */
static size_t
answer_cost(const char *text, const char *user)
{
	return malloc_usable_size((void *)text) +
	    (user ? malloc_usable_size((void *)user) : 0) +
	    sizeof(struct answer);
}

/* the most an answer of at most max bytes of text may cost */
size_t
control_answer_cost_max(const char *user, size_t max)
{
	/* malloc rounds up to 16 bytes and adds one size word */
	return max + 1 + 32 + (user ? strlen(user) + 1 + 32 : 0) +
	    sizeof(struct answer);
}

/* text in an allocation of its own length (it may come from a grown buf) */
static char *
shrink_to_fit(char *text)
{
	char	*t = realloc(text, strlen(text) + 1);

	return t ? t : text;
}

/*
 * Keep text (taken) as sr's answer. charged bytes were charged for it
 * already; the difference to its real cost is settled here. Any thread.
 */
void
control_answer_set(struct scripts *ss, const struct store_req *sr, int item,
    char *text, size_t charged)
{
	struct memcap	*mc = &ss->ss_ds->mem;
	struct answer	*a = NULL;
	char		*user = NULL;
	int64_t		 now = now_mono_ms();
	size_t		 oldest = 0, cost;
	ssize_t		 mine = -1;

	if (sr->sr_user && (user = strdup(sr->sr_user)) == NULL)
		goto drop;
	text = shrink_to_fit(text);
	cost = answer_cost(text, user);
	if (cost < charged)
		memcap_release(mc, charged - cost);
	else if (cost > charged && memcap_charge(mc, cost - charged) == -1)
		goto drop;	/* not kept: the fetch reads "{}" */
	charged = cost;
	pthread_mutex_lock(&ss->ss_ans_lock);
	for (size_t i = 0; i < ss->ss_nanswers; i++) {
		struct answer	*x = &ss->ss_answers[i];

		if (answer_owned(x, sr->sr_ctx, item, sr->sr_user,
		    sr->sr_peer)) {
			mine = (ssize_t)i;
			continue;
		}
		if (!answer_readable(ss, x, now)) {
			/* the last answer moves into slot i */
			if (mine == (ssize_t)ss->ss_nanswers - 1)
				mine = (ssize_t)i;
			if (oldest == ss->ss_nanswers - 1)
				oldest = i;
			answer_remove(ss, i--);
			continue;
		}
		if (x->an_time < ss->ss_answers[oldest].an_time)
			oldest = i;
	}
	if (mine >= 0)
		a = &ss->ss_answers[mine];
	if (a == NULL && ss->ss_nanswers < ANSWERS_MAX)
		a = &ss->ss_answers[ss->ss_nanswers++];
	else if (a == NULL)
		a = &ss->ss_answers[oldest];	/* full: recycle the oldest */
	answer_clear(ss, a);
	a->an_ctx = sr->sr_ctx;
	a->an_item = item;
	a->an_time = now;
	a->an_text = text;
	a->an_user = user;
	snprintf(a->an_peer, sizeof(a->an_peer), "%s",
	    sr->sr_peer ? sr->sr_peer : "");
	a->an_charged = charged;
	pthread_mutex_unlock(&ss->ss_ans_lock);
	return;
drop:
	memcap_release(mc, charged);
	free(user);
	free(text);
}

/*
 * The answer is consumed by reading it, as the PMDA does: next is "{}".
 * Only the principal that stored it reads (and consumes) it.
 */
int
on_control_ctxval(struct metric *m, const struct reader *rd, struct buf *out)
{
	struct scripts	*ss = m->m_arg;
	int		 item = (int)pmID_item(m->m_pmid);
	int64_t		 now = now_mono_ms();
	size_t		 i;

	pthread_mutex_lock(&ss->ss_ans_lock);
	for (i = 0; i < ss->ss_nanswers; i++) {
		struct answer	*a = &ss->ss_answers[i];

		if (!answer_readable(ss, a, now)) {
			answer_remove(ss, i--);
			continue;
		}
		if (answer_owned(a, rd->rd_ctx, item, rd->rd_user,
		    rd->rd_peer)) {
			buf_puts(out, a->an_text);
			answer_remove(ss, i);
			break;
		}
	}
	pthread_mutex_unlock(&ss->ss_ans_lock);
	if (out->b_len == 0)
		buf_puts(out, "{}");
	return 0;
}

/*
 * Drop the answers nobody can read any more (answer_readable), every
 * tick, so an abandoned context's answers do not hold --max-memory until
 * the next store or read.
 */
void
control_answers_sweep(struct scripts *ss)
{
	int64_t		 now = now_mono_ms();

	pthread_mutex_lock(&ss->ss_ans_lock);
	for (size_t i = 0; i < ss->ss_nanswers; i++)
		if (!answer_readable(ss, &ss->ss_answers[i], now))
			answer_remove(ss, i--);
	pthread_mutex_unlock(&ss->ss_ans_lock);
}

/* After scripts_init, from control_init. Main thread. */
int
control_answers_init(struct scripts *ss)
{
	pthread_mutex_init(&ss->ss_ans_lock, NULL);
	if ((ss->ss_answers = calloc(ANSWERS_MAX,
	    sizeof(*ss->ss_answers))) == NULL)
		return -1;
	return 0;
}

/* From control_fini; accepts a control_answers_init that failed. */
void
control_answers_fini(struct scripts *ss)
{
	for (size_t i = 0; i < ss->ss_nanswers; i++)
		answer_clear(ss, &ss->ss_answers[i]);
	free(ss->ss_answers);
	ss->ss_answers = NULL;
	ss->ss_nanswers = 0;
}
