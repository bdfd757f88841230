/* SPDX-License-Identifier: MIT */
#ifndef TPIN_INSTALL_H
#define TPIN_INSTALL_H

/*
 * What tpin-init does, as functions of a config: preflight, install,
 * cleanup, check, dry run. They work in the current network namespace and
 * never print: every line for the operator goes through @out.
 */

#include "tpin/out.h"

struct tpin_config;

/*
 * tpin_netns_enter - move the calling thread into the network namespace
 * @spec: a name under /run/netns, or a path (anything with a '/').
 * Returns 0 or -errno (-ENOENT: no such namespace).
 */
int tpin_netns_enter(const char *spec);

/*
 * tpin_ipv6_detect - whether the kernel has IPv6: 0 when it has, or -errno
 * after clearing cfg->ipv6. Check and cleanup call it; preflight does too.
 */
int tpin_ipv6_detect(struct tpin_config *cfg);

/*
 * tpin_preflight - check, before touching anything, what @cfg needs of the
 * system: CAP_NET_ADMIN, nftables and the expressions of the mode, policy
 * routing, IPv6. Writes one line per check. Without IPv6 in the kernel it
 * clears cfg->ipv6 and says so. Returns 0, or -errno for the first thing
 * missing (-EPERM without CAP_NET_ADMIN, -EOPNOTSUPP for a missing feature).
 */
int tpin_preflight(struct tpin_config *cfg, const struct tpin_out *out);

/*
 * tpin_install - make the system what @cfg asks: the policy routing rules,
 * routes and passthrough address that are missing, then the nftables table
 * in one atomic batch. On any failure, undo what this call added, so the
 * earlier state stays exactly as it was. Returns 0 or -errno. Before each
 * step it asks tpin_fault() (tpin/fault.h), which only a test build answers.
 */
int tpin_install(const struct tpin_config *cfg, const struct tpin_out *out);

/*
 * tpin_cleanup - remove the table, the rules, the routes and the passthrough
 * address, whichever are there. Returns 0 (also when nothing was there) or
 * -errno of the first piece it could not remove (it goes on past it).
 */
int tpin_cleanup(const struct tpin_config *cfg, const struct tpin_out *out);

/*
 * tpin_check - compare the live state with what @cfg asks, one error line
 * per difference. Returns the number of differences or -errno.
 */
int tpin_check(const struct tpin_config *cfg, const struct tpin_out *out);

/*
 * tpin_dry_run - write, as info lines, an nft script equivalent to the
 * install, with the ip(8) commands as comments. Needs no privilege.
 * Returns 0 or -ENOMEM.
 */
int tpin_dry_run(const struct tpin_config *cfg, const struct tpin_out *out);

#endif
