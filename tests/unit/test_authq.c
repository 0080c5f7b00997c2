/* SPDX-License-Identifier: MIT */
/*
 * test_authq.c - the password verifier queue and the per-address budget
 * of failed checks (src/lib/authq.c), and auth_check_quick(), which must
 * never run crypt. Hashes are sha512crypt at 1000 rounds, made here with
 * libcrypt, so the checks are quick and their answers independent of
 * auth.c.
 */
#include "testhelp.h"

#include <crypt.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "authq.h"

static const uint8_t	 ADDR_A[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 2 };
static const uint8_t	 ADDR_B[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 3 };
static const uint8_t	 ADDR_C[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 4 };

/* "Basic base64(alice:pw-alice)" and a wrong one */
static const char	 GOOD[] = "Basic YWxpY2U6cHctYWxpY2U=";
static const char	 BAD[] = "Basic YWxpY2U6d3Jvbmc=";

static struct auth_db *
load_alice(void)
{
	char			 path[] = "/tmp/test_authq.XXXXXX", salt[64];
	char			 err[256];
	struct crypt_data	*cd = calloc(1, sizeof(*cd));
	struct auth_db		*db;
	const char		*h;
	FILE			*fp;
	int			 fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_non_null(cd);
	assert_non_null(crypt_gensalt_rn("$6$", 1000, NULL, 0, salt,
	    sizeof(salt)));
	h = crypt_r("pw-alice", salt, cd);
	assert_non_null(h);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fprintf(fp, "alice:%s:control\n", h);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, 0600), 0);
	db = auth_load(path, err, sizeof(err));
	unlink(path);
	free(cd);
	if (db == NULL)
		fail_msg("auth_load: %s", err);
	return db;
}

/* --- the budget of failed checks --- */

static void
authq_tokens_run_out_per_address_and_refunds_give_one_back(void **state)
{
	char		 err[256];
	struct authq	*q = authq_new(1, 4, 3, 16, err, sizeof(err));
	unsigned	 retry = 0;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < 3; i++)
		assert_int_equal(authq_take_token(q, ADDR_A, &retry), 0);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), -1);
	/* 3 a minute: one more token in 20 s */
	assert_true(retry >= 1 && retry <= 21);
	/* another address has its own budget */
	assert_int_equal(authq_take_token(q, ADDR_B, &retry), 0);
	/* a success gives its token back */
	authq_refund(q, ADDR_A);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), 0);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), -1);
	authq_free(q);
}

static void
authq_rate_zero_never_throttles(void **state)
{
	char		 err[256];
	struct authq	*q = authq_new(1, 4, 0, 16, err, sizeof(err));
	unsigned	 retry = 0;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(authq_take_token(q, ADDR_A, &retry), 0);
	authq_free(q);
}

/* a full table forgets the address with the most tokens left */
static void
authq_full_table_replaces_the_fullest_bucket(void **state)
{
	char		 err[256];
	struct authq	*q = authq_new(1, 4, 2, 2, err, sizeof(err));
	unsigned	 retry = 0;

	(void)state;
	assert_non_null(q);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), 0);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), 0);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), -1);
	assert_int_equal(authq_take_token(q, ADDR_B, &retry), 0);
	/* C takes B's slot (1 token left beats A's 0): A stays throttled */
	assert_int_equal(authq_take_token(q, ADDR_C, &retry), 0);
	assert_int_equal(authq_take_token(q, ADDR_A, &retry), -1);
	authq_free(q);
}

/* --- the queue --- */

struct probe {
	sem_t			 pr_done;	/* posted by every answer */
	sem_t			 pr_go;		/* a blocked answer waits */
	int			 pr_block;
	int			 pr_prepared;
	enum auth_result	 pr_r;
	char			 pr_user[AUTH_NAME_MAX + 1];
	char			 pr_err[256];
};

static void
on_prepare(void *arg)
{
	((struct probe *)arg)->pr_prepared++;
}

static void
on_done(void *arg, enum auth_result r, const struct auth_user *u,
    const char *err)
{
	struct probe	*p = arg;

	p->pr_r = r;
	snprintf(p->pr_user, sizeof(p->pr_user), "%s", u->au_name);
	snprintf(p->pr_err, sizeof(p->pr_err), "%s", err);
	sem_post(&p->pr_done);
	if (p->pr_block)
		sem_wait(&p->pr_go);
}

static void
probe_init(struct probe *p, struct authq_job *j, struct auth_db *db,
    const char *hdr)
{
	memset(p, 0, sizeof(*p));
	sem_init(&p->pr_done, 0, 0);
	sem_init(&p->pr_go, 0, 0);
	memset(j, 0, sizeof(*j));
	j->aj_db = db;
	j->aj_hdr = strdup(hdr);
	j->aj_done = on_done;
	j->aj_arg = p;
	assert_non_null(j->aj_hdr);
}

