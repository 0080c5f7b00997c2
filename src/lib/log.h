/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr, journald-friendly: when stderr is
 * the journal (JOURNAL_STREAM) lines carry <N> priority prefixes, else a
 * level word. Thread-safe (one fprintf per line).
 */
#ifndef BT_LOG_H
#define BT_LOG_H

enum { BT_LOG_ERROR = 0, BT_LOG_WARN, BT_LOG_INFO, BT_LOG_DEBUG };

void	 log_init(int level);
int	 log_level_parse(const char *s);
int	 log_enabled(int level);
void	 log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
