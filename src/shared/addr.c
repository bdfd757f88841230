// SPDX-License-Identifier: MIT
/* Parsing of port lists and CIDR lists: the only place they are read. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tpin/addr.h"
#include "tpin/err.h"

#define TOKEN_MAX 64

/* Copy the next comma-separated token of *text into tok; advance *text. */
static int next_token(const char **text, char *tok, struct tpin_err *err)
{
	const char *s = *text, *end = strchr(s, ',');
	size_t len = end ? (size_t)(end - s) : strlen(s);

	if (len >= TOKEN_MAX)
		return tpin_err_set(err, -EINVAL, "entry \"%.*s...\" is too long", 20, s);
	memcpy(tok, s, len);
	tok[len] = '\0';
	*text = end ? end + 1 : s + len;
	if (end && !end[1])
		return tpin_err_set(err, -EINVAL, "empty entry after the last ','");
	return 0;
}

static int parse_number(unsigned long *out, const char *s)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int tpin_port_parse(uint16_t *port, const char *text, struct tpin_err *err)
{
	unsigned long v;

	if (parse_number(&v, text))
		return tpin_err_set(err, -EINVAL, "\"%s\" is not a port number", text);
	if (v < 1 || v > 65535)
		return tpin_err_set(err, -EINVAL, "port %s is out of range 1-65535", text);
	*port = (uint16_t)v;
	return 0;
}

int tpin_ports_add(struct tpin_ports *ports, uint16_t first, uint16_t last)
{
	size_t i, j;

	if (ports->all)
		return 0;
	/* Find the first range that ends at or after first - 1 (touching counts). */
	for (i = 0; i < ports->n && (uint32_t)ports->r[i].last + 1 < first; i++)
		;
	/* Absorb every range that starts at or before last + 1. */
	for (j = i; j < ports->n && ports->r[j].first <= (uint32_t)last + 1; j++) {
		if (ports->r[j].first < first)
			first = ports->r[j].first;
		if (ports->r[j].last > last)
			last = ports->r[j].last;
	}
	if (i == j) {
		if (ports->n == TPIN_PORTS_MAX)
			return -E2BIG;
		memmove(&ports->r[i + 1], &ports->r[i], (ports->n - i) * sizeof(ports->r[0]));
		ports->n++;
	} else {
		memmove(&ports->r[i + 1], &ports->r[j], (ports->n - j) * sizeof(ports->r[0]));
		ports->n -= j - i - 1;
	}
	ports->r[i].first = first;
	ports->r[i].last = last;
	return 0;
}

int tpin_ports_parse(struct tpin_ports *ports, const char *text, struct tpin_err *err)
{
	char tok[TOKEN_MAX];
	int ret;

	memset(ports, 0, sizeof(*ports));
	if (!strcmp(text, "*")) {
		ports->all = true;
		return 0;
	}
	while (*text) {
		uint16_t first, last;
		char *dash;

		ret = next_token(&text, tok, err);
		if (ret)
			return ret;
		if (!*tok)
			return tpin_err_set(err, -EINVAL, "empty entry in port list");
		if (!strcmp(tok, "*"))
			return tpin_err_set(err, -EINVAL, "\"*\" must stand alone, not in a list");
		dash = strchr(tok, '-');
		if (dash && (dash == tok || !dash[1]))
			return tpin_err_set(err, -EINVAL, "\"%s\" is not a port range (a-b)", tok);
		if (dash)
			*dash = '\0';
		ret = tpin_port_parse(&first, tok, err);
		if (!ret)
			ret = dash ? tpin_port_parse(&last, dash + 1, err) : 0;
		if (ret)
			return ret;
		if (!dash)
			last = first;
		if (first > last)
			return tpin_err_set(
				err, -EINVAL,
				"range %s-%s is reversed (the first port must not exceed the last)",
				tok, dash + 1);
		if (tpin_ports_add(ports, first, last))
			return tpin_err_set(err, -E2BIG, "more than %d port ranges",
					    TPIN_PORTS_MAX);
	}
	return 0;
}

bool tpin_ports_contains(const struct tpin_ports *ports, uint16_t port)
{
	size_t i;

	if (ports->all)
		return true;
	for (i = 0; i < ports->n; i++)
		if (port >= ports->r[i].first && port <= ports->r[i].last)
			return true;
	return false;
}

int tpin_ports_format(const struct tpin_ports *ports, char *buf, size_t len)
{
	size_t i, off = 0;
	int n;

	if (ports->all)
		return snprintf(buf, len, "*");
	if (len)
		buf[0] = '\0';
	for (i = 0; i < ports->n; i++) {
		const struct tpin_port_range *r = &ports->r[i];
		const char *sep = i ? "," : "";

		char *at = off < len ? buf + off : NULL;
		size_t room = off < len ? len - off : 0;

		if (r->first == r->last)
			n = snprintf(at, room, "%s%u", sep, r->first);
		else
			n = snprintf(at, room, "%s%u-%u", sep, r->first, r->last);
		off += (size_t)n;
	}
	return (int)off;
}

static size_t family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

