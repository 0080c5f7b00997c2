/* SPDX-License-Identifier: MIT */
/*
 * spawnenv.c - the one owner of the process environment (spawnenv.h):
 * the only file that writes environ (once, before any thread), the copy
 * every later lookup reads, the children's environment and bpftrace's
 * absolute path.
 *
 * libpcp, loaded later (pcplib.c), reads environ with getenv from any
 * thread (PMCD_PORT, PCP_*, PMCD_RECONNECT_TIMEOUT); concurrent reads are
 * safe as long as nobody writes, and after spawnenv_start() nothing of
 * ours does.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawnenv.h"
#include "util.h"

extern char **environ;

/* Lock story: see spawnenv.h (written before threads, then read-only). */
static struct {
	char	**all;		/* the copy, NULL-terminated; owns the strings */
	char	**child;	/* pointers into all, without SPAWNENV_PRIVATE */
	char	 *bpftrace;	/* absolute path, or NULL */
	char	  bt_err[512];	/* why bpftrace is NULL */
} se;

static char	*const no_env[] = { NULL };

/* 1 if entry is "name=..." */
static int
is_var(const char *entry, const char *name)
{
	size_t	 n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static int
is_private(const char *entry)
{
	return is_var(entry, SPAWNENV_PRIVATE);
}

static int
copy_env(char *const *env)
{
	size_t	 n = 0, c = 0;

	while (env != NULL && env[n] != NULL)
		n++;
	if ((se.all = calloc(n + 1, sizeof(*se.all))) == NULL ||
	    (se.child = calloc(n + 1, sizeof(*se.child))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((se.all[i] = strdup(env[i])) == NULL)
			return -1;
		if (!is_private(se.all[i]))
			se.child[c++] = se.all[i];
	}
	return 0;
}

/* 1 if path names an executable regular file; errno set when 0 */
static int
is_executable(const char *path)
{
	struct stat	 st;

	if (stat(path, &st) == -1)
		return 0;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return 0;
	}
	return access(path, X_OK) == 0;
}

/* name has a '/': take it as given, made absolute */
static void
resolve_given(const char *name)
{
	char	 cwd[PATH_MAX], *p = NULL;

	if (!is_executable(name)) {
		seterr(se.bt_err, sizeof(se.bt_err), "cannot run %s: %s", name,
		    strerror(errno));
		return;
	}
	if (name[0] == '/')
		p = strdup(name);
	else if (getcwd(cwd, sizeof(cwd)) != NULL &&
	    asprintf(&p, "%s/%s", cwd, name) == -1)
		p = NULL;
	if (p == NULL)
		seterr(se.bt_err, sizeof(se.bt_err), "cannot run %s: %s", name,
		    strerror(errno ? errno : ENOMEM));
	se.bpftrace = p;
}

/* a bare name: the first executable dir/name along $PATH, as execvp */
static void
resolve_in_path(const char *name)
{
	const char	*path = spawnenv_get("PATH");
	char		 dflt[PATH_MAX], cand[PATH_MAX], cwd[PATH_MAX];
	const char	*p, *end;

	if (path == NULL) {
		if (confstr(_CS_PATH, dflt, sizeof(dflt)) == 0)
			snprintf(dflt, sizeof(dflt), "/bin:/usr/bin");
		path = dflt;
	}
	for (p = path; ; p = end + 1) {
		const char	*dir = p;
		int		 dlen;

		end = strchrnul(p, ':');
		dlen = (int)(end - p);
		if (dlen == 0) {	/* an empty entry is the working dir */
			if (getcwd(cwd, sizeof(cwd)) == NULL)
				goto next;
			dir = cwd;
			dlen = (int)strlen(cwd);
		}
		if (dir[0] == '/' && snprintf(cand, sizeof(cand), "%.*s/%s",
		    dlen, dir, name) < (int)sizeof(cand) &&
		    is_executable(cand)) {
			if ((se.bpftrace = strdup(cand)) == NULL)
				seterr(se.bt_err, sizeof(se.bt_err),
				    "cannot run %s: %s", name, strerror(ENOMEM));
			return;
		}
next:
		if (*end == '\0')
			break;
	}
	seterr(se.bt_err, sizeof(se.bt_err), "cannot run %s: not found in "
	    "PATH (%s); install bpftrace or give its path with --bpftrace",
	    name, path);
}

int
spawnenv_init(char *const *env, const char *bpftrace, char *err,
    size_t errlen)
{
	spawnenv_fini();
	if (copy_env(env) == -1) {
		spawnenv_fini();
		seterr(err, errlen, "environment: %s", strerror(ENOMEM));
		return -1;
	}
	if (bpftrace == NULL || *bpftrace == '\0')
		seterr(se.bt_err, sizeof(se.bt_err), "cannot run bpftrace: "
		    "--bpftrace is empty");
	else if (strchr(bpftrace, '/') != NULL)
		resolve_given(bpftrace);
	else
		resolve_in_path(bpftrace);
	return 0;
}

int
spawnenv_start(const char *bpftrace, char *err, size_t errlen)
{
	/* libpcp's own reconnect backoff: shorter than pmcd.c's */
	if (setenv("PMCD_RECONNECT_TIMEOUT", "1", 0) == -1) {
		seterr(err, errlen, "setenv: %s", strerror(errno));
		return -1;
	}
	return spawnenv_init(environ, bpftrace, err, errlen);
}

void
spawnenv_fini(void)
{
	for (size_t i = 0; se.all != NULL && se.all[i] != NULL; i++)
		free(se.all[i]);
	free(se.all);
	free(se.child);
	free(se.bpftrace);
	memset(&se, 0, sizeof(se));
}

const char *
spawnenv_get(const char *name)
{
	for (size_t i = 0; se.all != NULL && se.all[i] != NULL; i++)
		if (is_var(se.all[i], name))
			return se.all[i] + strlen(name) + 1;
	return NULL;
}

char *const *
spawnenv_envp(void)
{
	return se.child != NULL ? se.child : no_env;
}

const char *
spawnenv_bpftrace(void)
{
	return se.bpftrace;
}

const char *
spawnenv_bpftrace_error(void)
{
	return se.bpftrace != NULL ? "" : se.bt_err[0] ? se.bt_err :
	    "cannot run bpftrace: spawnenv_init was not called";
}
