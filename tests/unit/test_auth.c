/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c - the users file, HTTP Basic checks, the verification cache,
 * password hashing and the bpftraced-passwd program. Hashes are made here
 * with libcrypt (cheap costs where the scheme allows) so the expected
 * answers never come from auth.c itself. Files live in a fresh temporary
 * directory removed at the end.
 */
#include "testhelp.h"

#include <crypt.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"

extern char	**environ;

static char	 tmpdir[256];
static int	 nfiles;

/* --- helpers ------------------------------------------------------------- */

/* Write content to a new file in tmpdir with mode; returns its path. */
static const char *
write_file(const char *content, mode_t mode)
{
	static char	 path[512];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/users.%d", tmpdir, nfiles++);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, strlen(content), fp),
	    strlen(content));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

/* crypt(3) hash of pw with a fresh salt of scheme prefix at cost count. */
static void
make_hash(const char *prefix, unsigned long count, const char *pw, char *out,
    size_t outlen)
{
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data	*cd = calloc(1, sizeof(*cd));
	const char		*h;

	assert_non_null(cd);
	assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, salt,
	    sizeof(salt)));
	h = crypt_r(pw, salt, cd);
	assert_non_null(h);
	assert_true(h[0] == '$');
	assert_true(strlen(h) < outlen);
	memcpy(out, h, strlen(h) + 1);
	free(cd);
}

/* A cheap bcrypt hash (cost 4, ~1 ms) for tests that check many times. */
static void
cheap_hash(const char *pw, char *out, size_t outlen)
{
	make_hash("$2b$", 4, pw, out, outlen);
}

