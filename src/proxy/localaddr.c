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

static struct localaddr_entry *find(struct localaddr_list *l, int family, const void *addr,
				    uint32_t ifindex)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->a[i].family == family && l->a[i].ifindex == ifindex &&
		    !memcmp(l->a[i].addr, addr, addr_len(family)))
			return &l->a[i];
	return NULL;
}

static int add(struct localaddr_list *l, int family, const void *addr, uint32_t ifindex)
{
	struct localaddr_entry *e;

	if (find(l, family, addr, ifindex))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;

		e = realloc(l->a, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->a = e;
		l->cap = cap;
	}
	e = &l->a[l->n++];
	memset(e, 0, sizeof(*e));
	e->family = (uint8_t)family;
	e->ifindex = ifindex;
	memcpy(e->addr, addr, addr_len(family));
	return 0;
}

/*
 * One address can sit on several interfaces, each with an entry of its
 * own: RTM_DELADDR from one interface leaves it on the others.
 */
static void del(struct localaddr_list *l, int family, const void *addr, uint32_t ifindex)
{
	struct localaddr_entry *e = find(l, family, addr, ifindex);

	if (e)
		*e = l->a[--l->n];
}

/* One RTM_NEWADDR or RTM_DELADDR, from a dump or a notification, into the list @data. */
static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct localaddr_list *l = data;
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
		del(l, ifa->ifa_family, addr, ifa->ifa_index);
	else if (add(l, ifa->ifa_family, addr, ifa->ifa_index))
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

/*
 * Read every address again, on a socket of its own, into a new list: the
 * one in use stays until the new one is complete, so a dump that fails
 * (no descriptor, no memory, interrupted by a change) leaves the addresses
 * known before, not none. Returns 0 or -errno.
 */
static int dump(struct localaddr *la)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct localaddr_list l = { 0 };
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
	ret = tpin_nl_talk(nl, nlh, buf, sizeof(buf), addr_cb, &l);
	mnl_socket_close(nl);
	if (ret) {
		free(l.a);
		return ret;
	}
	free(la->list.a);
	la->list = l;
	return 0;
}

static void on_retry(uv_timer_t *t);

/*
 * Notifications were lost (ENOBUFS): what is true now is in a dump. One
 * that fails is tried again after a moment, until one succeeds; meanwhile
 * the addresses known before stay, and notifications still apply to them.
 */
static void redump(struct localaddr *la)
{
	if (!dump(la) || la->stopped)
		return;
	uv_timer_start(&la->retry, on_retry, LOCALADDR_RETRY_MS, 0);
}

static void on_retry(uv_timer_t *t)
{
	redump(t->data);
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
			/*
			 * The notifications still queued are older than the
			 * ones lost: applied after the dump, they could bring
			 * back an address whose removal was lost. The dump
			 * says it all.
			 */
			do
				n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
			while (n > 0 || (n < 0 && errno == EINTR));
			redump(la);
			continue;
		}
		if (n <= 0)
			return;
		mnl_cb_run(buf, (size_t)n, 0, 0, addr_cb, &la->list);
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
	/* Last: nothing can fail after it, so a failed init leaves no handle to close. */
	uv_timer_init(set->poll.loop, &la->retry);
	la->retry.data = la;
	la->timer_open = true;
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
	for (i = 0; i < la->list.n; i++)
		if (la->list.a[i].family == sa->sa_family &&
		    !memcmp(la->list.a[i].addr, addr, addr_len(sa->sa_family)))
			return true;
	return false;
}

void localaddr_stop(struct localaddr *la)
{
	la->stopped = true;
	if (la->timer_open) {
		la->timer_open = false;
		uv_close((uv_handle_t *)&la->retry, NULL);
	}
}

void localaddr_fini(struct localaddr *la)
{
	if (la->nl)
		mnl_socket_close(la->nl);
	la->nl = NULL;
	la->io.fd = -1;
	free(la->list.a);
	la->list.a = NULL;
	la->list.n = la->list.cap = 0;
}
