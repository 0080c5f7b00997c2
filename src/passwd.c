/* SPDX-License-Identifier: MIT */
/*
 * passwd.c - bpftraced-passwd: print one users-file line for --auth-file.
 *   printf '%s\n' "$pw" | bpftraced-passwd [--roles control,admin] USER
 * reads the password (one line, without its newline) from stdin, hashes it
 * with yescrypt and prints "USER:HASH[:ROLES]" on stdout. The line is
 * checked with the same functions bpftraced uses when it loads the file.
 * Single-threaded; exit 0 on success, 1 on a runtime error, 2 on a usage
 * error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

static void
usage(void)
{
	fprintf(stderr, "usage: bpftraced-passwd [--roles ROLE[,ROLE...]] "
	    "USER < password\n"
	    "  roles: control, admin, read (default: control)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char	*roles = NULL, *user = NULL;
	char		 hash[AUTH_HASH_MAX], err[256], *line = NULL;
	size_t		 cap = 0, len;
	ssize_t		 n;
	unsigned	 bits;
	int		 i, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc)
			roles = argv[++i];
		else if (strncmp(argv[i], "--roles=", 8) == 0)
			roles = argv[i] + 8;
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			usage();
		else if (strcmp(argv[i], "--") == 0 && i + 2 == argc)
			user = argv[++i];
		else if (argv[i][0] == '-' || user != NULL)
			usage();
		else
			user = argv[i];
	}
	if (user == NULL)
		usage();
	if (!auth_name_valid(user)) {
		fprintf(stderr, "bpftraced-passwd: bad user name \"%s\" "
		    "(1..%d of A-Z a-z 0-9 _ . @ -)\n", user, AUTH_NAME_MAX);
		exit(2);
	}
	if (auth_parse_roles(roles, &bits, err, sizeof(err)) == -1) {
		fprintf(stderr, "bpftraced-passwd: %s\n", err);
		exit(2);
	}

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "Password (echoed): ");
	if ((n = getline(&line, &cap, stdin)) == -1) {
		fprintf(stderr, "bpftraced-passwd: no password on stdin\n");
		goto done;
	}
	len = (size_t)n;
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (strlen(line) != len) {
		fprintf(stderr, "bpftraced-passwd: NUL byte in password\n");
		goto done;
	}
	if (len == 0) {
		fprintf(stderr, "bpftraced-passwd: empty password\n");
		goto done;
	}
	if (len > AUTH_PASSWORD_MAX) {
		fprintf(stderr, "bpftraced-passwd: password longer than %d "
		    "bytes\n", AUTH_PASSWORD_MAX);
		goto done;
	}
	if (auth_hash_password(line, hash, sizeof(hash), err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "bpftraced-passwd: %s\n", err);
		goto done;
	}
	if (roles != NULL)
		printf("%s:%s:%s\n", user, hash, roles);
	else
		printf("%s:%s\n", user, hash);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		perror("bpftraced-passwd: stdout");
		goto done;
	}
	ret = 0;
done:
	if (line != NULL) {
		explicit_bzero(line, cap);
		free(line);
	}
	return ret;
}