static void
b64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char	 a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i;
	uint32_t		 v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		*out++ = a[v >> 18];
		*out++ = a[(v >> 12) & 63];
		*out++ = a[(v >> 6) & 63];
		*out++ = a[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = a[v >> 18];
		*out++ = a[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = a[v >> 18];
		*out++ = a[(v >> 12) & 63];
		*out++ = a[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}

/* "Basic base64(cred)" for cred of n bytes (may hold NUL); caller frees. */
static char *
basic_n(const char *cred, size_t n)
{
	char	*h = malloc(6 + (n + 2) / 3 * 4 + 1);

	assert_non_null(h);
	memcpy(h, "Basic ", 6);
	b64_encode((const unsigned char *)cred, n, h + 6);
	return h;
}

static char *
basic(const char *user, const char *pw)
{
	char	 cred[1024];
	int	 n = snprintf(cred, sizeof(cred), "%s:%s", user, pw);

	assert_true(n > 0 && (size_t)n < sizeof(cred));
	return basic_n(cred, (size_t)n);
}

/* Check user:pw against db; returns the result, fills *u. */
static enum auth_result
check(struct auth_db *db, const char *user, const char *pw,
    struct auth_user *u)
{
	char			*h = basic(user, pw), err[256];
	enum auth_result	 r;

	r = auth_check_basic(db, h, u, err, sizeof(err));

	free(h);
	return r;
}

static struct auth_db *
load_ok(const char *content)
{
	char		 err[512] = "";
	struct auth_db	*db = auth_load(write_file(content, 0600), err,
	    sizeof(err));

	if (db == NULL)
		fail_msg("auth_load: %s", err);
	return db;
}

/* Load content expecting failure; returns err in a static buffer. */
static const char *
load_fails(const char *content, mode_t mode)
{
	static char	 err[512];
	struct auth_db	*db;

	err[0] = '\0';
	db = auth_load(write_file(content, mode), err, sizeof(err));
	if (db != NULL) {
		auth_unref(db);
		fail_msg("auth_load accepted:\n%s", content);
	}
	assert_true(err[0] != '\0');
	return err;
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static uint64_t
crypt_calls(struct auth_db *db)
{
	struct auth_stats	 st;

	auth_get_stats(db, &st);
	return st.as_crypt_calls;
}

/* A db with alice (password "right", cheap bcrypt, roles control). */
static struct auth_db *
alice_db(void)
{
	char	 h[AUTH_HASH_MAX], file[AUTH_HASH_MAX + 32];

	cheap_hash("right", h, sizeof(h));
	snprintf(file, sizeof(file), "alice:%s\n", h);
	return load_ok(file);
}

/*
 * Run argv with input on stdin; stdout goes to out (NUL-terminated).
 * Returns the exit status, or -1 if it did not exit normally.
 */
static int
run(char *const argv[], const char *input, char *out, size_t outlen)
{
	posix_spawn_file_actions_t	 fa;
	int				 in[2], op[2], st;
	size_t				 n = 0;
	ssize_t				 k;
	pid_t				 pid;

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(op), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, op[0]);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ),
	    0);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(op[1]);
	if (input != NULL) {
		/* a child that refuses its arguments exits without reading */
		void	(*old)(int) = signal(SIGPIPE, SIG_IGN);
		ssize_t	 w = write(in[1], input, strlen(input));

		assert_true(w == (ssize_t)strlen(input) ||
		    (w == -1 && errno == EPIPE));
		signal(SIGPIPE, old);
	}
	close(in[1]);
	while (n + 1 < outlen && (k = read(op[0], out + n, outlen - n - 1)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(op[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *
passwd_path(void)
{
	const char	*p = getenv("BPFTRACED_PASSWD");

	if (p == NULL || access(p, X_OK) != 0) {
		print_message("skipped: bpftraced-passwd not found "
		    "(BPFTRACED_PASSWD=%s; run through make check)\n",
		    p ? p : "unset");
		skip();
	}
	return p;
}

/* --- loading ------------------------------------------------------------- */

static void
load_accepts_yescrypt_bcrypt_sha512_with_comments(void **state)
{
	char		 y[AUTH_HASH_MAX], b[AUTH_HASH_MAX], b2y[AUTH_HASH_MAX];
	char		 s[AUTH_HASH_MAX], err[256], file[4096];
	struct auth_user u;
	struct auth_db	*db;

	assert_int_equal(auth_hash_password("pw-y", y, sizeof(y), err,
	    sizeof(err)), 0);
	make_hash("$2b$", 4, "pw-b", b, sizeof(b));
	make_hash("$2b$", 4, "pw-2y", b2y, sizeof(b2y));
	memcpy(b2y, "$2y$", 4);	/* same algorithm, PHP's spelling */
	make_hash("$6$", 0, "pw-6", s, sizeof(s));
	snprintf(file, sizeof(file),
	    "# bpftraced users\n"
	    "\n"
	    "   \t\n"
	    "   # indented comment\n"
	    "yves:%s\n"
	    "bea:%s:read\r\n"
	    "yann:%s:admin,control   \n"
	    "sam.o-k_1@example.org:%s\n"
	    "# the end", y, b, b2y, s);
	db = load_ok(file);
	assert_int_equal(auth_count(db), 4);

	assert_int_equal(check(db, "yves", "pw-y", &u), AUTH_OK);
	assert_string_equal(u.au_name, "yves");
	assert_int_equal(u.au_roles, AUTH_ROLE_CONTROL);
	assert_int_equal(check(db, "bea", "pw-b", &u), AUTH_OK);
	assert_int_equal(u.au_roles, AUTH_ROLE_READ);
	assert_int_equal(check(db, "yann", "pw-2y", &u), AUTH_OK);
	assert_int_equal(u.au_roles, AUTH_ROLE_ADMIN | AUTH_ROLE_CONTROL);
	assert_int_equal(check(db, "sam.o-k_1@example.org", "pw-6", &u),
	    AUTH_OK);
	assert_int_equal(check(db, "yves", "pw-b", &u), AUTH_BAD);
	auth_unref(db);
}

/* Copy tmpl to out with every "HASH" replaced by h. */
static void
subst_hash(const char *tmpl, const char *h, char *out, size_t outlen)
{
	const char	*m;
	size_t		 n = 0, k;

	while ((m = strstr(tmpl, "HASH")) != NULL) {
		k = (size_t)(m - tmpl);
		assert_true(n + k + strlen(h) < outlen);
		memcpy(out + n, tmpl, k);
		memcpy(out + n + k, h, strlen(h));
		n += k + strlen(h);
		tmpl = m + 4;
	}
	assert_true(n + strlen(tmpl) < outlen);
	memcpy(out + n, tmpl, strlen(tmpl) + 1);
}

static void
load_refuses_bad_lines_with_file_and_line(void **state)
{
	char		 h[AUTH_HASH_MAX], file[4096], want[600];
	char		 longname[AUTH_NAME_MAX + 8];
	char		 longline[AUTH_LINE_MAX + 64];
	char		 line[AUTH_LINE_MAX + 512];
	const char	*err;
	size_t		 i;
	struct {
		const char	*line;	/* HASH: a valid hash */
		const char	*why;
	} cases[] = {
		{ "eve", "missing hash" },
		{ "eve:", "user eve: missing hash" },
		{ "eve::read", "user eve: missing hash" },
		{ "eve:hunter2", "user eve: the password is not a crypt(3) "
		    "hash (plain text?)" },
		{ "eve:$1$abcdefgh$0123456789012345678901",
		    "user eve: unsupported hash scheme \"$1$\"" },
		{ "eve:$5$abcdefgh$0123456789012345678901234567890123456789012",
		    "user eve: unsupported hash scheme \"$5$\"" },
		{ "eve:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		    "user eve: unsupported hash scheme \"$argon2id$\"" },
		{ "eve:$y$j9T$abcdefgh", "user eve: malformed or incomplete "
		    "yescrypt hash" },
		{ "eve:$2b$04$short", "user eve: malformed or incomplete "
		    "bcrypt hash" },
		{ "eve!:HASH", "bad user name" },
		{ "e ve:HASH", "bad user name" },
		{ ":HASH", "bad user name" },
		{ " eve:HASH", "bad user name" },
		{ "eve:HASH:root", "user eve: unknown role \"root\"" },
		{ "eve:HASH:", "user eve: empty role" },
		{ "eve:HASH:read,,admin", "user eve: empty role" },
		{ "eve:HASH:read,Admin", "user eve: unknown role \"Admin\"" },
		{ "alice:HASH", "duplicate user alice" },
		{ longname, "bad user name" },
		{ longline, "line longer than 1024 bytes" },
	};

	cheap_hash("x", h, sizeof(h));
	memset(longname, 'n', AUTH_NAME_MAX + 1);
	memcpy(longname + AUTH_NAME_MAX + 1, ":HASH", 6);
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		subst_hash(cases[i].line, h, line, sizeof(line));
		snprintf(file, sizeof(file), "# users\nalice:%s\n%s\nbob:%s\n",
		    h, line, h);
		err = load_fails(file, 0600);
		snprintf(want, sizeof(want), "%s/users.%d:3: %s", tmpdir,
		    nfiles - 1, cases[i].why);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("line \"%.60s\":\n got  %s\n want %s...",
			    line, err, want);
		assert_null(strstr(err, h));	/* hashes are not echoed */
	}
}

static void
load_accepts_name_at_64_bytes(void **state)
{
	char		 h[AUTH_HASH_MAX], file[AUTH_HASH_MAX + 100];
	struct auth_db	*db;

	cheap_hash("x", h, sizeof(h));
	memset(file, 'n', AUTH_NAME_MAX);
	snprintf(file + AUTH_NAME_MAX, sizeof(file) - AUTH_NAME_MAX, ":%s\n",
	    h);
	db = load_ok(file);
	assert_int_equal(auth_count(db), 1);
	auth_unref(db);
}

static void
load_refuses_nul_byte(void **state)
{
	char		 err[256], path[512];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/nul", tmpdir);
	assert_non_null(fp = fopen(path, "w"));
	fwrite("# a\nbob\0:x\n", 1, 11, fp);
	fclose(fp);
	chmod(path, 0600);
	assert_null(auth_load(path, err, sizeof(err)));
	assert_contains(err, "nul:2: NUL byte");
}

static void
load_refuses_file_without_users(void **state)
{
	assert_contains(load_fails("", 0600), ": no users");
	assert_contains(load_fails("# only a comment\n\n", 0600), ": no users");
}

static void
load_refuses_missing_file(void **state)
{
	char	 err[256], path[512];

	snprintf(path, sizeof(path), "%s/does-not-exist", tmpdir);
	assert_null(auth_load(path, err, sizeof(err)));
	assert_contains(err, "does-not-exist: No such file or directory");
	assert_null(auth_load(tmpdir, err, sizeof(err)));
	assert_contains(err, "not a regular file");
}

static void
load_refuses_file_mode_too_open(void **state)
{
	static const mode_t	 bad[] = { 0644, 0660, 0620, 0604, 0602, 0601,
	    0666, 0777 };
	static const mode_t	 good[] = { 0600, 0400, 0640, 0440, 0610 };
	char			 h[AUTH_HASH_MAX], file[AUTH_HASH_MAX + 16];
	char			 err[512];
	const char		*path;
	struct auth_db		*db;
	size_t			 i;

	cheap_hash("x", h, sizeof(h));
	snprintf(file, sizeof(file), "alice:%s\n", h);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char	*e = load_fails(file, bad[i]);
		char		 mode[32];

		snprintf(mode, sizeof(mode), "mode %04o is too open",
		    (unsigned)bad[i]);
		assert_contains(e, mode);
		assert_contains(e, "chmod 600");
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		path = write_file(file, good[i]);
		db = auth_load(path, err, sizeof(err));
		if (db == NULL)
			fail_msg("mode %04o refused: %s", (unsigned)good[i],
			    err);
		auth_unref(db);
	}
	/* owned by somebody else: only root can set that up */
	if (geteuid() != 0) {
		print_message("note: not root, foreign-owner case not run\n");
		return;
	}
	path = write_file(file, 0600);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_null(auth_load(path, err, sizeof(err)));
	assert_contains(err, "owned by uid 65534");
	assert_int_equal(chown(path, 0, 65534), 0);	/* root, other group */
	db = auth_load(path, err, sizeof(err));
	assert_non_null(db);
	auth_unref(db);
}

/* --- roles --------------------------------------------------------------- */

static void
roles_default_to_control_and_parse_lists(void **state)
{
	char		 h[AUTH_HASH_MAX], file[4 * AUTH_HASH_MAX + 128];
	char		 err[256];
	struct auth_user u;
	struct auth_db	*db;
	unsigned	 r = 0x100;

	cheap_hash("pw", h, sizeof(h));
	snprintf(file, sizeof(file), "plain:%s\nreader:%s:read\n"
	    "boss:%s:control,admin\nall:%s:admin,read,read,control\n",
	    h, h, h, h);
	db = load_ok(file);
	assert_int_equal(check(db, "plain", "pw", &u), AUTH_OK);
	assert_true(auth_has_role(&u, "control"));
	assert_false(auth_has_role(&u, "admin"));
	assert_false(auth_has_role(&u, "read"));
	assert_int_equal(check(db, "reader", "pw", &u), AUTH_OK);
	assert_true(auth_has_role(&u, "read"));
	assert_false(auth_has_role(&u, "control"));
	assert_int_equal(check(db, "boss", "pw", &u), AUTH_OK);
	assert_true(auth_has_role(&u, "control"));
	assert_true(auth_has_role(&u, "admin"));
	assert_false(auth_has_role(&u, "read"));
	assert_int_equal(check(db, "all", "pw", &u), AUTH_OK);
	assert_true(auth_has_role(&u, "read"));
	assert_true(auth_has_role(&u, "admin"));
	assert_true(auth_has_role(&u, "control"));
	assert_false(auth_has_role(&u, "root"));
	assert_false(auth_has_role(&u, ""));
	assert_false(auth_has_role(&u, NULL));
	assert_false(auth_has_role(NULL, "read"));
	auth_unref(db);

	assert_int_equal(auth_parse_roles(NULL, &r, err, sizeof(err)), 0);
	assert_int_equal(r, AUTH_ROLE_DEFAULT);
	assert_int_equal(auth_parse_roles("read,admin", &r, err, sizeof(err)),
	    0);
	assert_int_equal(r, AUTH_ROLE_READ | AUTH_ROLE_ADMIN);
	r = 0x100;
	assert_int_equal(auth_parse_roles("", &r, err, sizeof(err)), -1);
	assert_int_equal(auth_parse_roles("read,", &r, err, sizeof(err)), -1);
	assert_int_equal(auth_parse_roles(" read", &r, err, sizeof(err)), -1);
	assert_int_equal(r, 0x100);	/* untouched on error */
}

/* --- HTTP Basic ---------------------------------------------------------- */

static void
check_basic_accepts_right_password_refuses_wrong(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;

	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_string_equal(u.au_name, "alice");
	assert_int_equal(check(db, "alice", "wrong", &u), AUTH_BAD);
	assert_string_equal(u.au_name, "");	/* zeroed unless OK */
	assert_int_equal(u.au_roles, 0);
	assert_int_equal(check(db, "alice", "", &u), AUTH_BAD);
	assert_int_equal(check(db, "alice", "right ", &u), AUTH_BAD);
	assert_int_equal(check(db, "Alice", "right", &u), AUTH_BAD);
	auth_unref(db);
}

static void
check_basic_unknown_user_is_bad_and_still_runs_crypt(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;
	char		 err[256], *h;
	uint64_t	 before = crypt_calls(db);

	h = basic("mallory", "right");
	assert_int_equal(auth_check_basic(db, h, &u, err, sizeof(err)),
	    AUTH_BAD);
	free(h);
	assert_int_equal(crypt_calls(db), before + 1);
	/* same words as a wrong password: no user enumeration */
	assert_string_equal(err, "unknown user or wrong password");
	assert_int_equal(check(db, "alice", "nope", &u), AUTH_BAD);
	assert_int_equal(crypt_calls(db), before + 2);
	/* names that cannot exist cost a crypt too */
	assert_int_equal(check(db, "", "right", &u), AUTH_BAD);
	assert_int_equal(check(db, "bad name!", "right", &u), AUTH_BAD);
	assert_int_equal(crypt_calls(db), before + 4);
	auth_unref(db);
}

static void
check_basic_missing_header(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;
	char		 err[256];

	assert_int_equal(auth_check_basic(db, NULL, &u, err, sizeof(err)),
	    AUTH_MISSING);
	assert_int_equal(auth_check_basic(db, "", &u, err, sizeof(err)),
	    AUTH_MISSING);
	assert_int_equal(auth_check_basic(db, " \t ", &u, NULL, 0),
	    AUTH_MISSING);
	assert_int_equal(crypt_calls(db), 0);
	auth_unref(db);
}

static void
check_basic_refuses_other_schemes_and_bad_base64(void **state)
{
	static const char *const	 bad[] = {
		"Bearer x", "Bearer YWxpY2U6cmlnaHQ=", "Basic", "Basic ",
		"Basic\tx", "BasicYWxpY2U6cmlnaHQ=", "Digest username=alice",
		"Basic YWxpY2U6cmlnaHQ",	/* padding left off */
		"Basic YWxpY2U6cmlnaHQ==",	/* too much padding */
		"Basic YWxpY2U6cmlna HQ=",	/* blank inside */
		"Basic YWxpY2U6cmlnaHQ=,",	/* trailing junk */
		"Basic YWxp!2U6cmlnaHQ=",	/* outside the alphabet */
		"Basic YWxpY2U6cmlnaHR=",	/* nonzero pad bits */
		"Basic YWxpY2U-cmlnaHQ=",	/* base64url */
		"Basic YW=pY2U6cmlnaHQ=",	/* '=' in the middle */
		"Basic YWxpY2U6cmlnaHQ=\n",
	};
	struct auth_db			*db = alice_db();
	struct auth_user		 u;
	char				 err[256];
	size_t				 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum auth_result r = auth_check_basic(db, bad[i], &u, err,
		    sizeof(err));

		if (r != AUTH_MALFORMED)
			fail_msg("\"%s\": %s, want malformed", bad[i],
			    auth_result_str(r));
	}
	assert_int_equal(crypt_calls(db), 0);
	/* the scheme is case-insensitive and blanks around are fine */
	assert_int_equal(auth_check_basic(db, "basic YWxpY2U6cmlnaHQ=", &u,
	    err, sizeof(err)), AUTH_OK);
	assert_int_equal(auth_check_basic(db, " BASIC \t YWxpY2U6cmlnaHQ=  ",
	    &u, err, sizeof(err)), AUTH_OK);
	auth_unref(db);
}

static void
check_basic_no_colon_is_malformed(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;
	char		 err[256], *h = basic_n("aliceright", 10);

	assert_int_equal(auth_check_basic(db, h, &u, err, sizeof(err)),
	    AUTH_MALFORMED);
	assert_contains(err, "no ':'");
	free(h);
	auth_unref(db);
}

static void
check_basic_nul_byte_is_malformed(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;
	char		 err[256], *h = basic_n("alice:right\0x", 13);

	assert_int_equal(auth_check_basic(db, h, &u, err, sizeof(err)),
	    AUTH_MALFORMED);
	assert_contains(err, "NUL");
	free(h);
	h = basic_n("al\0ice:right", 12);
	assert_int_equal(auth_check_basic(db, h, &u, err, sizeof(err)),
	    AUTH_MALFORMED);
	free(h);
	auth_unref(db);
}

static void
check_basic_password_with_colon_splits_at_first_colon(void **state)
{
	char		 h[AUTH_HASH_MAX], file[AUTH_HASH_MAX + 16];
	struct auth_user u;
	struct auth_db	*db;

	cheap_hash("a:b::c:", h, sizeof(h));
	snprintf(file, sizeof(file), "carl:%s\n", h);
	db = load_ok(file);
	assert_int_equal(check(db, "carl", "a:b::c:", &u), AUTH_OK);
	assert_string_equal(u.au_name, "carl");
	assert_int_equal(check(db, "carl", "a:b::c", &u), AUTH_BAD);
	assert_int_equal(check(db, "carl", "a", &u), AUTH_BAD);
	auth_unref(db);
}

static void
check_basic_utf8_password(void **state)
{
	const char	*pw =
	    "p\xc3\xa4ss w\xc3\xb6rd \xe2\x82\xac \xf0\x9f\x94\x91";
	char		 h[AUTH_HASH_MAX], file[AUTH_HASH_MAX + 16];
	struct auth_user u;
	struct auth_db	*db;

	cheap_hash(pw, h, sizeof(h));
	snprintf(file, sizeof(file), "ute:%s\n", h);
	db = load_ok(file);
	assert_int_equal(check(db, "ute", pw, &u), AUTH_OK);
	assert_int_equal(check(db, "ute", "pass word", &u), AUTH_BAD);
	auth_unref(db);
}

static void
check_basic_header_length_capped_at_4k(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;
	char		*hdr, err[256], cred[AUTH_HEADER_MAX];
	size_t		 b64len = AUTH_HEADER_MAX - 8;	/* "Basic   " */

	/* exactly AUTH_HEADER_MAX bytes: parsed, then refused as a user */
	assert_int_equal(b64len % 4, 0);
	memset(cred, 'p', b64len / 4 * 3);
	memcpy(cred, "x:", 2);
	hdr = malloc(AUTH_HEADER_MAX + 2);
	assert_non_null(hdr);
	memcpy(hdr, "Basic   ", 8);
	b64_encode((unsigned char *)cred, b64len / 4 * 3, hdr + 8);
	assert_int_equal(strlen(hdr), AUTH_HEADER_MAX);
	assert_int_equal(auth_check_basic(db, hdr, &u, err, sizeof(err)),
	    AUTH_BAD);
	assert_string_equal(err, "unknown user or wrong password");
	/* one more blank: over the cap */
	memmove(hdr + 1, hdr, AUTH_HEADER_MAX + 1);
	hdr[0] = ' ';
	assert_int_equal(auth_check_basic(db, hdr, &u, err, sizeof(err)),
	    AUTH_MALFORMED);
	assert_contains(err, "longer than 4096");
	free(hdr);

	/* 5 KiB of valid base64 */
	hdr = malloc(5 * 1024 + 16);
	assert_non_null(hdr);
	memcpy(hdr, "Basic ", 6);
	memset(hdr + 6, 'A', 5 * 1024);
	hdr[6 + 5 * 1024] = '\0';
	assert_int_equal(auth_check_basic(db, hdr, &u, err, sizeof(err)),
	    AUTH_MALFORMED);
	free(hdr);
	auth_unref(db);
}

static void
check_basic_password_over_511_bytes_is_bad(void **state)
{
	char		 h[AUTH_HASH_MAX], file[AUTH_HASH_MAX + 16];
	char		 pw[AUTH_PASSWORD_MAX + 2];
	struct auth_user u;
	struct auth_db	*db;
	uint64_t	 calls;

	memset(pw, 'p', AUTH_PASSWORD_MAX);
	pw[AUTH_PASSWORD_MAX] = '\0';
	cheap_hash(pw, h, sizeof(h));
	snprintf(file, sizeof(file), "long:%s\n", h);
	db = load_ok(file);
	assert_int_equal(check(db, "long", pw, &u), AUTH_OK);
	/* bcrypt reads only 72 bytes, but crypt_r takes at most 511 */
	pw[AUTH_PASSWORD_MAX] = 'p';
	pw[AUTH_PASSWORD_MAX + 1] = '\0';
	calls = crypt_calls(db);
	assert_int_equal(check(db, "long", pw, &u), AUTH_BAD);
	assert_int_equal(crypt_calls(db), calls);
	auth_unref(db);
}

/* --- cache --------------------------------------------------------------- */

static void
cache_skips_crypt_on_second_check(void **state)
{
	char		 y[AUTH_HASH_MAX], err[256], file[AUTH_HASH_MAX + 16];
	struct auth_stats st;
	struct auth_user u;
	struct auth_db	*db;
	struct timespec	 t0, t1, t2;
	double		 first, second;

	/* default-cost yescrypt, as bpftraced-passwd makes it */
	assert_int_equal(auth_hash_password("right", y, sizeof(y), err,
	    sizeof(err)), 0);
	snprintf(file, sizeof(file), "alice:%s:read\n", y);
	db = load_ok(file);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	assert_string_equal(u.au_name, "alice");
	assert_int_equal(u.au_roles, AUTH_ROLE_READ);
	auth_get_stats(db, &st);
	assert_int_equal(st.as_checks, 2);
	assert_int_equal(st.as_crypt_calls, 1);
	assert_int_equal(st.as_cache_hits, 1);
	first = (t1.tv_sec - t0.tv_sec) * 1e3 +
	    (t1.tv_nsec - t0.tv_nsec) / 1e6;
	second = (t2.tv_sec - t1.tv_sec) * 1e3 +
	    (t2.tv_nsec - t1.tv_nsec) / 1e6;
	print_message("# first check %.2f ms, cached %.3f ms\n", first, second);
	assert_true(second < first);
	auth_unref(db);
}

static void
cache_never_remembers_wrong_password(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;
	struct auth_stats st;

	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_int_equal(check(db, "alice", "wrong", &u), AUTH_BAD);
	assert_int_equal(check(db, "alice", "wrong", &u), AUTH_BAD);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	auth_get_stats(db, &st);
	assert_int_equal(st.as_crypt_calls, 3);	/* right once, wrong twice */
	assert_int_equal(st.as_cache_hits, 1);
	assert_int_equal(st.as_failures, 2);
	auth_unref(db);
}

static void
cache_entries_expire_and_ttl_zero_disables(void **state)
{
	struct auth_db	*db = alice_db();
	struct auth_user u;

	auth_set_cache_ttl(db, 30);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_int_equal(crypt_calls(db), 1);
	usleep(80 * 1000);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_int_equal(crypt_calls(db), 2);

	auth_set_cache_ttl(db, 0);
	usleep(80 * 1000);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_int_equal(check(db, "alice", "right", &u), AUTH_OK);
	assert_int_equal(crypt_calls(db), 4);
	auth_unref(db);
}

static void
cache_is_bounded_and_evicts_oldest(void **state)
{
	enum { N = AUTH_CACHE_SIZE + 1 };
	char		 h[AUTH_HASH_MAX], name[16], *file, *p;
	struct auth_user u;
	struct auth_db	*db;
	int		 i;

	cheap_hash("pw", h, sizeof(h));
	file = malloc(N * (strlen(h) + 16) + 1);
	assert_non_null(file);
	p = file;
	for (i = 0; i < N; i++)
		p += snprintf(p, strlen(h) + 16, "u%d:%s\n", i, h);
	db = load_ok(file);
	free(file);
	assert_int_equal(auth_count(db), N);
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(check(db, name, "pw", &u), AUTH_OK);
	}
	assert_int_equal(crypt_calls(db), N);
	/* the newest are cached, the oldest was pushed out */
	assert_int_equal(check(db, "u256", "pw", &u), AUTH_OK);
	assert_int_equal(check(db, "u1", "pw", &u), AUTH_OK);
	assert_int_equal(crypt_calls(db), N);
	assert_int_equal(check(db, "u0", "pw", &u), AUTH_OK);
	assert_int_equal(crypt_calls(db), N + 1);
	auth_unref(db);
}

/* --- threads ------------------------------------------------------------- */

#define NTHREADS	8
#define NROUNDS		10

struct worker {
	struct auth_db	*db;
	int		 bad;	/* unexpected results */
};

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	struct auth_user u;
	int		 i;

	for (i = 0; i < NROUNDS; i++) {
		if (check(w->db, "alice", "right", &u) != AUTH_OK ||
		    strcmp(u.au_name, "alice") != 0)
			w->bad++;
		if (check(w->db, "alice", "wrong", &u) != AUTH_BAD)
			w->bad++;
		if (check(w->db, "nobody", "right", &u) != AUTH_BAD)
			w->bad++;
	}
	return NULL;
}

