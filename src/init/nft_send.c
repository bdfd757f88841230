// SPDX-License-Identifier: MIT
/*
 * Sends an nftables batch once, then drains every answer and ties each
 * error to the command that caused it. Reading a table back (--check, the
 * proxy's readiness) opens its own NETLINK_NETFILTER socket, in
 * src/shared/nft_read.c.
 */

#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "tpin/nft_batch.h"
#include "tpin/nft_send.h"
#include "tpin/nl.h"

#define EXTACK_MAX 256

/* What the answers said: the first error, its command and explanation. */
struct answers {
	int err;
	const char *command; /* NULL: the error belongs to no command */
	char extack[EXTACK_MAX];
};

static int extack_cb(const struct nlattr *attr, void *data)
{
	char *extack = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    !mnl_attr_validate(attr, MNL_TYPE_NUL_STRING))
		snprintf(extack, EXTACK_MAX, "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* Record the answer @nlh, an NLMSG_ERROR; returns its error (0 for an ACK). */
static int note_answer(const struct tpin_nft_batch *batch, const struct nlmsghdr *nlh,
		       struct answers *a, int *results)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t i;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return -EBADMSG;
	for (i = 0; results && i < tpin_nft_batch_count(batch); i++)
		if (tpin_nft_batch_seq(batch, i) == nlh->nlmsg_seq)
			results[i] = e->error;
	if (!e->error || a->err)
		return e->error;
	a->err = e->error;
	a->command = tpin_nft_batch_describe(batch, nlh->nlmsg_seq);
	/*
	 * The TLVs follow the request as echoed: its header alone when the
	 * kernel capped it (NETLINK_CAP_ACK), the whole request otherwise.
	 */
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		mnl_attr_parse(nlh,
			       (nlh->nlmsg_flags & NLM_F_CAPPED)
				       ? sizeof(*e)
				       : sizeof(*e) + e->msg.nlmsg_len - sizeof(struct nlmsghdr),
			       extack_cb, a->extack);
	return e->error;
}

static int send_batch(const struct tpin_nft_batch *batch, struct tpin_err *err,
		      const char **command, int *results)
{
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t len, pending = tpin_nft_batch_count(batch);
	struct answers a = { 0 };
	struct mnl_socket *nl = NULL;
	const void *data;
	int ret;

	ret = tpin_nl_open(NETLINK_NETFILTER, &nl);
	if (ret)
		goto out;
	data = tpin_nft_batch_data(batch, &len);
	if (mnl_socket_sendto(nl, data, len) < 0) {
		ret = -errno;
		goto out;
	}
	/*
	 * Every command asked for an ACK, so the kernel answers each one, an
	 * error or an ACK, whether the batch committed or was aborted.
	 */
	while (pending) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int left = (int)n;

		if (n < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			/*
			 * An answer to no command (the batch's begin) means
			 * the kernel refused the batch as a whole, for example
			 * -EPERM: no other answer will come.
			 */
			if (!tpin_nft_batch_describe(batch, nlh->nlmsg_seq))
				pending = 0;
			else if (pending)
				pending--;
			note_answer(batch, nlh, &a, results);
		}
	}
	ret = a.err;
out:
	if (nl)
		mnl_socket_close(nl);
	if (command)
		*command = ret && ret == a.err ? a.command : NULL;
	if (!ret)
		return 0;
	if (ret == a.err && a.command)
		return tpin_err_set(err, ret, "\"%s\": %s%s%s", a.command, strerror(-ret),
				    a.extack[0] ? "; the kernel says: " : "", a.extack);
	return tpin_err_set(err, ret, "%s%s%s", strerror(-ret),
			    a.extack[0] ? "; the kernel says: " : "", a.extack);
}

int tpin_nft_send(const struct tpin_nft_batch *batch, struct tpin_err *err, const char **command)
{
	return send_batch(batch, err, command, NULL);
}

int tpin_nft_send_probe(const struct tpin_nft_batch *batch, struct tpin_err *err,
			const char **command, int *results)
{
	size_t i;

	for (i = 0; i < tpin_nft_batch_count(batch); i++)
		results[i] = 0;
	return send_batch(batch, err, command, results);
}
