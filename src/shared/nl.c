// SPDX-License-Identifier: MIT
/* The netlink plumbing every request of tpin shares: one socket setup, one exchange. */

#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <libmnl/libmnl.h>

#include "tpin/nl.h"

int tpin_nl_open(int bus, struct mnl_socket **out)
{
	const struct timeval timeout = { .tv_sec = 5 };
	struct mnl_socket *nl = mnl_socket_open(bus);
	int one = 1, ret;

	if (!nl)
		return -errno;
	/* Short ACKs that carry the kernel's explanation; never wait forever. */
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		mnl_socket_close(nl);
		return ret;
	}
	*out = nl;
	return 0;
}

/* An ACK ends the exchange; an error ends it with errno set, as libmnl's own. */
static int error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	errno = e->error < 0 ? -e->error : e->error;
	return e->error ? MNL_CB_ERROR : MNL_CB_STOP;
}

/*
 * A dump the kernel cannot do (a family without policy routing) ends with
 * an NLMSG_DONE that carries the error; libmnl's default ignores it.
 */
static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(int))) {
		int err = *(const int *)mnl_nlmsg_get_payload(nlh);

		if (err < 0) {
			errno = -err;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

static int noop_cb(const struct nlmsghdr *nlh, void *data)
{
	return MNL_CB_OK;
}

int tpin_nl_talk(struct mnl_socket *nl, struct nlmsghdr *nlh, void *buf, size_t len, tpin_nl_cb cb,
		 void *data)
{
	/* With a control array, libmnl calls no default for the types it leaves out. */
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_NOOP] = noop_cb,
		[NLMSG_ERROR] = error_cb,
		[NLMSG_DONE] = done_cb,
		[NLMSG_OVERRUN] = noop_cb,
	};
	unsigned int portid = mnl_socket_get_portid(nl);
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, len);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		ret = mnl_cb_run2(buf, (size_t)n, seq, portid, cb, data, ctl, NLMSG_MIN_TYPE);
	} while (ret == MNL_CB_OK);
	return ret < 0 ? -errno : 0;
}
