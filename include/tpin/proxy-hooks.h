/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_HOOKS_H
#define TPIN_PROXY_HOOKS_H

/*
 * What only tests may change in tpin-proxy, resolved when a program is
 * linked: the shipped tpin-proxy links src/proxy/hooks-none.c, whose
 * tpin_proxy_hooks() returns NULL, so none of this can be reached there.
 * The unprivileged loopback tests link their own definition.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

struct tpin_proxy_hooks {
	/*
	 * Listen on 127.0.0.1 and ::1 at a port the kernel picks, without
	 * IP_TRANSPARENT or SO_MARK: a proxy an unprivileged test can run.
	 */
	bool loopback;
	/* When ss_family is not 0, every connection's original destination. */
	struct sockaddr_storage original_dst;
	/* While set, no session can be allocated, as when out of memory. */
	atomic_bool fail_alloc;
};

/* tpin_proxy_hooks - the hooks in force: NULL in every shipped program. */
struct tpin_proxy_hooks *tpin_proxy_hooks(void);

#endif