static void
concurrent_checks_from_8_threads_agree(void **state)
{
	struct auth_db	*db = alice_db();
	struct worker	 w[NTHREADS];
	pthread_t	 t[NTHREADS];
	struct auth_stats st;
	int		 i;

	for (i = 0; i < NTHREADS; i++) {
		w[i].db = auth_ref(db);
		w[i].bad = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]),
		    0);
	}
	auth_unref(db);	/* the workers' references keep it alive */
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
	auth_get_stats(db, &st);
	assert_int_equal(st.as_checks, NTHREADS * NROUNDS * 3);
	assert_int_equal(st.as_failures, NTHREADS * NROUNDS * 2);
	assert_true(st.as_cache_hits >= NTHREADS * NROUNDS - NTHREADS);
	for (i = 0; i < NTHREADS; i++)
		auth_unref(w[i].db);
}

/* --- base64 and hashing -------------------------------------------------- */

static void
base64_decoder_is_strict_rfc4648(void **state)
{
	static const struct {
		const char	*in, *out;
	} good[] = {
		{ "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" },
		{ "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" },
		{ "Zm9vYmFy", "foobar" }, { "+/+/", "\xfb\xff\xbf" },
	};
	static const char *const bad[] = {
		"Zg", "Zg=", "Zg===", "Z===", "====", "Zh==", "Zm9=",
		"Zm9v\n", " Zm9v", "Zm=v", "=Zm9", "Zg==Zm9v", "-_-_", "Zm9v=",
	};
	unsigned char	 out[16];
	size_t		 i, n;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(auth_base64_decode(good[i].in,
		    strlen(good[i].in), out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(good[i].out));
		assert_memory_equal(out, good[i].out, n);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (auth_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out),
		    &n) != -1)
			fail_msg("\"%s\" decoded", bad[i]);
	/* output room is checked, not assumed */
	assert_int_equal(auth_base64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	assert_int_equal(auth_base64_decode("Zm9vYmE=", 8, out, 5, &n), 0);
}

