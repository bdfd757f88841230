// SPDX-License-Identifier: MIT
/* The namespace's own addresses, from rtnetlink; see localaddr.h. */

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "localaddr.h"
#include "tpin/nl.h"

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static struct localaddr_entry *find(struct localaddr *la, int family, const void *addr)
{
	size_t i;

	for (i = 0; i < la->n; i++)
		if (la->a[i].family == family && !memcmp(la->a[i].addr, addr, addr_len(family)))
			return &la->a[i];
	return NULL;
}

static int add(struct localaddr *la, int family, const void *addr)
{
	struct localaddr_entry *e;

	if (find(la, family, addr))
		return 0;
	if (la->n == la->cap) {
		size_t cap = la->cap ? la->cap * 2 : 8;

		e = realloc(la->a, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		la->a = e;
		la->cap = cap;
	}
	e = &la->a[la->n++];
	memset(e, 0, sizeof(*e));
	e->family = (uint8_t)family;
	memcpy(e->addr, addr, addr_len(family));
	return 0;
}

static void del(struct localaddr *la, int family, const void *addr)
{
	struct localaddr_entry *e = find(la, family, addr);

	if (e)
		*e = la->a[--la->n];
}

/* One RTM_NEWADDR or RTM_DELADDR, from a dump or a notification. */
static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct localaddr *la = data;
	const struct nlattr *attr;
	const void *addr = NULL;
	size_t len = addr_len(ifa->ifa_family);

	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return MNL_CB_OK;
	/* IFA_LOCAL is the address of this end (IFA_ADDRESS is the peer's on point-to-point). */
	mnl_attr_for_each(attr, nlh, sizeof(*ifa)) {
		uint16_t type = mnl_attr_get_type(attr);

		if ((type == IFA_LOCAL || (type == IFA_ADDRESS && !addr)) &&
		    mnl_attr_get_payload_len(attr) == len)
			addr = mnl_attr_get_payload(attr);
	}
	if (!addr)
		return MNL_CB_OK;
	if (nlh->nlmsg_type == RTM_DELADDR)
		del(la, ifa->ifa_family, addr);
	else if (add(la, ifa->ifa_family, addr))
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

/* Read every address again, on a socket of its own. */
static int dump(struct localaddr *la)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct rtgenmsg *g;
	int ret;

	ret = tpin_nl_open(NETLINK_ROUTE, &nl);
	if (ret)
		return ret;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	la->n = 0;
	ret = tpin_nl_talk(nl, nlh, buf, sizeof(buf), addr_cb, la);
	mnl_socket_close(nl);
	return ret;
}

static void on_change(struct io *io, uint32_t events)
{
	struct localaddr *la = (struct localaddr *)io;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;

	for (;;) {
		n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* Notifications were lost: what is true now is in a dump. */
			dump(la);
			continue;
		}
		if (n <= 0)
			return;
		mnl_cb_run(buf, (size_t)n, 0, 0, addr_cb, la);
	}
}

int localaddr_init(struct localaddr *la, struct evset *set)
{
	int ret;

	memset(la, 0, sizeof(la[0]));
	la->io.fd = -1;
	la->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!la->nl)
		return -errno;
	/* Subscribed before the dump: a change in between is seen twice, never lost. */
	if (mnl_socket_bind(la->nl, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, MNL_SOCKET_AUTOPID) <
	    0) {
		ret = -errno;
		goto fail;
	}
	ret = dump(la);
	if (ret)
		goto fail;
	la->set = set;
	la->io.fd = mnl_socket_get_fd(la->nl);
	la->io.cb = on_change;
	ret = evset_add(set, &la->io, true);
	if (ret)
		goto fail;
	return 0;
fail:
	localaddr_fini(la);
	return ret;
}

bool localaddr_has(const struct localaddr *la, const struct sockaddr *sa)
{
	const uint8_t *addr;
	size_t i;

	if (sa->sa_family == AF_INET) {
		addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		if (addr[0] == 127)
			return true;
	} else if (sa->sa_family == AF_INET6) {
		addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	} else {
		return false;
	}
	for (i = 0; i < la->n; i++)
		if (la->a[i].family == sa->sa_family &&
		    !memcmp(la->a[i].addr, addr, addr_len(sa->sa_family)))
			return true;
	return false;
}

void localaddr_fini(struct localaddr *la)
{
	if (la->nl)
		mnl_socket_close(la->nl);
	la->nl = NULL;
	la->io.fd = -1;
	free(la->a);
	la->a = NULL;
	la->n = la->cap = 0;
}
