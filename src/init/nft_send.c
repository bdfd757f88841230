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

static int extack_cb(const struct nlattr *attr, void *data)
{
	char *message = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    !mnl_attr_validate(attr, MNL_TYPE_NUL_STRING))
		snprintf(message, TPIN_NFT_MSG_MAX, "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* Record the answer @nlh, an NLMSG_ERROR; returns its error (0 for an ACK). */
static int note_answer(const struct tpin_nft_batch *batch, const struct nlmsghdr *nlh,
		       struct tpin_nft_error *err, int *results)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *cmd;
	size_t i;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return -EBADMSG;
	for (i = 0; results && i < tpin_nft_batch_count(batch); i++)
		if (tpin_nft_batch_seq(batch, i) == nlh->nlmsg_seq)
			results[i] = e->error;
	if (!e->error || err->err)
		return e->error;
	err->err = e->error;
	cmd = tpin_nft_batch_describe(batch, nlh->nlmsg_seq);
	snprintf(err->command, sizeof(err->command), "%s", cmd ? cmd : "");
	/*
	 * The TLVs follow the request as echoed: its header alone when the
	 * kernel capped it (NETLINK_CAP_ACK), the whole request otherwise.
	 */
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		mnl_attr_parse(nlh,
			       (nlh->nlmsg_flags & NLM_F_CAPPED)
				       ? sizeof(*e)
				       : sizeof(*e) + e->msg.nlmsg_len - sizeof(struct nlmsghdr),
			       extack_cb, err->message);
	return e->error;
}

static int send_batch(const struct tpin_nft_batch *batch, struct tpin_nft_error *err, int *results)
{
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t len, pending = tpin_nft_batch_count(batch);
	struct mnl_socket *nl = NULL;
	const void *data;
	int ret;

	memset(err, 0, sizeof(*err));
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
			note_answer(batch, nlh, err, results);
		}
	}
	ret = err->err;
out:
	if (ret && !err->err)
		err->err = ret;
	if (nl)
		mnl_socket_close(nl);
	return ret;
}

int tpin_nft_send(const struct tpin_nft_batch *batch, struct tpin_nft_error *err)
{
	return send_batch(batch, err, NULL);
}

int tpin_nft_send_probe(const struct tpin_nft_batch *batch, struct tpin_nft_error *err,
			int *results)
{
	size_t i;

	for (i = 0; i < tpin_nft_batch_count(batch); i++)
		results[i] = 0;
	return send_batch(batch, err, results);
}
