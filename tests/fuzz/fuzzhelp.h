/* SPDX-License-Identifier: MIT */
/*
 * fuzzhelp.h - shared bits of the libFuzzer harnesses (tests/fuzz/fuzz_*.c):
 * a reader that turns the fuzzer's bytes into typed values, the
 * invariant check that aborts (a crash libFuzzer records) with a reason,
 * and the common LLVMFuzzerInitialize.
 */
#ifndef BT_FUZZHELP_H
#define BT_FUZZHELP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

/*
 * The LLVMFuzzerInitialize of a harness that needs nothing but a quiet
 * log (its file includes log.h); one with more to set up writes its own.
 */
#define FZ_INITIALIZE_QUIET_LOG()					\
int									\
LLVMFuzzerInitialize(int *argc, char ***argv)				\
{									\
	(void)argc;							\
	(void)argv;							\
	log_init(-1);							\
	return 0;							\
}

/* an invariant of the code under test does not hold: a finding */
#define FZ_CHECK(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz invariant failed: %s (%s:%d): ",	\
		    #cond, __FILE__, __LINE__);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

/* consumes the input front to back; exhausted: zeros and empty strings */
struct fz {
	const uint8_t	*p;
	size_t		 n;
};

static inline uint8_t
fz_u8(struct fz *f)
{
	uint8_t	 v = 0;

	if (f->n > 0) {
		v = *f->p++;
		f->n--;
	}
	return v;
}

static inline uint64_t
fz_u64(struct fz *f, int bytes)
{
	uint64_t	 v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | fz_u8(f);
	return v;
}

/*
 * A byte string of up to 255 bytes: a length byte, then the bytes, or
 * (length 255) everything up to the next "\xff\xfe" separator, so that
 * seeds can carry long text and mutations keep their framing.
 */
static inline const uint8_t *
fz_bytes(struct fz *f, size_t *lenp)
{
	const uint8_t	*s;
	size_t		 len = fz_u8(f);

	if (len == 255) {
		s = f->p;
		for (len = 0; len + 1 < f->n; len++)
			if (s[len] == 0xff && s[len + 1] == 0xfe)
				break;
		if (len + 1 >= f->n)
			len = f->n;
		f->p += len;
		f->n -= len;
		if (f->n >= 2) {
			f->p += 2;
			f->n -= 2;
		}
		*lenp = len;
		return s;
	}
	if (len > f->n)
		len = f->n;
	s = f->p;
	f->p += len;
	f->n -= len;
	*lenp = len;
	return s;
}

/* a NUL-terminated copy of n bytes (the caller frees) */
static inline char *
fz_strndup(const void *s, size_t n)
{
	char	*d = malloc(n + 1);

	if (d == NULL)
		abort();
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

#endif
