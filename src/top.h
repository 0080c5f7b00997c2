/* SPDX-License-Identifier: MIT */
/*
 * top.h - the top layer's functions, which main.c calls while it wires
 * every layer below: the configuration (config.c) and the daemon's own
 * metrics (selfmetrics.c). The state they fill, struct config and struct
 * daemon_state, is in src/lib/daemon.h so that every layer may read it.
 */
#ifndef BT_TOP_H
#define BT_TOP_H

#include "daemon.h"

/* config.c: flags and the config file; once, in main, before any thread */
int		 config_defaults(struct config *c);
int		 config_parse_args(struct config *c, int argc, char **argv);
void		 config_free(struct config *c);

/* selfmetrics.c: bpftrace.info.* and bpftrace.daemon.* */
int		 self_register(struct daemon_state *ds);

#endif /* BT_TOP_H */
