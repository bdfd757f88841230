/* SPDX-License-Identifier: MIT */
#ifndef TPIN_TOOLS_UTIL_H
#define TPIN_TOOLS_UTIL_H

/*
 * What the tools (tpin-load, tpin-app, tpin-soak, bench-app) share: numbers
 * and addresses from the command line, the clock, the descriptor limit.
 * Plain libc, no libuv, so every tool links it (tpin-soak has no event
 * loop). Each tool prints its own message for a bad value and exits 2.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * tu_parse_num - @s as a decimal number from @lo to @hi: digits only, no
 * sign, no spaces, nothing after. Returns 0, -EINVAL when @s is no such
 * number, -ERANGE when it is out of range; *@out is set only on success.
 */
int tu_parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/*
 * tu_parse_hostport - "ip:port" or "[ip6]:port", numeric, port 1 to 65535,
 * into @ss (zeroed first). Returns 0 or -EINVAL (an IPv6 address without
 * its brackets is refused: the last colon would be ambiguous).
 */
int tu_parse_hostport(const char *s, struct sockaddr_storage *ss);

/*
 * tu_addr_str - "ip:port" or "[ip6]:port" of @sa into @buf; returns @buf.
 * Another family prints as "?".
 */
const char *tu_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* tu_now_ms - the monotonic clock in milliseconds. */
long long tu_now_ms(void);

/* tu_sleep_ms - sleeps @ms milliseconds, through signals. */
void tu_sleep_ms(long ms);

/*
 * tu_raise_nofile - lifts the soft RLIMIT_NOFILE to the hard limit: short
 * connections and held ones need many descriptors. Returns 0 or -errno; the
 * limit is unchanged on failure.
 */
int tu_raise_nofile(void);

#endif
