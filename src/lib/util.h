/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers no library gives us: checked number parsing,
 * error text, clocks, pmproxy-style JSON string escaping, SHA-1, and the
 * query-string parser. Dependency-free (no other layer's header).
 */
#ifndef BT_UTIL_H
#define BT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct buf;

long long	 strtonum_ll(const char *s, long long min, long long max,
		    const char **errstr);
unsigned long long strtonum_ull(const char *s, unsigned long long min,
		    unsigned long long max, const char **errstr);
unsigned long long strtonum_ull_base(const char *s, int base,
		    unsigned long long min, unsigned long long max,
		    const char **errstr);
int		 strtonum_dotted(const char *s, int n,
		    const unsigned long long *max, unsigned long long *v,
		    const char **end, const char **errstr);
double		 strtonum_d(const char *s, double min, double max,
		    const char **errstr);
int		 parse_double(const char *s, double *out);
void		 seterr(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
int64_t		 now_mono_ms(void);
void		 now_real(struct timespec *ts);
int		 json_str(struct buf *b, const char *s);
ssize_t		 json_strn_short(struct buf *b, const char *s, size_t n,
		    size_t max);
int		 json_strn(struct buf *b, const char *s, size_t n);
int		 utf8_valid(const char *s, size_t n);
int		 hex_value(int c);
void		 random_bytes(void *p, size_t len);

/*
 * sha1.c: the 64-byte blocks SHA-1 and SHA-256 (auth.c) are fed in:
 * sha_blocks_add() buffers bytes and hands each full block to block(ctx,
 * blk); sha_blocks_end() adds the padding and bit length (FIPS 180-4).
 */
struct sha_blocks {
	uint64_t	len;		/* bytes added */
	unsigned char	blk[64];
	size_t		used;		/* bytes of blk waiting */
};
typedef void	(*sha_block_fn)(void *ctx, const unsigned char *blk);
void		 sha_blocks_add(struct sha_blocks *b, const void *data, size_t n,
		    sha_block_fn block, void *ctx);
void		 sha_blocks_end(struct sha_blocks *b, sha_block_fn block,
		    void *ctx);

/* sha1.c: one-shot, or incremental (init, add..., end) */
struct sha1 {
	uint32_t		h[5];
	struct sha_blocks	b;
};
void		 sha1_hex(const void *data, size_t n, char out[41]);
void		 sha1_init(struct sha1 *c);
void		 sha1_add(struct sha1 *c, const void *data, size_t n);
void		 sha1_end_hex(struct sha1 *c, char out[41]);

/* query.c: strict application/x-www-form-urlencoded parsing */
struct param {
	char	*p_key;
	char	*p_val;
	size_t	 p_vlen;
};

struct params {
	int		 n;
	int		 cap;
	int		 max;
	struct param	*v;
};

void		 params_init(struct params *ps, int max);
void		 params_free(struct params *ps);
int		 params_parse(struct params *ps, const char *qs, size_t len,
		    char *err, size_t errlen);
int		 params_set(struct params *ps, const char *key, const char *val,
		    size_t vlen);
const char	*params_get(const struct params *ps, const char *key);
const struct param *params_find(const struct params *ps, const char *key);
int		 pct_decode(const char *s, size_t n, char **out,
		    size_t *outlen);

#endif