static void
authq_verifies_on_its_thread_and_answers(void **state)
{
	char			 err[256];
	struct auth_db		*db = load_alice();
	struct authq		*q = authq_new(1, 4, 30, 16, err, sizeof(err));
	struct probe		 good, bad;
	struct authq_job	 jg, jb;

	(void)state;
	assert_non_null(q);
	probe_init(&good, &jg, db, GOOD);
	probe_init(&bad, &jb, db, BAD);
	assert_int_equal(authq_submit(q, &jg, on_prepare), AUTHQ_QUEUED);
	assert_int_equal(authq_submit(q, &jb, on_prepare), AUTHQ_QUEUED);
	sem_wait(&good.pr_done);
	sem_wait(&bad.pr_done);
	assert_int_equal(good.pr_prepared, 1);
	assert_int_equal(good.pr_r, AUTH_OK);
	assert_string_equal(good.pr_user, "alice");
	assert_int_equal(bad.pr_r, AUTH_BAD);
	assert_string_equal(bad.pr_err, "unknown user or wrong password");
	/* the header copy is wiped once checked */
	assert_int_equal(jg.aj_hdr[0], '\0');
	free(jg.aj_hdr);
	free(jb.aj_hdr);
	authq_free(q);
	auth_unref(db);
}

struct stopper {
	pthread_t	 st_thread;
	struct authq	*st_q;
};

static void *
run_stop(void *arg)
{
	authq_stop(((struct stopper *)arg)->st_q);
	return NULL;
}

/*
 * With the one verifier busy: past --auth-queue a job is refused (and
 * not prepared); authq_stop() answers the queued ones "server shutting
 * down" without checking them, and a job after it is refused.
 */
static void
authq_full_queue_refuses_and_stop_answers_the_queued(void **state)
{
	char			 err[256];
	struct auth_db		*db = load_alice();
	struct authq		*q = authq_new(1, 2, 0, 16, err, sizeof(err));
	struct probe		 p[4];
	struct authq_job	 j[4];
	struct stopper		 st;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < 4; i++)
		probe_init(&p[i], &j[i], db, GOOD);
	p[0].pr_block = 1;
	assert_int_equal(authq_submit(q, &j[0], on_prepare), AUTHQ_QUEUED);
	sem_wait(&p[0].pr_done);	/* the verifier is now blocked */
	assert_int_equal(authq_submit(q, &j[1], on_prepare), AUTHQ_QUEUED);
	assert_int_equal(authq_submit(q, &j[2], on_prepare), AUTHQ_QUEUED);
	assert_int_equal(authq_submit(q, &j[3], on_prepare), AUTHQ_FULL);
	assert_int_equal(p[3].pr_prepared, 0);
	st.st_q = q;
	assert_int_equal(pthread_create(&st.st_thread, NULL, run_stop, &st),
	    0);
	sem_wait(&p[1].pr_done);
	sem_wait(&p[2].pr_done);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(p[i].pr_r, AUTH_ERROR);
		assert_string_equal(p[i].pr_err, "server shutting down");
	}
	sem_post(&p[0].pr_go);
	pthread_join(st.st_thread, NULL);
	assert_int_equal(p[0].pr_r, AUTH_OK);
	assert_int_equal(authq_submit(q, &j[3], on_prepare), AUTHQ_STOPPING);
	for (int i = 0; i < 4; i++)
		free(j[i].aj_hdr);
	authq_free(q);
	auth_unref(db);
}

/* --- auth_check_quick: never crypt --- */

static void
auth_check_quick_answers_without_crypt_only_what_it_can(void **state)
{
	struct auth_db		*db = load_alice();
	struct auth_stats	 st;
	struct auth_user	 u;
	enum auth_result	 r = AUTH_ERROR;
	char			 err[256];

	(void)state;
	/* no header, malformed: decided */
	assert_int_equal(auth_check_quick(db, NULL, &u, &r, err, sizeof(err)),
	    1);
	assert_int_equal(r, AUTH_MISSING);
	assert_int_equal(auth_check_quick(db, "Bearer x", &u, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r, AUTH_MALFORMED);
	/* needs crypt: undecided, nothing counted, nothing run */
	assert_int_equal(auth_check_quick(db, GOOD, &u, &r, err, sizeof(err)),
	    0);
	assert_int_equal(auth_check_quick(db, BAD, &u, &r, err, sizeof(err)),
	    0);
	auth_get_stats(db, &st);
	assert_int_equal(st.as_crypt_calls, 0);
	assert_int_equal(st.as_checks, 2);
	/* once verified, the cached success is decided quickly */
	assert_int_equal(auth_check_basic(db, GOOD, &u, err, sizeof(err)),
	    AUTH_OK);
	assert_int_equal(auth_check_quick(db, GOOD, &u, &r, err, sizeof(err)),
	    1);
	assert_int_equal(r, AUTH_OK);
	assert_string_equal(u.au_name, "alice");
	auth_get_stats(db, &st);
	assert_int_equal(st.as_crypt_calls, 1);
	assert_int_equal(st.as_cache_hits, 1);
	/* a failure is never cached */
	assert_int_equal(auth_check_basic(db, BAD, &u, err, sizeof(err)),
	    AUTH_BAD);
	assert_int_equal(auth_check_quick(db, BAD, &u, &r, err, sizeof(err)),
	    0);
	auth_unref(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(authq_tokens_run_out_per_address_and_refunds_give_one_back),
		cmocka_unit_test(authq_rate_zero_never_throttles),
		cmocka_unit_test(authq_full_table_replaces_the_fullest_bucket),
		cmocka_unit_test(authq_verifies_on_its_thread_and_answers),
		cmocka_unit_test(authq_full_queue_refuses_and_stop_answers_the_queued),
		cmocka_unit_test(auth_check_quick_answers_without_crypt_only_what_it_can),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
