/* SPDX-License-Identifier: MIT */
/*
 * auth.h - who may talk to bpftraced: the users file (--auth-file), HTTP
 * Basic credentials checked against crypt(3) hashes, roles, and password
 * hashing for bpftraced-passwd. Dependency-free apart from util.h and
 * libcrypt, so it is unit-tested alone (tests/unit/test_auth.c).
 *
 * Users file: one user per line, "name:hash[:roles]". '#' starts a comment
 * line; blank lines are skipped; trailing blanks and CR are ignored.
 *   name   [A-Za-z0-9_.@-], 1..AUTH_NAME_MAX bytes, unique in the file
 *   hash   crypt(3): yescrypt "$y$", bcrypt "$2b$"/"$2y$", sha512 "$6$";
 *          plain text and other schemes are refused at load
 *   roles  comma-separated subset of control,admin,read; default control.
 *          Roles are not hierarchical: auth_has_role() reports exactly
 *          what the file says, the HTTP layer decides what each allows.
 * The file must be a regular file owned by root or by the daemon's
 * effective uid with (mode & 027) == 0: 0600, 0400, 0640, 0440 pass;
 * anything world-accessible or group-writable is refused.
 *
 * HTTP Basic: auth_check_basic() takes the raw Authorization value (NULL
 * when absent) and says which answer to give; its err text is safe to
 * send to the client (an unknown user and a wrong password read alike).
 * In a request handler:
 *	struct auth_user u;
 *	switch (auth_check_basic(db, hdr, &u, err, sizeof(err))) {
 *	case AUTH_OK: if (!auth_has_role(&u, "control")) 403; break;
 *	case AUTH_MISSING: case AUTH_BAD: 401 + WWW-Authenticate: Basic;
 *	case AUTH_MALFORMED: 400; case AUTH_ERROR: 500 + log err;
 *	}
 * Base64 is strict RFC 4648 with padding required (see auth.c).
 *
 * Cache: a yescrypt check costs ~25 ms of CPU and Grafana sends the same
 * credentials every second, so each db remembers up to AUTH_CACHE_SIZE
 * successful verifications for AUTH_CACHE_TTL_MS (counted from the
 * verification; a hit does not extend it), keyed by SHA-256 over a
 * per-db random salt and the base64 credentials. Failures are never
 * cached, the oldest entry makes room for a new one, and a reload starts
 * with an empty cache, so a changed password or a removed user takes
 * effect at the reload.
 *
 * Threads: auth_load() runs on the main thread. A loaded db is immutable
 * except for its verification cache, which has its own mutex, so
 * auth_check_basic() may be called from any number of libmicrohttpd
 * threads at once. Reload = auth_load() a new db, swap the daemon's
 * pointer under the daemon's own lock, auth_unref() the old one; a request
 * takes auth_ref() under that lock and auth_unref() when done, so an old
 * db lives until its last request finishes.
 */
#ifndef BT_AUTH_H
#define BT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_NAME_MAX		64		/* user name bytes */
#define AUTH_HEADER_MAX		4096		/* Authorization value bytes */
#define AUTH_PASSWORD_MAX	511		/* libxcrypt's limit, bytes */
#define AUTH_LINE_MAX		1024		/* users file line bytes */
#define AUTH_FILE_MAX		(1024 * 1024)	/* users file bytes */
#define AUTH_HASH_MAX		384		/* CRYPT_OUTPUT_SIZE */
#define AUTH_CACHE_SIZE		256		/* cached verifications */
#define AUTH_CACHE_TTL_MS	60000		/* lifetime of one */

#define AUTH_ROLE_CONTROL	0x1u
#define AUTH_ROLE_ADMIN		0x2u
#define AUTH_ROLE_READ		0x4u
#define AUTH_ROLE_DEFAULT	AUTH_ROLE_CONTROL

enum auth_result {
	AUTH_OK = 0,	/* out is filled in */
	AUTH_MISSING,	/* no header or an empty one: 401 + challenge */
	AUTH_MALFORMED,	/* not "Basic <base64 user:password>": 400 */
	AUTH_BAD,	/* unknown user or wrong password: 401 */
	AUTH_ERROR	/* out of memory or crypt failure: 500 */
};

struct auth_user {
	char		 au_name[AUTH_NAME_MAX + 1];
	unsigned	 au_roles;	/* AUTH_ROLE_* bits */
	/* AUTH_BAD only: the user name that was tried (client text, cut) */
	char		 au_tried[AUTH_NAME_MAX + 1];
};

struct auth_stats {
	uint64_t	 as_checks;	/* auth_check_basic() calls */
	uint64_t	 as_cache_hits;	/* answered from the cache */
	uint64_t	 as_crypt_calls;	/* crypt_r() runs */
	uint64_t	 as_failures;	/* results other than AUTH_OK */
};

struct auth_db;

/* Returns a db holding one reference (the caller's), or NULL with err. */
struct auth_db	*auth_load(const char *path, char *err, size_t errlen);
struct auth_db	*auth_ref(struct auth_db *db);
void		 auth_unref(struct auth_db *db);
size_t		 auth_count(const struct auth_db *db);
void		 auth_set_cache_ttl(struct auth_db *db, int64_t ms);
void		 auth_get_stats(struct auth_db *db, struct auth_stats *st);

enum auth_result auth_check_basic(struct auth_db *db, const char *hdr,
		    struct auth_user *out, char *err, size_t errlen);
/* 1 with *r when known without crypt (see auth.c), else 0 */
int		 auth_check_quick(struct auth_db *db, const char *hdr,
		    struct auth_user *out, enum auth_result *r, char *err,
		    size_t errlen);
const char	*auth_result_str(enum auth_result r);
int		 auth_has_role(const struct auth_user *u, const char *role);
/* roles of a user authenticated elsewhere (pmcd): -1 when not listed */
int		 auth_user_roles(const struct auth_db *db, const char *name,
		    unsigned *roles);

int		 auth_name_valid(const char *s);
int		 auth_parse_roles(const char *s, unsigned *roles, char *err,
		    size_t errlen);
int		 auth_hash_password(const char *password, char *out,
		    size_t outlen, char *err, size_t errlen);

/* Strict RFC 4648 base64 (padding required); exposed for tests. */
int		 auth_base64_decode(const char *in, size_t len,
		    unsigned char *out, size_t outlen, size_t *outn);

#endif
