/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_H
#define TPIN_NFT_H

#include <stddef.h>
#include <stdint.h>

struct tpin_config;
struct tpin_nft_batch;
struct nlmsghdr;

/*
 * An nftables transaction built apart from sending it: a contiguous buffer of
 * netlink messages between a batch begin and end, and beside every message
 * the equivalent nft command, so an error the kernel ties to a sequence number
 * can be told as the command that caused it, and --dry-run can print the
 * whole transaction as an nft script.
 */

/* tpin_nft_batch_new - an empty batch; NULL when out of memory. */
struct tpin_nft_batch *tpin_nft_batch_new(uint32_t first_seq);

void tpin_nft_batch_free(struct tpin_nft_batch *batch);

/*
 * tpin_nft_build_install - append the transaction that makes table
 * cfg->table_name exactly what @cfg asks: create it if missing, delete it,
 * add it whole (sets, chains, rules). Returns 0 or -ENOMEM.
 */
int tpin_nft_build_install(struct tpin_nft_batch *batch, const struct tpin_config *cfg);

/*
 * tpin_nft_build_delete - append the transaction that removes table @name,
 * whether or not it exists (it is created first so the delete cannot fail).
 * Returns 0 or -ENOMEM.
 */
int tpin_nft_build_delete(struct tpin_nft_batch *batch, const char *name);

/*
 * tpin_nft_batch_close - append the batch end message. No message may be
 * added after it. Returns 0 or -ENOMEM.
 */
int tpin_nft_batch_close(struct tpin_nft_batch *batch);

/* The batch as bytes to send: begin, the commands, end (after close). */
const void *tpin_nft_batch_data(const struct tpin_nft_batch *batch, size_t *len);

/* The number of commands (messages between begin and end). */
size_t tpin_nft_batch_count(const struct tpin_nft_batch *batch);

/* The sequence number of command @i, and the nft command it stands for. */
uint32_t tpin_nft_batch_seq(const struct tpin_nft_batch *batch, size_t i);
const char *tpin_nft_batch_command(const struct tpin_nft_batch *batch, size_t i);

/* The nft command of the message with sequence number @seq, or NULL. */
const char *tpin_nft_batch_describe(const struct tpin_nft_batch *batch, uint32_t seq);

/* The nlmsghdr of command @i, for tests that parse the batch back. */
const struct nlmsghdr *tpin_nft_batch_msg(const struct tpin_nft_batch *batch, size_t i);


#ifndef TPIN_NFT_SEND_H
#define TPIN_NFT_SEND_H

#define TPIN_NFT_MSG_MAX 256

/* What went wrong with a batch, tied to the command that caused it. */
struct tpin_nft_error {
	int err;                          /* -errno */
	char command[TPIN_NFT_MSG_MAX];   /* the nft command, or "" */
	char message[TPIN_NFT_MSG_MAX];   /* the kernel's extended ACK, or "" */
};

/*
 * tpin_nft_send - send the closed @batch over a new NETLINK_NETFILTER socket
 * in the current network namespace, then read one answer for every command.
 * The kernel applies all of it or none of it.
 * Returns 0 when it committed; otherwise -errno of the first failing command
 * (-EPERM without CAP_NET_ADMIN, -EOPNOTSUPP or -ENOENT for an expression the
 * kernel lacks), with @err describing it.
 */
int tpin_nft_send(const struct tpin_nft_batch *batch, struct tpin_nft_error *err);

#endif
#endif
