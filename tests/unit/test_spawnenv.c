/* SPDX-License-Identifier: MIT */
/*
 * test_spawnenv.c - the copy of the environment taken at start: lookups
 * read the copy (not environ), the children's environment leaves
 * NOTIFY_SOCKET out, and bpftrace is found once, along the copy's $PATH,
 * as an absolute path, with a clear reason when it cannot be.
 */
#include "testhelp.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawnenv.h"

static char	 dir[] = "/tmp/test_spawnenv.XXXXXX";

/* dir/sub/name with mode (0: a directory of that name) */
static void
make_file(const char *sub, const char *name, mode_t mode)
{
	char	 p[512];
	int	 fd;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	if (mode == 0) {
		assert_int_equal(mkdir(p, 0755), 0);
		return;
	}
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);
	chmod(p, mode);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	make_file("a", "bt", 0644);	/* not executable: skipped */
	make_file("b", "bt", 0);	/* a directory: skipped */
	make_file("c", "bt", 0755);	/* this one */
	make_file("d", "bt", 0755);	/* later in PATH: not reached */
	return 0;
}

static int
teardown(void **state)
{
	char	 cmd[600];

	(void)state;
	spawnenv_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
lookups_read_the_copy_not_environ(void **state)
{
	char	 a[] = "FOO=bar", b[] = "EMPTY=", c[] = "FOOD=no";
	char	*env[] = { a, b, c, NULL }, err[256];

	(void)state;
	assert_int_equal(spawnenv_init(env, "/bin/sh", err, sizeof(err)), 0);
	assert_string_equal(spawnenv_get("FOO"), "bar");
	assert_string_equal(spawnenv_get("EMPTY"), "");
	assert_null(spawnenv_get("FO"));
	assert_null(spawnenv_get("HOME"));	/* environ has it; the copy not */
	a[4] = 'X';				/* later changes do not reach it */
	assert_string_equal(spawnenv_get("FOO"), "bar");
	setenv("SPAWNENV_LATER", "1", 1);
	assert_null(spawnenv_get("SPAWNENV_LATER"));
	unsetenv("SPAWNENV_LATER");
	spawnenv_fini();
	assert_null(spawnenv_get("FOO"));
	assert_null(spawnenv_envp()[0]);
}

/* The children's environment: everything but NOTIFY_SOCKET. */
static void
children_get_the_copy_without_notify_socket(void **state)
{
	char	 a[] = "NOTIFY_SOCKET=/run/systemd/notify", b[] = "FOO=bar";
	char	 c[] = "PATH=/usr/bin:/bin", out[256] = "", err[256];
	char	*env[] = { a, b, c, NULL };
	char	*argv[] = { "env", NULL };
	posix_spawn_file_actions_t	 fa;
	int	 p[2], st;
	ssize_t	 n, got = 0;
	pid_t	 pid;

	(void)state;
	assert_int_equal(spawnenv_init(env, "env", err, sizeof(err)), 0);
	assert_non_null(spawnenv_bpftrace());
	assert_string_equal(spawnenv_get("NOTIFY_SOCKET"), "/run/systemd/notify");
	assert_int_equal(pipe(p), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	assert_int_equal(posix_spawn(&pid, spawnenv_bpftrace(), &fa, NULL, argv,
	    spawnenv_envp()), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while ((n = read(p[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	waitpid(pid, &st, 0);
	out[got] = '\0';
	assert_string_equal(out, "FOO=bar\nPATH=/usr/bin:/bin\n");
	spawnenv_fini();
}

static void
bare_name_is_found_along_the_copys_path(void **state)
{
	char	 path[1024], want[600], err[256];
	char	*env[] = { path, NULL };

	(void)state;
	snprintf(path, sizeof(path), "PATH=/nonexistent:%s/a:%s/b:%s/c:%s/d",
	    dir, dir, dir, dir);
	assert_int_equal(spawnenv_init(env, "bt", err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/c/bt", dir);
	assert_non_null(spawnenv_bpftrace());
	assert_string_equal(spawnenv_bpftrace(), want);
	assert_string_equal(spawnenv_bpftrace_error(), "");
	/* the process's own PATH plays no part */
	assert_int_equal(spawnenv_init(env, "sh", err, sizeof(err)), 0);
	assert_null(spawnenv_bpftrace());
	assert_non_null(strstr(spawnenv_bpftrace_error(),
	    "cannot run sh: not found in PATH (/nonexistent:"));
	assert_non_null(strstr(spawnenv_bpftrace_error(), "--bpftrace"));
	spawnenv_fini();
}

static void
no_path_uses_the_default_search_path(void **state)
{
	char	 a[] = "FOO=bar", err[256];
	char	*env[] = { a, NULL };

	(void)state;
	assert_int_equal(spawnenv_init(env, "sh", err, sizeof(err)), 0);
	assert_non_null(spawnenv_bpftrace());
	assert_true(strcmp(spawnenv_bpftrace(), "/bin/sh") == 0 ||
	    strcmp(spawnenv_bpftrace(), "/usr/bin/sh") == 0);
	spawnenv_fini();
}

static void
a_name_with_a_slash_is_taken_as_given(void **state)
{
	char	 a[] = "PATH=/bin", err[256], want[600], cwd[512];
	char	*env[] = { a, NULL };

	(void)state;
	assert_int_equal(spawnenv_init(env, "/nonexistent/bpftrace", err,
	    sizeof(err)), 0);
	assert_null(spawnenv_bpftrace());
	assert_string_equal(spawnenv_bpftrace_error(),
	    "cannot run /nonexistent/bpftrace: No such file or directory");
	snprintf(want, sizeof(want), "%s/a/bt", dir);
	assert_int_equal(spawnenv_init(env, want, err, sizeof(err)), 0);
	assert_null(spawnenv_bpftrace());		/* not executable */
	assert_non_null(strstr(spawnenv_bpftrace_error(), "Permission denied"));
	/* relative: made absolute against the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(spawnenv_init(env, "./c/bt", err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/./c/bt", dir);
	assert_non_null(spawnenv_bpftrace());
	assert_string_equal(spawnenv_bpftrace(), want);
	assert_int_equal(spawnenv_init(env, "", err, sizeof(err)), 0);
	assert_null(spawnenv_bpftrace());
	assert_non_null(strstr(spawnenv_bpftrace_error(), "--bpftrace is empty"));
	spawnenv_fini();
	assert_non_null(strstr(spawnenv_bpftrace_error(), "not called"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lookups_read_the_copy_not_environ),
		cmocka_unit_test(children_get_the_copy_without_notify_socket),
		cmocka_unit_test(bare_name_is_found_along_the_copys_path),
		cmocka_unit_test(no_path_uses_the_default_search_path),
		cmocka_unit_test(a_name_with_a_slash_is_taken_as_given),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
