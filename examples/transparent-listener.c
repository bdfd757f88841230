// SPDX-License-Identifier: MIT
/*
 * The smallest useful TPROXY listener: an IPv4 or IPv6 TCP socket with
 * IP_TRANSPARENT set before bind(), which is what lets the kernel hand it
 * connections addressed to any other address and port. For each accepted
 * connection it prints the client (getpeername) and the original destination
 * (getsockname): with TPROXY nothing was rewritten, so the accepted socket's
 * own address IS where the client meant to go. No SO_ORIGINAL_DST, no
 * conntrack.
 *
 * Try it in a namespace where `tpin-init` (tproxy mode) is installed:
 *   transparent-listener 15006 3     # then connect to any port of the pod
 * It needs CAP_NET_ADMIN (or CAP_NET_RAW) for IP_TRANSPARENT.
 *
 * Build: cc -o transparent-listener transparent-listener.c
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	}
}

/* A transparent listener on the wildcard address of family; fd or -errno. */
static int transparent_listen(int family, unsigned short port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1, ret;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * The one option that matters, and it must come before bind(): the
	 * kernel's TPROXY lookup only ever picks transparent sockets.
	 */
	if (family == AF_INET6)
		ret = setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	else
		ret = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
	if (ret) {
		ret = -errno;
		fprintf(stderr, "IP_TRANSPARENT: %s (needs CAP_NET_ADMIN)\n", strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		/* IPv6 only, so an IPv4 listener can share the port. */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons(port);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		a->sin_port = htons(port);
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128)) {
		ret = -errno;
		perror("bind/listen");
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned long port, count = 1;
	char *end;
	int fd, rc = 0;

	if (argc < 2 || argc > 4) {
		fprintf(stderr,
			"usage: %s PORT [COUNT [4|6]]\n"
			"accepts COUNT connections (default 1) on PORT and prints each one's\n"
			"client and original destination\n",
			argv[0]);
		return 2;
	}
	port = strtoul(argv[1], &end, 10);
	if (*end || port == 0 || port > 65535) {
		fprintf(stderr, "bad port \"%s\"\n", argv[1]);
		return 2;
	}
	if (argc >= 3) {
		count = strtoul(argv[2], &end, 10);
		if (*end || count == 0 || count > 1000000) {
			fprintf(stderr, "bad count \"%s\"\n", argv[2]);
			return 2;
		}
	}
	fd = transparent_listen(argc == 4 && !strcmp(argv[3], "6") ? AF_INET6 : AF_INET,
				(unsigned short)port);
	if (fd < 0)
		return 1;
	for (unsigned long i = 0; i < count; i++) {
		struct sockaddr_storage peer, orig;
		socklen_t plen = sizeof(peer), olen = sizeof(orig);
		char ps[INET6_ADDRSTRLEN + 8], os[INET6_ADDRSTRLEN + 8];
		int c = accept4(fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

		if (c < 0) {
			perror("accept");
			rc = 1;
			break;
		}
		/* The whole trick: the local address is the original destination. */
		if (getsockname(c, (struct sockaddr *)&orig, &olen)) {
			perror("getsockname");
			close(c);
			rc = 1;
			break;
		}
		addr_str(&peer, ps, sizeof(ps));
		addr_str(&orig, os, sizeof(os));
		printf("client %s -> original destination %s\n", ps, os);
		fflush(stdout);
		close(c);
	}
	close(fd);
	return rc;
}
