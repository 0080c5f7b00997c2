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
#endif
