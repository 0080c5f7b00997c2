/* SPDX-License-Identifier: MIT */
/*
 * privs.h - drop the capabilities bpftrace does not use, once the
 * listeners are bound (privs.c). Main thread, once.
 */
#ifndef BT_PRIVS_H
#define BT_PRIVS_H

/* pmda: 1 keeps what PMDA mode needs to re-create its socket */
int	 privs_drop(int pmda);

#endif
