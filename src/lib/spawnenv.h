/* SPDX-License-Identifier: MIT */
/*
 * spawnenv.h - the process environment, read once: a copy of environ
 * taken on the main thread before any thread starts, the environment the
 * bpftrace children get, and bpftrace's absolute path.
 *
 * Why: setenv/unsetenv may realloc environ while another thread walks it
 * (posix_spawnp(..., environ) read a freed list: "cannot run bpftrace:
 * Bad address"), and glibc's posix_spawnp/execvp search $PATH with getenv
 * in the child. So after spawnenv_start() no thread of ours reads or
 * writes environ: lookups go to spawnenv_get(), children are started with
 * posix_spawn/execve, spawnenv_bpftrace() and spawnenv_envp().
 *
 * Lock story: written by spawnenv_start()/spawnenv_init() before any
 * thread exists, read-only until spawnenv_fini() after every thread has
 * been joined; so no lock.
 */
#ifndef BT_SPAWNENV_H
#define BT_SPAWNENV_H

#include <stddef.h>

/* Left out of the children's environment: the daemon's own business. */
#define SPAWNENV_PRIVATE	"NOTIFY_SOCKET"

/*
 * Main thread, before any thread: sets the variables libpcp must see
 * (PMCD_RECONNECT_TIMEOUT=1 unless set), then spawnenv_init(environ).
 */
int		 spawnenv_start(const char *bpftrace, char *err, size_t errlen);

/*
 * Copy env (NULL-terminated "NAME=value" list) and find bpftrace: a name
 * with a '/' is taken as given (made absolute against the working
 * directory), else it is searched in env's $PATH (or confstr's default
 * path when unset). A bpftrace that is not found is not an error here:
 * spawnenv_bpftrace() is then NULL and spawnenv_bpftrace_error() says
 * why. -1 (err set) only when memory runs out. Replaces an earlier copy.
 */
int		 spawnenv_init(char *const *env, const char *bpftrace,
		    char *err, size_t errlen);
void		 spawnenv_fini(void);

/* The value of name in the copy, or NULL (also before init). */
const char	*spawnenv_get(const char *name);

/* The children's environment: the copy without SPAWNENV_PRIVATE. */
char *const	*spawnenv_envp(void);

/* bpftrace's absolute path, or NULL when it was not found. */
const char	*spawnenv_bpftrace(void);

/* Why spawnenv_bpftrace() is NULL ("" when it is not). */
const char	*spawnenv_bpftrace_error(void);

#endif
