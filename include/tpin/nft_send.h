/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_SEND_H
#define TPIN_NFT_SEND_H

#include "tpin/err.h"

struct tpin_nft_batch;

/*
 * tpin_nft_send - send the closed @batch over a new NETLINK_NETFILTER socket
 * in the current network namespace, then read one answer for every command.
 * The kernel applies all of it or none of it.
 * Returns 0 when it committed; otherwise -errno of the first failing command
 * (-EPERM without CAP_NET_ADMIN, -EOPNOTSUPP or -ENOENT for an expression the
 * kernel lacks), -ETIMEDOUT when no answer came within 5 s. @err (may be
 * NULL) gets the message: the command in quotes, the error, and the
 * kernel's extended ACK when it sent one. *@command (@command may be NULL)
 * is that command's text, valid as long as @batch, or NULL when the kernel
 * refused the batch as a whole or the exchange itself failed.
 */
int tpin_nft_send(const struct tpin_nft_batch *batch, struct tpin_err *err, const char **command);

/*
 * tpin_nft_send_probe - like tpin_nft_send, and also store each command's
 * answer (0 or -errno) in @results[i] (tpin_nft_batch_count() entries).
 * A probe batch ends with a command that is meant to fail, so that the
 * kernel checks every command and then commits nothing.
 */
int tpin_nft_send_probe(const struct tpin_nft_batch *batch, struct tpin_err *err,
			const char **command, int *results);

#endif