static void
hash_password_makes_salted_yescrypt(void **state)
{
	char	 a[AUTH_HASH_MAX], b[AUTH_HASH_MAX], small[20], err[256];
	char	 pw[AUTH_PASSWORD_MAX + 2];

	assert_int_equal(auth_hash_password("pw", a, sizeof(a), err,
	    sizeof(err)), 0);
	assert_int_equal(auth_hash_password("pw", b, sizeof(b), err,
	    sizeof(err)), 0);
	assert_int_equal(strncmp(a, "$y$", 3), 0);
	assert_string_not_equal(a, b);	/* fresh salt each time */
	assert_int_equal(auth_hash_password("pw", small, sizeof(small), err,
	    sizeof(err)), -1);
	assert_contains(err, "longer than");
	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	assert_int_equal(auth_hash_password(pw, a, sizeof(a), err,
	    sizeof(err)), -1);
	assert_contains(err, "password longer than 511 bytes");
}

static void
result_names(void **state)
{
	assert_string_equal(auth_result_str(AUTH_OK), "ok");
	assert_string_equal(auth_result_str(AUTH_MISSING), "missing");
	assert_string_equal(auth_result_str(AUTH_MALFORMED), "malformed");
	assert_string_equal(auth_result_str(AUTH_BAD), "bad");
	assert_string_equal(auth_result_str(AUTH_ERROR), "error");
}

