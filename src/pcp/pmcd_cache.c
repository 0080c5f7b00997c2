/* SPDX-License-Identifier: MIT */
/*
 * pmcd_cache.c - the pmcd passthrough's lookup cache: names -> pmids,
 * pmids -> descriptors and names, help texts and merged labels, each kept
 * for PMCD_CACHE_MS (unknown names for PMCD_NEGCACHE_MS), at most
 * PMCD_CACHE_MAX entries (then it starts again empty). pmcd_names.c and
 * pmcd_labels.c read and fill it; pmcd.c flushes it when pmcd comes back
 * (it may have restarted with other agents). Calls nothing in src/pcp/.
 *
 * Threads: any request thread; cache.lock guards everything here and is
 * never held across a libpcp call (nor with pmcd.c's pool.lock).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pmcd_int.h"
#include "util.h"

#define PMCD_CACHE_MAX		8192
#define PMCD_CACHE_BUCKETS	1024

struct centry {
	struct centry	*next;
	int64_t		 expires;
	size_t		 len;
	char		*key;
	char		*val;
};

static struct {
	pthread_mutex_t	 lock;
	struct centry	*b[PMCD_CACHE_BUCKETS];
	size_t		 n;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned
khash(const char *k)
{
	unsigned	 h = 2166136261u;

	while (*k)
		h = (h ^ (unsigned char)*k++) * 16777619u;
	return h % PMCD_CACHE_BUCKETS;
}

static void
cache_flush_locked(void)
{
	for (size_t i = 0; i < PMCD_CACHE_BUCKETS; i++)
		while (cache.b[i]) {
			struct centry	*e = cache.b[i];

			cache.b[i] = e->next;
			free(e->key);
			free(e->val);
			free(e);
		}
	cache.n = 0;
}

void
pmcd_cache_flush(void)
{
	pthread_mutex_lock(&cache.lock);
	cache_flush_locked();
	pthread_mutex_unlock(&cache.lock);
}

/* a copy of the cached value (NUL-terminated), or NULL */
char *
pmcd_cache_get(const char *key, size_t *lenp)
{
	char		*v = NULL;
	int64_t		 now = now_mono_ms();

	pthread_mutex_lock(&cache.lock);
	for (struct centry *e = cache.b[khash(key)]; e; e = e->next)
		if (strcmp(e->key, key) == 0) {
			if (e->expires > now && (v = malloc(e->len + 1))) {
				memcpy(v, e->val, e->len);
				v[e->len] = '\0';
				if (lenp)
					*lenp = e->len;
			}
			break;
		}
	pthread_mutex_unlock(&cache.lock);
	return v;
}

void
pmcd_cache_put(const char *key, const void *val, size_t len, int64_t ttl)
{
	struct centry	*e;
	unsigned	 h = khash(key);

	pthread_mutex_lock(&cache.lock);
	if (cache.n >= PMCD_CACHE_MAX)	/* cache.n is the lock's too */
		cache_flush_locked();
	for (e = cache.b[h]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    (e->key = strdup(key)) == NULL) {
			free(e);
			pthread_mutex_unlock(&cache.lock);
			return;
		}
		e->next = cache.b[h];
		cache.b[h] = e;
		cache.n++;
	}
	free(e->val);
	if ((e->val = malloc(len + 1)) != NULL) {
		memcpy(e->val, val, len);
		e->val[len] = '\0';
	}
	e->len = e->val ? len : 0;
	e->expires = e->val ? now_mono_ms() + ttl : 0;
	pthread_mutex_unlock(&cache.lock);
}
