/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_VERIFY_H
#define TPIN_NFT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct tpin_nft_lines;

/*
 * Whether the live table is still what tpin-init installed, cheaply enough
 * for readiness: tpin-init writes into the table's comment a digest of the
 * canonical rendering (nft_read.h) of everything it puts in the table, and
 * a reader compares the live table's rendering with it. The generation of
 * the ruleset changes with every committed nftables transaction, so a
 * reader can skip the comparison while it has not moved.
 *
 * The digest is a checksum against drift (a rule deleted, a set edited, a
 * table flushed or made dormant), not a signature: whoever can change the
 * table can rewrite its comment too.
 */

/* "tpin-init digest fnv1a64:" and 16 hex digits, and the NUL. */
#define TPIN_NFT_DIGEST_PREFIX "tpin-init digest fnv1a64:"
#define TPIN_NFT_DIGEST_MAX    (sizeof(TPIN_NFT_DIGEST_PREFIX) + 16)

/*
 * tpin_nft_digest - the digest of @lines as the table comment carries it,
 * written to @out: the lines sorted (each rule's line carries its place in
 * its chain, so the order of the dump does not matter, the order of rules
 * does), each with a newline, hashed with 64-bit FNV-1a. Returns 0, -ENOSPC
 * when @len is below TPIN_NFT_DIGEST_MAX, or -ENOMEM.
 */
int tpin_nft_digest(const struct tpin_nft_lines *lines, char *out, size_t len);

/*
 * tpin_nft_verify - whether table inet @table of the current network
 * namespace is what its comment's digest says: one dump of the table, its
 * sets and elements, chains and rules. Returns 0 when it matches; -ENOENT
 * when there is no such table; -ENODATA when the table is there but its
 * rendering differs from the digest (a rule missing or changed, flushed,
 * dormant) or its comment carries no tpin digest; another -errno when the
 * kernel could not be asked (-EPERM without CAP_NET_ADMIN).
 */
int tpin_nft_verify(const char *table);

/*
 * tpin_nft_generation - the nftables ruleset generation of the current
 * network namespace (NFT_MSG_GETGEN) in *@gen. Every committed transaction
 * changes it, so a caller that read G before it verified needs to verify
 * again only once this returns another value (read it before, not after: a
 * change in between then costs one more verification, never a missed one).
 * Returns 0 or -errno.
 */
int tpin_nft_generation(uint32_t *gen);

#endif
