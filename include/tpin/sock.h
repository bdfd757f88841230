/* SPDX-License-Identifier: MIT */
#ifndef TPIN_SOCK_H
#define TPIN_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tpin/config.h"

/*
 * Socket options the proxy depends on, one function each so that every
 * failure names the option that failed. All return 0 or -errno.
 */

/* IP_TRANSPARENT or IPV6_TRANSPARENT; must precede bind(). Needs CAP_NET_ADMIN. */
int tpin_sock_set_transparent(int fd, int family);

/* Whether the transparent option is set on @fd. */
int tpin_sock_get_transparent(int fd, int family, bool *on);

/* SO_MARK: the proxy's own packets carry @mark. Needs CAP_NET_ADMIN. */
int tpin_sock_set_mark(int fd, uint32_t mark);

/* TCP keepalive: the first probe after @idle_s quiet seconds, then every @interval_s, @count times.
 */
struct tpin_keepalive {
	uint32_t idle_s;
	uint32_t interval_s;
	uint32_t count;
};

/* TCP_NODELAY: a message written in pieces leaves at once, not after an ACK. */
int tpin_sock_set_nodelay(int fd);

/* SO_KEEPALIVE with @ka's timing: a peer that vanished is found. */
int tpin_sock_set_keepalive(int fd, const struct tpin_keepalive *ka);

/* SO_REUSEADDR: bind a port that other sockets to other destinations use too. */
int tpin_sock_set_reuseaddr(int fd);

/* tpin_sock_error - the socket's pending error as -errno (0: none); reading it clears it. */
int tpin_sock_error(int fd);

/* tpin_sock_close_reset - close @fd so that its peer gets a reset, not a FIN. */
void tpin_sock_close_reset(int fd);

/* SO_REUSEPORT: one listener per event loop on the same port. */
int tpin_sock_set_reuseport(int fd);

/*
 * IP_BIND_ADDRESS_NO_PORT: bind() fixes only the source address and the port
 * is chosen at connect() time per destination, so one passthrough source
 * serves far more than 64k connections.
 */
int tpin_sock_set_bind_no_port(int fd);

/*
 * tpin_sock_original_dst - where the client meant to connect. In TPROXY mode
 * the accepted socket's own address is the original destination; in
 * REDIRECT mode it is read back from netfilter with SO_ORIGINAL_DST or
 * IP6T_SO_ORIGINAL_DST.
 */
int tpin_sock_original_dst(int fd, enum tpin_mode mode, struct sockaddr_storage *dst);

/* Length of the address structure for sa->sa_family, 0 if unknown. */
socklen_t tpin_sockaddr_len(const struct sockaddr *sa);

/* Port in host byte order, 0 for an unknown family. */
uint16_t tpin_sockaddr_port(const struct sockaddr *sa);

/* Whether address and port are equal. */
bool tpin_sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);

/*
 * tpin_sockaddr_format - "192.0.2.1:80" or "[2001:db8::1]:80". Returns the
 * length snprintf would have written; "-" for an empty address.
 */
int tpin_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

/* "addr:port" needs at most this much: "[" INET6_ADDRSTRLEN "]:65535". */
#define TPIN_SOCKADDR_STRLEN 56

#endif
