// SPDX-License-Identifier: MIT
/* Socket options and address helpers: every setsockopt of the proxy is here. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tpin/sock.h"

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
 * whose includes clash with glibc's <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int set_int(int fd, int level, int name, int value)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
		return -errno;
	return 0;
}

int tpin_sock_set_transparent(int fd, int family)
{
	if (family == AF_INET6)
		return set_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
	return set_int(fd, SOL_IP, IP_TRANSPARENT, 1);
}

int tpin_sock_get_transparent(int fd, int family, bool *on)
{
	socklen_t len = sizeof(int);
	int v = 0, ret;

	if (family == AF_INET6)
		ret = getsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &v, &len);
	else
		ret = getsockopt(fd, SOL_IP, IP_TRANSPARENT, &v, &len);
	if (ret < 0)
		return -errno;
	*on = v != 0;
	return 0;
}

int tpin_sock_set_mark(int fd, uint32_t mark)
{
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return -errno;
	return 0;
}

int tpin_sock_set_reuseport(int fd)
{
	return set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
}

int tpin_sock_set_nodelay(int fd)
{
	return set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

int tpin_sock_set_keepalive(int fd, const struct tpin_keepalive *ka)
{
	int ret = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);

	if (!ret)
		ret = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)ka->idle_s);
	if (!ret)
		ret = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)ka->interval_s);
	if (!ret)
		ret = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)ka->count);
	return ret;
}

int tpin_sock_set_reuseaddr(int fd)
{
	return set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
}

int tpin_sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

void tpin_sock_close_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	/* The last descriptor of a socket with a zero linger closes with a reset. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

int tpin_sock_set_bind_no_port(int fd)
{
	/* SOL_IP options reach IPv6 TCP sockets too. */
	return set_int(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
}

int tpin_sock_original_dst(int fd, enum tpin_mode mode, struct sockaddr_storage *dst)
{
	socklen_t len = sizeof(*dst);
	int ret;

	memset(dst, 0, sizeof(*dst));
	if (getsockname(fd, (struct sockaddr *)dst, &len) < 0)
		return -errno;
	/*
	 * A TPROXY'd connection is accepted with the original destination as
	 * its local address. SO_ORIGINAL_DST would consult conntrack, which
	 * this mode keeps out of the path and which can be wrong for
	 * transparent sockets.
	 */
	if (mode == TPIN_MODE_TPROXY)
		return 0;
	len = sizeof(*dst);
	if (dst->ss_family == AF_INET6)
		ret = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, dst, &len);
	else
		ret = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, dst, &len);
	return ret < 0 ? -errno : 0;
}

socklen_t tpin_sockaddr_len(const struct sockaddr *sa)
{
	switch (sa->sa_family) {
	case AF_INET:
		return sizeof(struct sockaddr_in);
	case AF_INET6:
		return sizeof(struct sockaddr_in6);
	default:
		return 0;
	}
}

uint16_t tpin_sockaddr_port(const struct sockaddr *sa)
{
	switch (sa->sa_family) {
	case AF_INET:
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	case AF_INET6:
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	default:
		return 0;
	}
}

bool tpin_sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->sa_family != b->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET:
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return a6->sin6_port == b6->sin6_port &&
		       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
	default:
		return false;
	}
}

/* Decimal @v into @p; returns the end. */
static char *fmt_uint(char *p, unsigned v)
{
	char d[10];
	int i = 0;

	do {
		d[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		*p++ = d[--i];
	return p;
}

/*
 * Called for every logged connection: glibc's inet_ntop() and snprintf()
 * go through vfprintf, so IPv4 and the port are put together by hand.
 */
int tpin_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char tmp[TPIN_SOCKADDR_STRLEN], *p = tmp;
	size_t n;

	switch (sa->sa_family) {
	case AF_INET: {
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		int i;

		for (i = 0; i < 4; i++) {
			p = fmt_uint(p, a[i]);
			*p++ = i < 3 ? '.' : ':';
		}
		break;
	}
	case AF_INET6:
		*p++ = '[';
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, p,
			  (socklen_t)(sizeof(tmp) - 8));
		p += strlen(p);
		*p++ = ']';
		*p++ = ':';
		break;
	default:
		*p++ = '-';
		break;
	}
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		p = fmt_uint(p, tpin_sockaddr_port(sa));
	n = (size_t)(p - tmp);
	if (len) {
		size_t c = n < len - 1 ? n : len - 1;

		memcpy(buf, tmp, c);
		buf[c] = '\0';
	}
	return (int)n;
}