/* --- bpftraced-passwd ---------------------------------------------------- */

static void
passwd_program_line_loads_and_verifies(void **state)
{
	const char	*bin = passwd_path();
	char		 out[1024], err[512];
	struct auth_user u;
	struct auth_db	*db;
	char		*argv1[] = { (char *)bin, "--roles", "read,admin",
	    "grafana", NULL };
	char		*argv2[] = { (char *)bin, "ops@example.org", NULL };

	assert_int_equal(run(argv1, "s3cret: w\xc3\xb6rd\n", out, sizeof(out)),
	    0);
	assert_int_equal(strncmp(out, "grafana:$y$", 11), 0);
	assert_non_null(strstr(out, ":read,admin\n"));
	db = auth_load(write_file(out, 0600), err, sizeof(err));
	if (db == NULL)
		fail_msg("%s", err);
	assert_int_equal(check(db, "grafana", "s3cret: w\xc3\xb6rd", &u),
	    AUTH_OK);
	assert_int_equal(u.au_roles, AUTH_ROLE_READ | AUTH_ROLE_ADMIN);
	assert_int_equal(check(db, "grafana", "s3cret", &u), AUTH_BAD);
	auth_unref(db);

	/* no --roles: no roles field, so the default (control) applies;
	 * a CRLF line ending is not part of the password */
	assert_int_equal(run(argv2, "pw\r\n", out, sizeof(out)), 0);
	assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
	assert_null(strchr(strchr(out, '$'), ':'));
	db = auth_load(write_file(out, 0600), err, sizeof(err));
	if (db == NULL)
		fail_msg("%s", err);
	assert_int_equal(check(db, "ops@example.org", "pw", &u), AUTH_OK);
	assert_int_equal(u.au_roles, AUTH_ROLE_CONTROL);
	auth_unref(db);
}

