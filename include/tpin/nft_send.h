/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_SEND_H
#define TPIN_NFT_SEND_H

struct tpin_nft_batch;

#define TPIN_NFT_MSG_MAX 256

/* What went wrong with a batch, tied to the command that caused it. */
struct tpin_nft_error {
	int err;			/* -errno */
	char command[TPIN_NFT_MSG_MAX]; /* the nft command, or "" */
	char message[TPIN_NFT_MSG_MAX]; /* the kernel's extended ACK, or "" */
};

/*
 * tpin_nft_send - send the closed @batch over a new NETLINK_NETFILTER socket
 * in the current network namespace, then read one answer for every command.
 * The kernel applies all of it or none of it.
 * Returns 0 when it committed; otherwise -errno of the first failing command
 * (-EPERM without CAP_NET_ADMIN, -EOPNOTSUPP or -ENOENT for an expression the
 * kernel lacks), with @err describing it. It waits at most 5 s for answers
 * (-ETIMEDOUT).
 */
int tpin_nft_send(const struct tpin_nft_batch *batch, struct tpin_nft_error *err);

/*
 * tpin_nft_send_probe - like tpin_nft_send, and also store each command's
 * answer (0 or -errno) in @results[i] (tpin_nft_batch_count() entries).
 * A probe batch ends with a command that is meant to fail, so that the
 * kernel checks every command and then commits nothing.
 */
int tpin_nft_send_probe(const struct tpin_nft_batch *batch, struct tpin_nft_error *err,
			int *results);

#endif
