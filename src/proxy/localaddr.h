/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_LOCALADDR_H
#define TPIN_PROXY_LOCALADDR_H

/*
 * The addresses of the network namespace, kept current by rtnetlink's
 * notifications, one copy per worker so that asking costs no lock and no
 * system call.
 *
 * Why the proxy asks: it relays to the original destination, and a
 * neighbour that routes another network through the pod's address would
 * otherwise have the pod open connections for it, to hosts behind the pod
 * or to addresses such as 169.254.169.254. Only the pod's own addresses are
 * the pod's to serve.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "evset.h"

struct mnl_socket;

struct localaddr {
	struct io io; /* the notification socket, level-triggered in the set */
	struct evset *set;
	struct mnl_socket *nl;
	struct localaddr_entry {
		uint8_t family;
		uint8_t addr[16];
	} * a;
	size_t n, cap;
};

/*
 * localaddr_init - subscribe to address changes in @set, then read the
 * addresses there are. Returns 0 or -errno.
 */
int localaddr_init(struct localaddr *la, struct evset *set);

/*
 * localaddr_has - whether @sa's address is one of the namespace's (all of
 * 127.0.0.0/8 is, as the kernel's local route says).
 */
bool localaddr_has(const struct localaddr *la, const struct sockaddr *sa);

/* localaddr_fini - close the socket and free the list. */
void localaddr_fini(struct localaddr *la);

#endif