static void
passwd_program_usage_errors_exit_2(void **state)
{
	const char	*bin = passwd_path();
	char		 out[256];
	char		*noargs[] = { (char *)bin, NULL };
	char		*badname[] = { (char *)bin, "bad:name", NULL };
	char		*badrole[] = { (char *)bin, "--roles", "root", "u",
	    NULL };
	char		*norole[] = { (char *)bin, "u", "--roles", NULL };
	char		*unknown[] = { (char *)bin, "-x", "u", NULL };
	char		*twousers[] = { (char *)bin, "u", "v", NULL };

	assert_int_equal(run(noargs, "pw\n", out, sizeof(out)), 2);
	assert_int_equal(run(badname, "pw\n", out, sizeof(out)), 2);
	assert_int_equal(run(badrole, "pw\n", out, sizeof(out)), 2);
	assert_int_equal(run(norole, "pw\n", out, sizeof(out)), 2);
	assert_int_equal(run(unknown, "pw\n", out, sizeof(out)), 2);
	assert_int_equal(run(twousers, "pw\n", out, sizeof(out)), 2);
	assert_string_equal(out, "");	/* nothing half-written */
}

static void
passwd_program_refuses_empty_password(void **state)
{
	const char	*bin = passwd_path();
	char		 out[256];
	char		*argv[] = { (char *)bin, "u", NULL };

	assert_int_equal(run(argv, "", out, sizeof(out)), 1);
	assert_int_equal(run(argv, "\n", out, sizeof(out)), 1);
	assert_string_equal(out, "");
}

