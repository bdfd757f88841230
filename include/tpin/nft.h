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
 * tpin_nft_build_probe - append a transaction that exercises every kernel
 * feature tpin relies on (the socket, tproxy, fib and redir expressions, nat
 * and filter base chains) in a scratch table, and ends with a command that
 * fails, so that sent with tpin_nft_send_probe() it changes nothing. Each
 * rule command's text names the expression it tests. Returns 0 or -ENOMEM.
 */
int tpin_nft_build_probe(struct tpin_nft_batch *batch, const struct tpin_config *cfg);

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

/* Called once per difference found, with a line that names it. */
typedef void (*tpin_note_fn)(void *ctx, const char *line);

/*
 * tpin_nft_diff - compare the live table @table in the current network
 * namespace with what the install batch @expected creates: its sets and
 * their elements, its chains, and each chain's rules in order. Calls @note
 * once per difference. Returns the number of differences (>= 0) or -errno.
 */
int tpin_nft_diff(const struct tpin_nft_batch *expected, const char *table, tpin_note_fn note,
		  void *ctx);

/*
 * tpin_nft_render - the canonical text of one nftables message (a set, its
 * elements, a chain or a rule) as tpin_nft_diff compares it, written to @buf.
 * Rules list their expressions as libnftnl prints them. Returns the length
 * written, 0 for a message of another kind, or -errno.
 */
int tpin_nft_render(const struct nlmsghdr *nlh, char *buf, size_t len);

enum tpin_nft_table_state {
	TPIN_NFT_TABLE_ABSENT,
	TPIN_NFT_TABLE_INERT,  /* there, but flushed, dormant, or intercepting nothing */
	TPIN_NFT_TABLE_ACTIVE, /* there, with a tproxy or redirect rule in force */
};

/*
 * tpin_nft_table_state - whether table inet @table in the current network
 * namespace is absent, inert or active (an enum tpin_nft_table_state), or
 * -errno when the kernel could not be asked.
 */
int tpin_nft_table_state(const char *table);

#endif
