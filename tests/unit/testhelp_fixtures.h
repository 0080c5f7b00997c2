/* SPDX-License-Identifier: MIT */
/*
 * testhelp_fixtures.h - reading the recorded bpftrace runs in
 * $BT_SHARED/fixtures (bpftrace-0.17, -0.23 and -0.27, each with its
 * extra/) from a unit test: a file whole, its lines one by one, and every
 * file of one kind in the three sets. Include after testhelp.h.
 */
#ifndef BT_TESTHELP_FIXTURES_H
#define BT_TESTHELP_FIXTURES_H
#include <dirent.h>
#include <stdio.h>

/*
 * The whole file, NUL-terminated, its length in *lenp when lenp is not
 * NULL; NULL when path is NULL or the file cannot be read. Caller frees.
 */
static inline char *
th_slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*s = NULL;
	long	 n;

	if (path == NULL || (f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1)) != NULL) {
		if (fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		} else {
			s[n] = '\0';
			if (lenp != NULL)
				*lenp = (size_t)n;
		}
	}
	fclose(f);
	return s;
}

/*
 * $BT_SHARED/fixtures/rel read by th_slurp(); NULL also when BT_SHARED
 * is not set. Caller frees.
 */
static inline char *
th_fixture(const char *rel, size_t *lenp)
{
	const char	*shared = getenv("BT_SHARED");
	char		 path[4096];

	if (shared == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/fixtures/%s", shared, rel);
	return th_slurp(path, lenp);
}

/*
 * The line *p starts (without its '\n'), its length in *len, and *p moved
 * past it; NULL once *p is at the end of the text.
 */
static inline const char *
th_next_line(const char **p, size_t *len)
{
	const char	*line = *p;

	if (*line == '\0')
		return NULL;
	*len = strcspn(line, "\n");
	*p = line + *len + (line[*len] == '\n');
	return line;
}

/*
 * fn(path, label, arg) for every file whose name ends in suffix in the
 * fixture sets bpftrace-0.17, -0.23, -0.27 and their extra/ (label:
 * "0.23/extra/name" for messages); a set that is not there is passed
 * over. Returns how many files fn was given (0 without BT_SHARED).
 */
static inline int
th_each_fixture(const char *suffix, void (*fn)(const char *path,
    const char *label, void *arg), void *arg)
{
	static const char *const sets[] = { "0.17", "0.23", "0.27",
	    "0.17/extra", "0.23/extra", "0.27/extra" };
	const char	*shared = getenv("BT_SHARED");
	size_t		 slen = strlen(suffix);
	int		 files = 0;

	if (shared == NULL)
		return 0;
	for (size_t v = 0; v < sizeof(sets) / sizeof(sets[0]); v++) {
		char		 dir[2048];
		DIR		*d;
		struct dirent	*de;

		snprintf(dir, sizeof(dir), "%s/fixtures/bpftrace-%s", shared,
		    sets[v]);
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char	 path[4096], label[512];
			size_t	 len = strlen(de->d_name);

			if (len <= slen ||
			    strcmp(de->d_name + len - slen, suffix) != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			snprintf(label, sizeof(label), "%s/%s", sets[v],
			    de->d_name);
			fn(path, label, arg);
			files++;
		}
		closedir(d);
	}
	return files;
}
#endif