/* --- main ---------------------------------------------------------------- */

static int
make_tmpdir(void **state)
{
	const char	*t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_auth.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
remove_tmpdir(void **state)
{
	char	 path[600];
	int	 i;

	for (i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/users.%d", tmpdir, i);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/nul", tmpdir);
	unlink(path);
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load_accepts_yescrypt_bcrypt_sha512_with_comments),
		cmocka_unit_test(load_refuses_bad_lines_with_file_and_line),
		cmocka_unit_test(load_accepts_name_at_64_bytes),
		cmocka_unit_test(load_refuses_nul_byte),
		cmocka_unit_test(load_refuses_file_without_users),
		cmocka_unit_test(load_refuses_missing_file),
		cmocka_unit_test(load_refuses_file_mode_too_open),
		cmocka_unit_test(roles_default_to_control_and_parse_lists),
		cmocka_unit_test(check_basic_accepts_right_password_refuses_wrong),
		cmocka_unit_test(check_basic_unknown_user_is_bad_and_still_runs_crypt),
		cmocka_unit_test(check_basic_missing_header),
		cmocka_unit_test(check_basic_refuses_other_schemes_and_bad_base64),
		cmocka_unit_test(check_basic_no_colon_is_malformed),
		cmocka_unit_test(check_basic_nul_byte_is_malformed),
		cmocka_unit_test(check_basic_password_with_colon_splits_at_first_colon),
		cmocka_unit_test(check_basic_utf8_password),
		cmocka_unit_test(check_basic_header_length_capped_at_4k),
		cmocka_unit_test(check_basic_password_over_511_bytes_is_bad),
		cmocka_unit_test(cache_skips_crypt_on_second_check),
		cmocka_unit_test(cache_never_remembers_wrong_password),
		cmocka_unit_test(cache_entries_expire_and_ttl_zero_disables),
		cmocka_unit_test(cache_is_bounded_and_evicts_oldest),
		cmocka_unit_test(concurrent_checks_from_8_threads_agree),
		cmocka_unit_test(base64_decoder_is_strict_rfc4648),
		cmocka_unit_test(hash_password_makes_salted_yescrypt),
		cmocka_unit_test(result_names),
		cmocka_unit_test(passwd_program_line_loads_and_verifies),
		cmocka_unit_test(passwd_program_usage_errors_exit_2),
		cmocka_unit_test(passwd_program_refuses_empty_password),
	};

	signal(SIGPIPE, SIG_IGN);	/* see run() */
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
