// SPDX-License-Identifier: MIT
/*
 * A batch of nftables messages under construction: the bytes to send and,
 * for every message, the nft command it is equivalent to, so an error the
 * kernel ties to a sequence number can name the command, and --dry-run can
 * print exactly what would be sent. No socket here (nft_send.c sends).
 */

#include <errno.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/common.h>

#include "tpin/nft_batch.h"

struct command {
	uint32_t seq;
	size_t offset; /* of its nlmsghdr in buf */
	char *text;    /* as long as the command is: a set may hold hundreds of elements */
};

struct tpin_nft_batch {
	char *buf;
	size_t len, cap;
	struct command *cmds;
	size_t ncmds, cmds_cap;
	uint32_t seq;
	uint32_t set_id;
	bool closed;
};

/* Room for the largest single message: a set's elements at full capacity. */
#define MSG_ROOM (64 * 1024)

static int reserve(struct tpin_nft_batch *b)
{
	if (b->cap - b->len < MSG_ROOM) {
		size_t cap = b->cap * 2 + MSG_ROOM;
		char *buf = realloc(b->buf, cap);

		if (!buf)
			return -ENOMEM;
		memset(buf + b->cap, 0, cap - b->cap);
		b->buf = buf;
		b->cap = cap;
	}
	if (b->ncmds == b->cmds_cap) {
		size_t cap = b->cmds_cap * 2 + 16;
		struct command *cmds = realloc(b->cmds, cap * sizeof(*cmds));

		if (!cmds)
			return -ENOMEM;
		b->cmds = cmds;
		b->cmds_cap = cap;
	}
	return 0;
}

struct tpin_nft_batch *tpin_nft_batch_new(uint32_t first_seq)
{
	struct tpin_nft_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->seq = first_seq;
	if (reserve(b)) {
		tpin_nft_batch_free(b);
		return NULL;
	}
	nftnl_batch_begin(b->buf, b->seq++);
	b->len = NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
	return b;
}

void tpin_nft_batch_free(struct tpin_nft_batch *batch)
{
	if (!batch)
		return;
	while (batch->ncmds--)
		free(batch->cmds[batch->ncmds].text);
	free(batch->buf);
	free(batch->cmds);
	free(batch);
}

/*
 * Start the next message. The caller fills its payload, then calls
 * nft_msg_end(), which records the command text.
 */
struct nlmsghdr *nft_msg_begin(struct tpin_nft_batch *b, uint16_t type, uint16_t flags)
{
	if (b->closed || reserve(b))
		return NULL;
	return nftnl_nlmsg_build_hdr(b->buf + b->len, type, NFPROTO_INET, flags | NLM_F_ACK,
				     b->seq);
}

/* Commit the message begun at nft_msg_begin() with its nft text. 0 or -ENOMEM. */
int nft_msg_end(struct tpin_nft_batch *b, struct nlmsghdr *nlh, const char *fmt, ...)
{
	struct command *c = &b->cmds[b->ncmds];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&c->text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	c->seq = b->seq++;
	c->offset = b->len;
	b->ncmds++;
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	return 0;
}

int tpin_nft_batch_close(struct tpin_nft_batch *batch)
{
	if (batch->closed)
		return 0;
	if (reserve(batch))
		return -ENOMEM;
	nftnl_batch_end(batch->buf + batch->len, batch->seq++);
	batch->len += NLMSG_ALIGN(((struct nlmsghdr *)(batch->buf + batch->len))->nlmsg_len);
	batch->closed = true;
	return 0;
}

const void *tpin_nft_batch_data(const struct tpin_nft_batch *batch, size_t *len)
{
	*len = batch->len;
	return batch->buf;
}

size_t tpin_nft_batch_count(const struct tpin_nft_batch *batch)
{
	return batch->ncmds;
}

uint32_t tpin_nft_batch_seq(const struct tpin_nft_batch *batch, size_t i)
{
	return batch->cmds[i].seq;
}

const char *tpin_nft_batch_command(const struct tpin_nft_batch *batch, size_t i)
{
	return batch->cmds[i].text;
}

const char *tpin_nft_batch_describe(const struct tpin_nft_batch *batch, uint32_t seq)
{
	size_t i;

	for (i = 0; i < batch->ncmds; i++)
		if (batch->cmds[i].seq == seq)
			return batch->cmds[i].text;
	return NULL;
}

const struct nlmsghdr *tpin_nft_batch_msg(const struct tpin_nft_batch *batch, size_t i)
{
	return (const struct nlmsghdr *)(batch->buf + batch->cmds[i].offset);
}

uint32_t nft_batch_set_id(struct tpin_nft_batch *b)
{
	return ++b->set_id;
}
