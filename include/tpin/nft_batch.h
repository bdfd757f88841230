/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_BATCH_H
#define TPIN_NFT_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct tpin_config;
struct tpin_nft_batch;
struct nlmsghdr;

/*
 * An nftables transaction built apart from sending it (nft_build.c, no
 * socket): a contiguous buffer of netlink messages between a batch begin and
 * end, and beside every message the equivalent nft command, so an error the
 * kernel ties to a sequence number can be told as the command that caused
 * it, and --dry-run can print the whole transaction as an nft script.
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
 * tpin_nft_build_probe - append a transaction that exercises every kernel
 * feature @cfg's ruleset relies on in a scratch table, and ends with a
 * command that fails, so that sent with tpin_nft_send_probe() it changes
 * nothing. Each rule command's text names the expression it tests.
 * Returns 0 or -ENOMEM.
 */
int tpin_nft_build_probe(struct tpin_nft_batch *batch, const struct tpin_config *cfg);

/* tpin_nft_batch_close - append the batch end; nothing may follow. 0 or -ENOMEM. */
int tpin_nft_batch_close(struct tpin_nft_batch *batch);

/* The batch as bytes to send: begin, the commands, end (after close). */
const void *tpin_nft_batch_data(const struct tpin_nft_batch *batch, size_t *len);

/* The number of commands (messages between begin and end). */
size_t tpin_nft_batch_count(const struct tpin_nft_batch *batch);

/* The sequence number of command @i, its nft command, its message. */
uint32_t tpin_nft_batch_seq(const struct tpin_nft_batch *batch, size_t i);
const char *tpin_nft_batch_command(const struct tpin_nft_batch *batch, size_t i);
const struct nlmsghdr *tpin_nft_batch_msg(const struct tpin_nft_batch *batch, size_t i);

/* The nft command of the message with sequence number @seq, or NULL. */
const char *tpin_nft_batch_describe(const struct tpin_nft_batch *batch, uint32_t seq);

/*
 * What the builders in src/init (nft_objects.c, nft_rule.c, nft_build.c)
 * use to append messages; nothing else should.
 */

/*
 * nft_msg_begin() - start the next message of @b, asking for an ACK. The
 * caller fills its payload, then calls nft_msg_end().
 *
 * Return: the message header, or NULL when out of memory or @b is closed.
 */
struct nlmsghdr *nft_msg_begin(struct tpin_nft_batch *b, uint16_t type, uint16_t flags);

/*
 * nft_msg_end() - commit the message begun at nft_msg_begin(), with its nft
 * command text (printf format).
 *
 * Return: 0 or -ENOMEM.
 */
int nft_msg_end(struct tpin_nft_batch *b, struct nlmsghdr *nlh, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* nft_batch_set_id() - a set id unused in @b, which ties a lookup to a new set. */
uint32_t nft_batch_set_id(struct tpin_nft_batch *b);

#endif
