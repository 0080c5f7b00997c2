/* SPDX-License-Identifier: MIT */
/*
 * log.c - stderr logging with levels (see log.h). The level is set once at
 * start-up before any thread exists and only read afterwards.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int	 log_level = BT_LOG_INFO;	/* written before threads */
static int	 log_journal;

static const char *const level_word[] = { "error", "warning", "info", "debug" };
static const int level_prio[] = { 3, 4, 6, 7 };

void
log_init(int level)
{
	log_level = level;
	/* main(), before spawnenv_start() and before any thread: the one
	   getenv left (the log must know its format before anything else) */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_word[i]) == 0)
			return i;
	if (strcasecmp(s, "warn") == 0)
		return BT_LOG_WARN;
	return -1;
}

int
log_enabled(int level)
{
	return level <= log_level;
}

static void
vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	char	 msg[2048];
	int	 saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (char *p = msg; *p; p++)	/* one event, one line */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", level_prio[level], msg,
		    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	else
		fprintf(stderr, "bpftraced: %s: %s%s%s\n", level_word[level],
		    msg, with_errno ? ": " : "",
		    with_errno ? strerror(saved) : "");
	errno = saved;
}

/* one logging entry point: its level, whether it adds errno's text, and
   what it does after (the fatal ones exit) */
#define LOGFN(name, level, e, after)			\
void							\
name(const char *fmt, ...)				\
{							\
	va_list	 ap;					\
	va_start(ap, fmt);				\
	vlog(level, e, fmt, ap);			\
	va_end(ap);					\
	after;						\
}

LOGFN(log_warn, BT_LOG_WARN, 1, (void)0)
LOGFN(log_warnx, BT_LOG_WARN, 0, (void)0)
LOGFN(log_info, BT_LOG_INFO, 0, (void)0)
LOGFN(log_debug, BT_LOG_DEBUG, 0, (void)0)
LOGFN(log_error, BT_LOG_ERROR, 0, (void)0)
LOGFN(fatal, BT_LOG_ERROR, 1, exit(1))
LOGFN(fatalx, BT_LOG_ERROR, 0, exit(1))
