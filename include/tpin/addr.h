/* SPDX-License-Identifier: MIT */
#ifndef TPIN_ADDR_H
#define TPIN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpin/err.h"

/*
 * Port lists and CIDR lists as the command line gives them. Both are
 * fixed-capacity and caller-owned, so parsing never allocates and a config is
 * a plain value that can be copied and compared.
 */

#define TPIN_PORTS_MAX 256
#define TPIN_CIDRS_MAX 256

struct tpin_port_range {
	uint16_t first;
	uint16_t last;
};

/* A sorted list of disjoint, non-adjacent port ranges, or "all ports". */
struct tpin_ports {
	bool all;
	size_t n;
	struct tpin_port_range r[TPIN_PORTS_MAX];
};

struct tpin_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t plen;
	uint8_t addr[16]; /* network byte order, host bits cleared */
};

/* A list of CIDRs with no entry contained in another, sorted per family. */
struct tpin_cidrs {
	size_t n;
	struct tpin_cidr c[TPIN_CIDRS_MAX];
};

/*
 * tpin_port_parse - parse one port number, 1-65535.
 * Returns 0, or -EINVAL with a message naming the value in @err.
 */
int tpin_port_parse(uint16_t *port, const char *text, struct tpin_err *err);

/*
 * tpin_ports_parse - parse "*", or a comma-separated list of ports and
 * ranges "a-b" (inclusive). Overlapping and adjacent entries are merged and
 * the result sorted. An empty string gives an empty list.
 * Returns 0, -EINVAL for a malformed or out-of-range entry, or -E2BIG when
 * the list has more than TPIN_PORTS_MAX ranges; @err names the bad entry.
 */
int tpin_ports_parse(struct tpin_ports *ports, const char *text, struct tpin_err *err);

/*
 * tpin_ports_add - add one range to @ports, keeping it sorted and merged.
 * Returns 0 or -E2BIG. Adding to an "all" list is a no-op.
 */
int tpin_ports_add(struct tpin_ports *ports, uint16_t first, uint16_t last);

/*
 * tpin_ports_merge - add every range of @more to @ports ("all" if @more is).
 * Returns 0 or -E2BIG.
 */
int tpin_ports_merge(struct tpin_ports *ports, const struct tpin_ports *more);

/* tpin_ports_contains - whether @port is in @ports. */
bool tpin_ports_contains(const struct tpin_ports *ports, uint16_t port);

/*
 * tpin_ports_format - write the list as "80,8000-8080" ("*" for all) into
 * @buf. Returns the length snprintf would have written.
 */
int tpin_ports_format(const struct tpin_ports *ports, char *buf, size_t len);

/*
 * tpin_cidr_parse - parse "addr/len" or a bare address (a host route) for
 * IPv4 or IPv6. Host bits below the prefix are cleared, as iptables does.
 * Returns 0 or -EINVAL with @err naming the value.
 */
int tpin_cidr_parse(struct tpin_cidr *cidr, const char *text, struct tpin_err *err);

/*
 * tpin_cidrs_parse - parse a comma-separated list of CIDRs. Entries covered
 * by another entry are dropped. Returns 0, -EINVAL or -E2BIG; @err names the
 * bad entry.
 */
int tpin_cidrs_parse(struct tpin_cidrs *cidrs, const char *text, struct tpin_err *err);

/*
 * tpin_cidrs_merge - add the entries of @more to @cidrs, dropping those
 * covered by another. Returns 0 or -E2BIG.
 */
int tpin_cidrs_merge(struct tpin_cidrs *cidrs, const struct tpin_cidrs *more);

/* tpin_cidrs_covers - whether an entry of @cidrs covers all of @cidr. */
bool tpin_cidrs_covers(const struct tpin_cidrs *cidrs, const struct tpin_cidr *cidr);

/* tpin_cidrs_count - how many entries of @family the list holds. */
size_t tpin_cidrs_count(const struct tpin_cidrs *cidrs, int family);

/*
 * tpin_cidr_format - write "addr/len" into @buf. Returns the length snprintf
 * would have written.
 */
int tpin_cidr_format(const struct tpin_cidr *cidr, char *buf, size_t len);

/*
 * tpin_cidr_last - the last address covered by @cidr, in network byte order,
 * written to @last (4 or 16 bytes).
 */
void tpin_cidr_last(const struct tpin_cidr *cidr, uint8_t *last);

#endif
