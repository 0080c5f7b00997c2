/* SPDX-License-Identifier: MIT */
/* testhelp.h - includes every cmocka unit test needs, in the right order. */
#ifndef BT_TESTHELP_H
#define BT_TESTHELP_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* the cap of a test's own buffers (buf_init): more than any test writes */
#define TEST_BUF_MAX	(64 * 1024 * 1024)
#endif
