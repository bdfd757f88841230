/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROBE_H
#define TPIN_PROBE_H

#include <stdint.h>

/*
 * Read-only questions to the kernel about what tpin-init installed, for the
 * proxy's self-check and readiness. Each returns 0 when the thing is there,
 * -ENOENT when it is not, or another -errno when the kernel could not be
 * asked (-EPERM without CAP_NET_ADMIN for nftables).
 */

/*
 * tpin_probe_table - whether the nftables table "inet @name" exists and
 * intercepts: -ENODATA when it is there but flushed, dormant or holds no
 * tproxy or redirect rule.
 */
int tpin_probe_table(const char *name);

/* tpin_probe_rule - whether a rule "fwmark @mark lookup @table" exists for @family. */
int tpin_probe_rule(int family, uint32_t mark, uint32_t table);

/* tpin_probe_local_route - whether "local default dev lo" is in @table for @family. */
int tpin_probe_local_route(int family, uint32_t table);

#endif
