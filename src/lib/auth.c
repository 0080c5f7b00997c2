/* SPDX-License-Identifier: MIT */
/*
 * auth.c - the users file, HTTP Basic verification against crypt(3)
 * hashes, a short-lived cache of successful verifications, and password
 * hashing for bpftraced-passwd (see auth.h for the file format and rules).
 *
 * Threads: auth_load() and auth_hash_password() run wherever they are
 * called and share nothing. auth_check_basic() runs on libmicrohttpd
 * threads concurrently: the users array is immutable after load; the only
 * shared mutable state is the verification cache (ad_cache_lock, held only
 * for a lookup or an insert, never across crypt_r) and the statistics
 * (atomics). crypt_r() gets a fresh heap crypt_data per call: it is 32 KiB,
 * too big for an MHD thread's stack to carry casually, and sharing one
 * would serialise every check.
 *
 * Cost: a yescrypt check at the default cost takes ~25 ms of one CPU and
 * 16 MiB of memory, and every request with credentials that are not cached
 * pays it, unknown users included: they are checked against a dummy
 * yescrypt setting of the default cost, so they take as long as a user
 * made by bpftraced-passwd. Limiting concurrent or failed attempts is the
 * HTTP layer's job.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "util.h"

#define AUTH_USERS_MAX	1024	/* users in one file; lookups are linear */
#define AUTH_KEY_LEN	32	/* SHA-256 */

_Static_assert(AUTH_PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
    "crypt_r refuses longer passphrases");
_Static_assert(AUTH_HASH_MAX <= CRYPT_OUTPUT_SIZE, "hash buffer size");

struct auth_entry {
	char		 ae_name[AUTH_NAME_MAX + 1];
	char		*ae_hash;	/* owned */
	unsigned	 ae_roles;
};

struct auth_slot {
	unsigned char	 sl_key[AUTH_KEY_LEN];
	size_t		 sl_user;	/* index into ad_users */
	int64_t		 sl_expires;	/* now_mono_ms(); 0 = unused */
};

