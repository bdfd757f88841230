/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NL_H
#define TPIN_NL_H

#include <stddef.h>

struct mnl_socket;
struct nlmsghdr;

/* A netlink message callback, as libmnl's mnl_cb_t. */
typedef int (*tpin_nl_cb)(const struct nlmsghdr *nlh, void *data);

/*
 * tpin_nl_open - a netlink socket on @bus (NETLINK_ROUTE, NETLINK_NETFILTER)
 * in the current network namespace, bound, asking for short ACKs with the
 * kernel's extended messages, and never blocking a read for more than 5 s.
 * Returns 0 or -errno.
 */
int tpin_nl_open(int bus, struct mnl_socket **out);

/*
 * tpin_nl_talk - send the request @nlh on @nl, then run @cb (may be NULL) on
 * every answer until its ACK or the end of its dump, reading into @buf.
 * Returns 0, or -errno: the kernel's error for the request (also one carried
 * by NLMSG_DONE), -ETIMEDOUT when no answer came.
 */
int tpin_nl_talk(struct mnl_socket *nl, struct nlmsghdr *nlh, void *buf, size_t len, tpin_nl_cb cb,
		 void *data);

#endif
