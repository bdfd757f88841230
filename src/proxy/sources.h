/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_SOURCES_H
#define TPIN_PROXY_SOURCES_H

/*
 * What the clients hold now, over every worker, in two tables:
 * - per source (an IPv4 address, or an IPv6 /64, which one host can fill
 *   with addresses of its own): so that one source cannot take every
 *   connection the proxy can hold;
 * - with --preserve-source, every client connection's own 4-tuple and that
 *   of every upstream connection from a client's address: so that an
 *   upstream connection never takes the port of a live connection from the
 *   same address to the same destination, the client's or another
 *   upstream's (upstream.c).
 * Any thread: the tables are split in stripes, each under its own lock, so
 * two workers rarely wait for each other.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct sources;

/*
 * sources_new - empty tables allowing @max connections per source (0: any
 * number), keeping 4-tuples when @tuples, hashed under a key of their own
 * from getrandom(2). Returns 0, -ENOMEM, or getrandom's -errno.
 */
int sources_new(struct sources **out, uint32_t max, bool tuples);

void sources_free(struct sources *s);

/*
 * sources_take - count the connection from @peer to @dst: its source, and
 * its 4-tuple when kept. Returns 0, -EDQUOT when @peer's source holds its
 * share already, or -ENOMEM; on error nothing is counted.
 */
int sources_take(struct sources *s, const struct sockaddr *peer, const struct sockaddr *dst);

/* sources_give - the connection taken with sources_take() ended. */
void sources_give(struct sources *s, const struct sockaddr *peer, const struct sockaddr *dst);

/*
 * sources_live - whether a connection from @peer's address at @port to @dst
 * is live, a client's or an upstream's (4-tuples must be kept).
 */
bool sources_live(struct sources *s, const struct sockaddr *peer, uint16_t port,
		  const struct sockaddr *dst);

/*
 * sources_pin - count the upstream connection from @peer's address at @port
 * to @dst, for sources_live(). Returns 0, or -ENOMEM (nothing counted).
 */
int sources_pin(struct sources *s, const struct sockaddr *peer, uint16_t port,
		const struct sockaddr *dst);

/* sources_unpin - the connection pinned with sources_pin() ended. */
void sources_unpin(struct sources *s, const struct sockaddr *peer, uint16_t port,
		   const struct sockaddr *dst);

#endif
