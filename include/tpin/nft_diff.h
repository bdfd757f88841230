/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_DIFF_H
#define TPIN_NFT_DIFF_H

struct tpin_nft_batch;

/* Called once per difference found, with a line that names it. */
typedef void (*tpin_note_fn)(void *ctx, const char *line);

/*
 * tpin_nft_diff - compare the live table @table in the current network
 * namespace with what the install batch @expected creates: its sets and
 * their elements, its chains, and each chain's rules in order, rendered as
 * nft_read.h renders them. Calls @note once per difference. Returns the
 * number of differences (>= 0) or -errno.
 */
int tpin_nft_diff(const struct tpin_nft_batch *expected, const char *table, tpin_note_fn note,
		  void *ctx);

#endif
