/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_DIFF_H
#define TPIN_NFT_DIFF_H

struct tpin_nft_batch;
struct tpin_out;

/*
 * tpin_nft_diff - compare the live table @table in the current network
 * namespace with what the install batch @expected creates: its sets and
 * their elements, its chains, and each chain's rules in order, rendered as
 * nft_read.h renders them. Writes one error line to @out per difference.
 * Returns the number of differences (>= 0) or -errno.
 */
int tpin_nft_diff(const struct tpin_nft_batch *expected, const char *table,
		  const struct tpin_out *out);

#endif
