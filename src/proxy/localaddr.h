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

#include <uv.h>

#include "evset.h"

struct mnl_socket;

/* After lost notifications, a failed dump is tried again this much later. */
#define LOCALADDR_RETRY_MS 250

struct localaddr_list {
	/* One per address and interface: an address may sit on several. */
	struct localaddr_entry {
		uint8_t family;
		uint8_t addr[16];
		uint32_t ifindex;
	} * a;
	size_t n, cap;
};

struct localaddr {
	struct io io; /* the notification socket, level-triggered in the set */
	struct evset *set;
	struct mnl_socket *nl;
	struct localaddr_list list;
	uv_timer_t retry; /* a dump that failed, again */
	bool timer_open;
	bool stopped;
};

/*
 * localaddr_init - subscribe to address changes in @set, then read the
 * addresses there are. Returns 0 or -errno; on error nothing is left open.
 */
int localaddr_init(struct localaddr *la, struct evset *set);

/*
 * localaddr_stop - no more retries: closes the retry timer, which the
 * loop must then run to its close. Before the loop ends; the addresses
 * stay known and current until localaddr_fini().
 */
void localaddr_stop(struct localaddr *la);

/*
 * localaddr_has - whether @sa's address is one of the namespace's (all of
 * 127.0.0.0/8 is, as the kernel's local route says).
 */
bool localaddr_has(const struct localaddr *la, const struct sockaddr *sa);

/* localaddr_fini - close the socket and free the list, after localaddr_stop() and the loop. */
void localaddr_fini(struct localaddr *la);

#endif