struct auth_db {
	atomic_int		 ad_refs;
	struct auth_entry	*ad_users;	/* owned, immutable */
	size_t			 ad_nusers;
	char			 ad_dummy[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned char		 ad_key_salt[AUTH_KEY_LEN];
	_Atomic int64_t		 ad_cache_ttl;
	pthread_mutex_t		 ad_cache_lock;
	struct auth_slot	 ad_cache[AUTH_CACHE_SIZE];
	_Atomic uint64_t	 ad_checks;
	_Atomic uint64_t	 ad_cache_hits;
	_Atomic uint64_t	 ad_crypt_calls;
	_Atomic uint64_t	 ad_failures;
};

static const struct {
	const char	*r_name;
	unsigned	 r_bit;
} auth_roles[] = {
	{ "control", AUTH_ROLE_CONTROL },
	{ "admin", AUTH_ROLE_ADMIN },
	{ "read", AUTH_ROLE_READ },
};

/* --- SHA-256 (FIPS 180-4), for cache keys only --- */

struct sha256 {
	uint32_t		 h[8];
	struct sha_blocks	 b;	/* sha1.c's block feeder */
};

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t
ror32(uint32_t v, int n)
{
	return (v >> n) | (v << (32 - n));
}

static void
sha256_block(void *ctx, const unsigned char *p)
{
	struct sha256	*c = ctx;
	uint32_t	 w[64], s[8], t1, t2;
	int		 i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + w[i - 7] +
		    (ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^
		    (w[i - 15] >> 3)) +
		    (ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^
		    (w[i - 2] >> 10));
	memcpy(s, c->h, sizeof(s));
	for (i = 0; i < 64; i++) {
		t1 = s[7] + (ror32(s[4], 6) ^ ror32(s[4], 11) ^
		    ror32(s[4], 25)) + ((s[4] & s[5]) ^ (~s[4] & s[6])) +
		    sha256_k[i] + w[i];
		t2 = (ror32(s[0], 2) ^ ror32(s[0], 13) ^ ror32(s[0], 22)) +
		    ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
		memmove(s + 1, s, 7 * sizeof(s[0]));
		s[4] += t1;
		s[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		c->h[i] += s[i];
}

static void
sha256_init(struct sha256 *c)
{
	static const uint32_t	 iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memset(c, 0, sizeof(*c));
	memcpy(c->h, iv, sizeof(iv));
}

static void
sha256_update(struct sha256 *c, const void *data, size_t n)
{
	sha_blocks_add(&c->b, data, n, sha256_block, c);
}

static void
sha256_final(struct sha256 *c, unsigned char out[AUTH_KEY_LEN])
{
	int	 i;

	sha_blocks_end(&c->b, sha256_block, c);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(c->h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
		out[4 * i + 3] = (unsigned char)c->h[i];
	}
	explicit_bzero(c, sizeof(*c));
}

/* --- base64 --- */

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict RFC 4648 section 4: the standard alphabet, padding required (the
 * length is a multiple of 4), '=' only at the end, unused bits of the
 * last quantum zero, no whitespace or line breaks. Every Basic client we
 * know pads (browsers, curl, Go's SetBasicAuth, Grafana), and one
 * canonical spelling per credential keeps the cache key honest. Writes
 * at most len / 4 * 3 bytes to out (outlen bytes). Returns 0 or -1.
 */
int
auth_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen, size_t *outn)
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 i, n = 0, pad = 0;
	int			 v[4], k;

	*outn = 0;
	if (len % 4 != 0)
		return -1;
	if (len > 0 && p[len - 1] == '=')
		pad = (len > 1 && p[len - 2] == '=') ? 2 : 1;
	if (len / 4 * 3 - pad > outlen)
		return -1;
	for (i = 0; i < len; i += 4) {
		int	 last = (i + 4 == len);

		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad)
				v[k] = 0;
			else if ((v[k] = b64_value(p[i + k])) < 0)
				return -1;
		}
		out[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (last && pad == 2) {
			if ((v[1] & 0x0f) != 0)
				return -1;
			break;
		}
		out[n++] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (last && pad == 1) {
			if ((v[2] & 0x03) != 0)
				return -1;
			break;
		}
		out[n++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	*outn = n;
	return 0;
}

/* --- names, roles, hashes --- */

int
auth_name_valid(const char *s)
{
	size_t	 n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_.@-");

	return n >= 1 && n <= AUTH_NAME_MAX && s[n] == '\0';
}

static unsigned
auth_role_bit(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < sizeof(auth_roles) / sizeof(auth_roles[0]); i++)
		if (strlen(auth_roles[i].r_name) == n &&
		    memcmp(auth_roles[i].r_name, s, n) == 0)
			return auth_roles[i].r_bit;
	return 0;
}

/*
 * "control,read" -> bits. NULL means "not given": AUTH_ROLE_DEFAULT.
 * An empty list or an empty or unknown element is an error; repeating a
 * role is harmless. On error *roles is not modified.
 */
int
auth_parse_roles(const char *s, unsigned *roles, char *err, size_t errlen)
{
	unsigned	 bits = 0, bit;
	size_t		 n;

	if (s == NULL) {
		*roles = AUTH_ROLE_DEFAULT;
		return 0;
	}
	for (;;) {
		n = strcspn(s, ",");
		if (n == 0) {
			seterr(err, errlen, "empty role (roles are a comma-"
			    "separated list of control, admin, read)");
			return -1;
		}
		if ((bit = auth_role_bit(s, n)) == 0) {
			seterr(err, errlen, "unknown role \"%.*s\" (roles are "
			    "control, admin, read)", n > 32 ? 32 : (int)n, s);
			return -1;
		}
		bits |= bit;
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	*roles = bits;
	return 0;
}

int
auth_has_role(const struct auth_user *u, const char *role)
{
	unsigned	 bit;

	if (u == NULL || role == NULL)
		return 0;
	bit = auth_role_bit(role, strlen(role));
	return bit != 0 && (u->au_roles & bit) == bit;
}

/*
 * Accept only the schemes we trust, and only whole hashes (a bare salt
 * such as "$y$j9T$abc" would lock the user out without saying why). The
 * checked length is the one field crypt(3) always writes at full length:
 * the hash after the last '$' (yescrypt, sha512), or the whole string
 * (bcrypt). Returns 0, or -1 with the reason in err.
 */
static int
auth_hash_valid(const char *h, char *err, size_t errlen)
{
	static const struct {
		const char	*s_prefix;
		const char	*s_name;
		size_t		 s_tail;	/* chars after the last '$' */
		size_t		 s_total;	/* whole string, 0 = any */
	} schemes[] = {
		{ "$y$", "yescrypt", 43, 0 },
		{ "$2b$", "bcrypt", 53, 60 },
		{ "$2y$", "bcrypt", 53, 60 },
		{ "$6$", "sha512crypt", 86, 0 },
	};
	const char	*tail;
	size_t		 i, len = strlen(h), plen;

	if (h[0] != '$') {
		seterr(err, errlen, "the password is not a crypt(3) hash "
		    "(plain text?): make one with bpftraced-passwd");
		return -1;
	}
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncmp(h, schemes[i].s_prefix,
		    strlen(schemes[i].s_prefix)) == 0)
			break;
	if (i == sizeof(schemes) / sizeof(schemes[0])) {
		/* name the scheme: "$1$", "$5$", "$argon2id$" (cut at 12) */
		plen = strcspn(h + 1, "$") + 2;
		seterr(err, errlen, "unsupported hash scheme \"%.*s\" (use "
		    "yescrypt $y$, bcrypt $2b$ or sha512crypt $6$)",
		    plen > 12 ? 12 : (int)plen, h);
		return -1;
	}
	tail = strrchr(h, '$') + 1;
	if (len >= AUTH_HASH_MAX ||
	    strspn(h, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz$=") != len ||
	    strlen(tail) != schemes[i].s_tail ||
	    (schemes[i].s_total != 0 && len != schemes[i].s_total) ||
	    crypt_checksalt(h) != CRYPT_SALT_OK) {
		seterr(err, errlen, "malformed or incomplete %s hash",
		    schemes[i].s_name);
		return -1;
	}
	return 0;
}

/* --- loading --- */

/*
 * The file holds password hashes, which are offline-guessable: refuse it
 * unless only its owner (root or us) can change it and nobody but that
 * owner and its group can read it.
 */
static int
auth_file_mode_ok(const char *path, const struct stat *st, char *err,
    size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		seterr(err, errlen, "%s: not a regular file", path);
		return 0;
	}
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		seterr(err, errlen, "%s: owned by uid %u; the users file must "
		    "be owned by root or by uid %u (bpftraced)", path,
		    (unsigned)st->st_uid, (unsigned)geteuid());
		return 0;
	}
	if ((st->st_mode & 027) != 0) {
		seterr(err, errlen, "%s: mode %04o is too open; the users file "
		    "holds password hashes: no group write and nothing for "
		    "others (chmod 600)", path,
		    (unsigned)(st->st_mode & 07777));
		return 0;
	}
	return 1;
}

/* Parse one non-comment line into e (e->ae_hash owned by the caller). */
static int
auth_parse_line(char *line, struct auth_entry *e, char *err, size_t errlen)
{
	char	*hash, *roles, *colon, reason[256];

	if ((colon = strchr(line, ':')) == NULL) {
		seterr(err, errlen, "missing hash (expected "
		    "name:hash[:roles])");
		return -1;
	}
	*colon = '\0';
	hash = colon + 1;
	if ((roles = strchr(hash, ':')) != NULL)
		*roles++ = '\0';
	if (!auth_name_valid(line)) {
		seterr(err, errlen, "bad user name (1..%d of A-Z a-z 0-9 "
		    "_ . @ -)", AUTH_NAME_MAX);
		return -1;
	}
	if (*hash == '\0') {
		seterr(err, errlen, "user %s: missing hash", line);
		return -1;
	}
	if (auth_hash_valid(hash, reason, sizeof(reason)) == -1 ||
	    auth_parse_roles(roles, &e->ae_roles, reason,
	    sizeof(reason)) == -1) {
		seterr(err, errlen, "user %s: %s", line, reason);
		return -1;
	}
	memcpy(e->ae_name, line, strlen(line) + 1);
	if ((e->ae_hash = strdup(hash)) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
auth_add_user(struct auth_db *db, const struct auth_entry *e, char *err,
    size_t errlen)
{
	struct auth_entry	*nu;
	size_t			 i;

	for (i = 0; i < db->ad_nusers; i++)
		if (strcmp(db->ad_users[i].ae_name, e->ae_name) == 0) {
			seterr(err, errlen, "duplicate user %s", e->ae_name);
			return -1;
		}
	if (db->ad_nusers == AUTH_USERS_MAX) {
		seterr(err, errlen, "more than %d users", AUTH_USERS_MAX);
		return -1;
	}
	nu = reallocarray(db->ad_users, db->ad_nusers + 1, sizeof(*nu));
	if (nu == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	db->ad_users = nu;
	db->ad_users[db->ad_nusers++] = *e;
	return 0;
}

static void
auth_free(struct auth_db *db)
{
	size_t	 i;

	if (db == NULL)
		return;
	for (i = 0; i < db->ad_nusers; i++) {
		explicit_bzero(db->ad_users[i].ae_hash,
		    strlen(db->ad_users[i].ae_hash));
		free(db->ad_users[i].ae_hash);
	}
	free(db->ad_users);
	pthread_mutex_destroy(&db->ad_cache_lock);
	explicit_bzero(db, sizeof(*db));
	free(db);
}

/*
 * Read and check the whole users file; any bad line refuses the whole file
 * (err: "path:line: reason"), so a typo never silently locks out or lets in
 * anybody. A file without users is refused too. Returns a db with one
 * reference, owned by the caller (auth_unref()), or NULL.
 */
struct auth_db *
auth_load(const char *path, char *err, size_t errlen)
{
	struct auth_db		*db = NULL;
	struct auth_entry	 e;
	struct stat		 st;
	FILE			*fp = NULL;
	char			*line = NULL, why[512];
	size_t			 cap = 0, lineno = 0, total = 0, n;
	ssize_t			 len;
	int			 fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	/* check the file we opened, not the name: no race with a rename */
	if (fstat(fd, &st) == -1) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	if (!auth_file_mode_ok(path, &st, err, errlen)) {
		close(fd);
		goto fail;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	atomic_init(&db->ad_refs, 1);
	atomic_init(&db->ad_cache_ttl, AUTH_CACHE_TTL_MS);
	pthread_mutex_init(&db->ad_cache_lock, NULL);
	random_bytes(db->ad_key_salt, sizeof(db->ad_key_salt));
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, db->ad_dummy,
	    sizeof(db->ad_dummy)) == NULL) {
		seterr(err, errlen, "crypt_gensalt: %s", strerror(errno));
		goto fail;
	}

	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		total += (size_t)len;
		if (total > AUTH_FILE_MAX) {
			seterr(err, errlen, "%s:%zu: file larger than %d bytes",
			    path, lineno, AUTH_FILE_MAX);
			goto fail;
		}
		if ((size_t)len > AUTH_LINE_MAX) {
			seterr(err, errlen, "%s:%zu: line longer than %d bytes",
			    path, lineno, AUTH_LINE_MAX);
			goto fail;
		}
		if (strlen(line) != (size_t)len) {
			seterr(err, errlen, "%s:%zu: NUL byte", path, lineno);
			goto fail;
		}
		n = (size_t)len;
		while (n > 0 && strchr("\r\n \t", line[n - 1]) != NULL)
			line[--n] = '\0';
		n = strspn(line, " \t");
		if (line[n] == '\0' || line[n] == '#')
			continue;
		memset(&e, 0, sizeof(e));
		if (auth_parse_line(line, &e, why, sizeof(why)) == -1 ||
		    auth_add_user(db, &e, why, sizeof(why)) == -1) {
			free(e.ae_hash);
			seterr(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto fail;
		}
	}
	if (ferror(fp)) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (db->ad_nusers == 0) {
		seterr(err, errlen, "%s: no users", path);
		goto fail;
	}
	free(line);
	fclose(fp);
	return db;
fail:
	free(line);
	if (fp != NULL)
		fclose(fp);
	auth_free(db);
	return NULL;
}

/* Takes one more reference; returns db. NULL is passed through. */
struct auth_db *
auth_ref(struct auth_db *db)
{
	if (db != NULL)
		atomic_fetch_add(&db->ad_refs, 1);
	return db;
}

/* Drops one reference; the last one frees the db. Accepts NULL. */
void
auth_unref(struct auth_db *db)
{
	if (db != NULL && atomic_fetch_sub(&db->ad_refs, 1) == 1)
		auth_free(db);
}

size_t
auth_count(const struct auth_db *db)
{
	return db == NULL ? 0 : db->ad_nusers;
}

/* Lifetime of cached verifications; 0 disables the cache. */
void
auth_set_cache_ttl(struct auth_db *db, int64_t ms)
{
	atomic_store(&db->ad_cache_ttl, ms < 0 ? 0 : ms);
}

void
auth_get_stats(struct auth_db *db, struct auth_stats *st)
{
	st->as_checks = atomic_load(&db->ad_checks);
	st->as_cache_hits = atomic_load(&db->ad_cache_hits);
	st->as_crypt_calls = atomic_load(&db->ad_crypt_calls);
	st->as_failures = atomic_load(&db->ad_failures);
}

/* --- verification --- */

/*
 * Cache of successful verifications. The key is SHA-256 over a per-db
 * random salt and the base64 credentials, so the cache holds neither
 * passwords nor unsalted fast hashes of them, and a reload (new db)
 * forgets everything. Only AUTH_OK is ever inserted.
 */
static void
auth_cache_key(const struct auth_db *db, const char *cred, size_t len,
    unsigned char key[AUTH_KEY_LEN])
{
	struct sha256	 c;

	sha256_init(&c);
	sha256_update(&c, db->ad_key_salt, sizeof(db->ad_key_salt));
	sha256_update(&c, cred, len);
	sha256_final(&c, key);
}

static int
auth_cache_lookup(struct auth_db *db, const unsigned char *key, size_t *user)
{
	int64_t	 now = now_mono_ms();
	int	 i, found = 0;

	pthread_mutex_lock(&db->ad_cache_lock);
	for (i = 0; i < AUTH_CACHE_SIZE; i++) {
		struct auth_slot	*sl = &db->ad_cache[i];

		if (sl->sl_expires > now &&
		    memcmp(sl->sl_key, key, AUTH_KEY_LEN) == 0) {
			*user = sl->sl_user;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&db->ad_cache_lock);
	return found;
}

/* Reuse the key's slot, else a free or expired one, else the oldest. */
static void
auth_cache_insert(struct auth_db *db, const unsigned char *key, size_t user)
{
	int64_t			 now = now_mono_ms();
	int64_t			 ttl = atomic_load(&db->ad_cache_ttl);
	struct auth_slot	*victim = NULL, *sl;
	int			 i;

	if (ttl == 0)
		return;
	pthread_mutex_lock(&db->ad_cache_lock);
	for (i = 0; i < AUTH_CACHE_SIZE; i++) {
		sl = &db->ad_cache[i];
		if (memcmp(sl->sl_key, key, AUTH_KEY_LEN) == 0 &&
		    sl->sl_expires != 0) {
			victim = sl;
			break;
		}
		if (victim == NULL || victim->sl_expires > sl->sl_expires)
			victim = sl;
	}
	memcpy(victim->sl_key, key, AUTH_KEY_LEN);
	victim->sl_user = user;
	victim->sl_expires = now + ttl;
	pthread_mutex_unlock(&db->ad_cache_lock);
}

/* Compare without an early exit; time depends only on b's length. */
static int
auth_equal_ct(const char *a, const char *b)
{
	size_t			 la = strlen(a), lb = strlen(b), i;
	volatile unsigned char	 diff = (la != lb);

	for (i = 0; i < lb; i++)
		diff |= (unsigned char)((i < la ? a[i] : 0) ^ b[i]);
	return diff == 0;
}

static size_t
auth_find_user(const struct auth_db *db, const char *name)
{
	size_t	 i;

	for (i = 0; i < db->ad_nusers; i++)
		if (strcmp(db->ad_users[i].ae_name, name) == 0)
			return i;
	return (size_t)-1;
}

/*
 * The roles the file gives name, for a user someone else authenticated
 * (pmcd: a SASL login or a local socket's peer uid). The password is not
 * looked at. -1 when name is not in the file.
 */
int
auth_user_roles(const struct auth_db *db, const char *name, unsigned *roles)
{
	size_t	 i;

	*roles = 0;
	if (db == NULL || name == NULL ||
	    (i = auth_find_user(db, name)) == (size_t)-1)
		return -1;
	*roles = db->ad_users[i].ae_roles;
	return 0;
}

const char *
auth_result_str(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_MISSING:
		return "missing";
	case AUTH_MALFORMED:
		return "malformed";
	case AUTH_BAD:
		return "bad";
	case AUTH_ERROR:
		return "error";
	}
	return "?";
}

static int
auth_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Check one Authorization header value (hdr may be NULL: no header).
 * AUTH_OK fills *out; any other result zeroes it. err (may be NULL) says
 * why in words that are safe to send to the client: it never tells an
 * unknown user from a wrong password and never echoes the credentials.
 * The scheme name is case-insensitive; blanks around the value and
 * between "Basic" and the credentials are tolerated; the user name is
 * everything before the first ':' of the decoded credentials, the
 * password everything after it (it may contain ':'). A password longer
 * than AUTH_PASSWORD_MAX is AUTH_BAD without running crypt.
 */
/*
 * The one implementation of auth_check_basic() and auth_check_quick():
 * with may_crypt 0 it returns AUTH_UNDECIDED (and counts nothing) where
 * only crypt_r could tell.
 */
#define AUTH_UNDECIDED	(-1)

static int
auth_check(struct auth_db *db, const char *hdr, struct auth_user *out,
    char *err, size_t errlen, int may_crypt)
{
	unsigned char		 dec[AUTH_HEADER_MAX / 4 * 3 + 1];
	unsigned char		 key[AUTH_KEY_LEN];
	struct crypt_data	*cd = NULL;
	int			 ret = AUTH_MALFORMED;
	const char		*p, *setting, *hash, *computed;
	char			*colon;
	size_t			 len, dlen = 0, user = (size_t)-1;
	int			 match;

	memset(out, 0, sizeof(*out));
	if (hdr == NULL) {
		seterr(err, errlen, "authentication required");
		ret = AUTH_MISSING;
		goto done;
	}
	if ((len = strnlen(hdr, AUTH_HEADER_MAX + 1)) > AUTH_HEADER_MAX) {
		seterr(err, errlen, "Authorization header longer than %d "
		    "bytes", AUTH_HEADER_MAX);
		goto done;
	}
	for (p = hdr; auth_is_ows(*p); p++, len--)
		;
	while (len > 0 && auth_is_ows(p[len - 1]))
		len--;
	if (len == 0) {
		seterr(err, errlen, "authentication required");
		ret = AUTH_MISSING;
		goto done;
	}
	if (len < 6 || strncasecmp(p, "Basic", 5) != 0 || !auth_is_ows(p[5])) {
		seterr(err, errlen, "Authorization must be \"Basic "
		    "<base64 user:password>\"");
		goto done;
	}
	for (p += 5, len -= 5; auth_is_ows(*p); p++, len--)
		;
	if (auth_base64_decode(p, len, dec, sizeof(dec) - 1, &dlen) == -1) {
		seterr(err, errlen, "Basic credentials are not valid base64");
		goto done;
	}
	if (memchr(dec, '\0', dlen) != NULL) {
		seterr(err, errlen, "Basic credentials contain a NUL byte");
		goto done;
	}
	dec[dlen] = '\0';
	if ((colon = strchr((char *)dec, ':')) == NULL) {
		seterr(err, errlen, "Basic credentials have no ':' between "
		    "user and password");
		goto done;
	}
	*colon = '\0';
	/* crypt_r refuses these, so no stored hash can match them */
	if (strlen(colon + 1) > AUTH_PASSWORD_MAX) {
		seterr(err, errlen, "unknown user or wrong password");
		ret = AUTH_BAD;
		goto done;
	}

	auth_cache_key(db, p, len, key);
	if (auth_cache_lookup(db, key, &user)) {
		atomic_fetch_add(&db->ad_cache_hits, 1);
		ret = AUTH_OK;
		goto done;
	}
	if (!may_crypt) {
		ret = AUTH_UNDECIDED;
		goto wipe;
	}
	/* an unknown user costs the same crypt_r as a known one */
	user = auth_find_user(db, (char *)dec);
	hash = user != (size_t)-1 ? db->ad_users[user].ae_hash : NULL;
	setting = hash != NULL ? hash : db->ad_dummy;
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		seterr(err, errlen, "out of memory");
		ret = AUTH_ERROR;
		goto done;
	}
	atomic_fetch_add(&db->ad_crypt_calls, 1);
	computed = crypt_r(colon + 1, setting, cd);
	if (computed == NULL || computed[0] == '*') {
		seterr(err, errlen, "crypt failed: %s", strerror(errno));
		ret = AUTH_ERROR;
		goto done;
	}
	match = auth_equal_ct(computed, setting);
	if (hash == NULL || !match) {
		seterr(err, errlen, "unknown user or wrong password");
		ret = AUTH_BAD;
		goto done;
	}
	auth_cache_insert(db, key, user);
	ret = AUTH_OK;
done:
	atomic_fetch_add(&db->ad_checks, 1);
	if (ret == AUTH_OK) {
		memcpy(out->au_name, db->ad_users[user].ae_name,
		    sizeof(out->au_name));
		out->au_roles = db->ad_users[user].ae_roles;
	} else if (ret == AUTH_BAD) {
		/* for the audit trail; dec holds "user\0password" here */
		size_t	 n = strnlen((const char *)dec,
		    sizeof(out->au_tried) - 1);

		memcpy(out->au_tried, dec, n);
		out->au_tried[n] = '\0';
		atomic_fetch_add(&db->ad_failures, 1);
	} else
		atomic_fetch_add(&db->ad_failures, 1);
wipe:
	if (cd != NULL) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	explicit_bzero(dec, sizeof(dec));
	explicit_bzero(key, sizeof(key));
	return ret;
}

enum auth_result
auth_check_basic(struct auth_db *db, const char *hdr, struct auth_user *out,
    char *err, size_t errlen)
{
	return (enum auth_result)auth_check(db, hdr, out, err, errlen, 1);
}

/*
 * auth_check_basic() without crypt_r, for a thread that must not spend
 * ~25 ms: returns 1 with *r set when the answer is known without it
 * (no or a malformed header, a cached success, an over-long password),
 * or 0 (nothing counted, *out zeroed) when only auth_check_basic() can
 * tell.
 */
int
auth_check_quick(struct auth_db *db, const char *hdr, struct auth_user *out,
    enum auth_result *r, char *err, size_t errlen)
{
	int	 ret = auth_check(db, hdr, out, err, errlen, 0);

	if (ret == AUTH_UNDECIDED)
		return 0;
	*r = (enum auth_result)ret;
	return 1;
}

/* --- hashing --- */

/*
 * yescrypt at libxcrypt's default cost with a fresh random salt. Writes
 * the NUL-terminated hash to out (AUTH_HASH_MAX bytes is always enough).
 * Returns 0, or -1 with err.
 */
int
auth_hash_password(const char *password, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data	*cd = NULL;
	const char		*h;
	int			 ret = -1;

	if (strlen(password) > AUTH_PASSWORD_MAX) {
		seterr(err, errlen, "password longer than %d bytes",
		    AUTH_PASSWORD_MAX);
		goto fail;
	}
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		seterr(err, errlen, "crypt_gensalt: %s", strerror(errno));
		goto fail;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	h = crypt_r(password, salt, cd);
	if (h == NULL || h[0] == '*') {
		seterr(err, errlen, "crypt: %s", strerror(errno));
		goto fail;
	}
	if (strlen(h) >= outlen) {
		seterr(err, errlen, "hash longer than %zu bytes", outlen);
		goto fail;
	}
	memcpy(out, h, strlen(h) + 1);
	ret = 0;
fail:
	if (cd != NULL) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	return ret;
}