int tpin_cidr_parse(struct tpin_cidr *cidr, const char *text, struct tpin_err *err)
{
	char buf[TOKEN_MAX];
	unsigned long plen;
	char *slash;
	size_t i, max;

	if (strlen(text) >= sizeof(buf))
		return tpin_err_set(err, -EINVAL, "\"%.20s...\" is not a CIDR", text);
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(cidr, 0, sizeof(*cidr));
	if (inet_pton(AF_INET, buf, cidr->addr) == 1)
		cidr->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, cidr->addr) == 1)
		cidr->family = AF_INET6;
	else
		return tpin_err_set(err, -EINVAL, "\"%s\" is not an IPv4 or IPv6 address", text);
	max = family_len(cidr->family) * 8;
	if (!slash)
		plen = max;
	else if (parse_number(&plen, slash + 1) || plen > max)
		return tpin_err_set(err, -EINVAL, "prefix length in \"%s\" must be 0-%zu", text,
				    max);
	cidr->plen = (uint8_t)plen;
	for (i = 0; i < 16; i++) {
		size_t bit = i * 8;

		if (bit >= plen)
			cidr->addr[i] = 0;
		else if (bit + 8 > plen)
			cidr->addr[i] &= (uint8_t)(0xff << (8 - (plen - bit)));
	}
	return 0;
}

/* Whether @outer covers @inner. */
static bool cidr_covers(const struct tpin_cidr *outer, const struct tpin_cidr *inner)
{
	size_t full = outer->plen / 8, rest = outer->plen % 8;

	if (outer->family != inner->family || outer->plen > inner->plen)
		return false;
	if (memcmp(outer->addr, inner->addr, full))
		return false;
	if (!rest)
		return true;
	return !((outer->addr[full] ^ inner->addr[full]) & (uint8_t)(0xff << (8 - rest)));
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct tpin_cidr *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, 16);
	return c ? c : (int)x->plen - (int)y->plen;
}

/*
 * Sorted by address then prefix length, an entry covered by another comes
 * right after the entry that covers it (CIDRs nest or are disjoint), so one
 * pass drops them all. Interval sets refuse overlaps.
 */
static void cidrs_normalize(struct tpin_cidrs *cidrs)
{
	size_t i, n;

	qsort(cidrs->c, cidrs->n, sizeof(cidrs->c[0]), cidr_cmp);
	for (i = 0, n = 0; i < cidrs->n; i++) {
		if (n && cidr_covers(&cidrs->c[n - 1], &cidrs->c[i]))
			continue;
		cidrs->c[n++] = cidrs->c[i];
	}
	cidrs->n = n;
}

int tpin_cidrs_parse(struct tpin_cidrs *cidrs, const char *text, struct tpin_err *err)
{
	char tok[TOKEN_MAX];
	struct tpin_cidr c;
	int ret;

	memset(cidrs, 0, sizeof(*cidrs));
	while (*text) {
		ret = next_token(&text, tok, err);
		if (ret)
			return ret;
		if (!*tok)
			return tpin_err_set(err, -EINVAL, "empty entry in CIDR list");
		ret = tpin_cidr_parse(&c, tok, err);
		if (ret)
			return ret;
		if (cidrs->n == TPIN_CIDRS_MAX)
			return tpin_err_set(err, -E2BIG, "more than %d CIDRs", TPIN_CIDRS_MAX);
		cidrs->c[cidrs->n++] = c;
	}
	cidrs_normalize(cidrs);
	return 0;
}

int tpin_cidrs_merge(struct tpin_cidrs *cidrs, const struct tpin_cidrs *more)
{
	size_t i;

	for (i = 0; i < more->n; i++) {
		if (cidrs->n == TPIN_CIDRS_MAX)
			return -E2BIG;
		cidrs->c[cidrs->n++] = more->c[i];
	}
	cidrs_normalize(cidrs);
	return 0;
}

int tpin_ports_merge(struct tpin_ports *ports, const struct tpin_ports *more)
{
	size_t i;
	int ret = 0;

	if (more->all) {
		memset(ports, 0, sizeof(*ports));
		ports->all = true;
	}
	for (i = 0; !ret && i < more->n; i++)
		ret = tpin_ports_add(ports, more->r[i].first, more->r[i].last);
	return ret;
}

bool tpin_cidrs_covers(const struct tpin_cidrs *cidrs, const struct tpin_cidr *cidr)
{
	size_t i;

	for (i = 0; i < cidrs->n; i++)
		if (cidr_covers(&cidrs->c[i], cidr))
			return true;
	return false;
}

size_t tpin_cidrs_count(const struct tpin_cidrs *cidrs, int family)
{
	size_t i, n = 0;

	for (i = 0; i < cidrs->n; i++)
		n += cidrs->c[i].family == family;
	return n;
}

int tpin_cidr_format(const struct tpin_cidr *cidr, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(cidr->family, cidr->addr, addr, sizeof(addr));
	return snprintf(buf, len, "%s/%u", addr, cidr->plen);
}

void tpin_cidr_last(const struct tpin_cidr *cidr, uint8_t *last)
{
	size_t i, alen = family_len(cidr->family);

	for (i = 0; i < alen; i++) {
		size_t bit = i * 8;
		uint8_t host;

		if (bit >= cidr->plen)
			host = 0xff;
		else if (bit + 8 > cidr->plen)
			host = (uint8_t)(0xff >> (cidr->plen - bit));
		else
			host = 0;
		last[i] = cidr->addr[i] | host;
	}
}
