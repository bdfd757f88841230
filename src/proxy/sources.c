// SPDX-License-Identifier: MIT
/* What the clients hold now, over every worker; see sources.h. */

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "sources.h"

#define STRIPES 64
#define BUCKETS 64 /* per stripe */

/* A source (address or /64), or a 4-tuple: addresses and ports as on the wire. */
struct key {
	uint8_t kind; /* KIND_* */
	uint8_t family;
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t src_port, dst_port;
};

enum { KIND_SOURCE = 1, KIND_TUPLE };

struct entry {
	struct entry *next;
	struct key key;
	uint32_t count;
};

struct stripe {
	uv_mutex_t lock;
	struct entry *bucket[BUCKETS];
} __attribute__((aligned(64)));

struct sources {
	uint64_t key[2]; /* the hash's, from getrandom(2) */
	uint32_t max;
	bool tuples;
	struct stripe stripe[STRIPES];
};

/* @sa's address (@len bytes of it) and port into @addr and *@port. */
static bool put_addr(const struct sockaddr *sa, uint8_t *addr, size_t len, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, len < 4 ? len : 4);
		*port = ((const struct sockaddr_in *)sa)->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, len);
		*port = ((const struct sockaddr_in6 *)sa)->sin6_port;
	} else {
		return false;
	}
	return true;
}

static bool source_key(const struct sockaddr *peer, struct key *k)
{
	uint16_t port;

	memset(k, 0, sizeof(*k));
	k->kind = KIND_SOURCE;
	k->family = (uint8_t)peer->sa_family;
	/* An IPv4 address whole, an IPv6 address down to its /64. */
	return put_addr(peer, k->src, 8, &port);
}

static bool tuple_key(const struct sockaddr *peer, const struct sockaddr *dst, struct key *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = KIND_TUPLE;
	k->family = (uint8_t)peer->sa_family;
	return peer->sa_family == dst->sa_family && put_addr(peer, k->src, 16, &k->src_port) &&
	       put_addr(dst, k->dst, 16, &k->dst_port);
}

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

/* The little-endian 64-bit word at @p. */
static uint64_t le64(const uint8_t *p)
{
	uint64_t w = 0;
	unsigned i;

	for (i = 0; i < 8; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return w;
}

/*
 * SipHash (Aumasson and Bernstein) of @len bytes at @data under @key, with
 * @c rounds per word and @d at the end: SipHash-1-3 here (c = 1, d = 3),
 * the tables' hash; the unit test checks the code against SipHash-2-4's
 * published vectors.
 */
static uint64_t siphash(const uint64_t key[2], const void *data, size_t len, unsigned c, unsigned d)
{
	const uint8_t *p = data;
	uint64_t v[4] = {
		key[0] ^ 0x736f6d6570736575ull,
		key[1] ^ 0x646f72616e646f6dull,
		key[0] ^ 0x6c7967656e657261ull,
		key[1] ^ 0x7465646279746573ull,
	};
	uint64_t m, last = (uint64_t)len << 56;
	size_t off;
	unsigned i;

	for (off = 0; off + 8 <= len; off += 8) {
		m = le64(p + off);
		v[3] ^= m;
		for (i = 0; i < c; i++)
			sip_round(v);
		v[0] ^= m;
	}
	for (i = 0; off + i < len; i++)
		last |= (uint64_t)p[off + i] << (8 * i);
	v[3] ^= last;
	for (i = 0; i < c; i++)
		sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (i = 0; i < d; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/*
 * The keys come from the network: with --preserve-source a client's /64
 * chooses whole 4-tuples, and with an unkeyed hash it could put every one
 * it is allowed in one bucket, and make each take, give and look-up walk
 * that chain under the stripe's lock. SipHash under a key drawn at random
 * per table (one per process) leaves it nothing to aim at.
 */
static uint32_t key_hash(const struct sources *s, const struct key *k)
{
	return (uint32_t)siphash(s->key, k, sizeof(*k), 1, 3);
}

int sources_new(struct sources **out, uint32_t max, bool tuples)
{
	struct sources *s = calloc(1, sizeof(*s));
	ssize_t got;
	unsigned i;
	int ret;

	if (!s)
		return -ENOMEM;
	/* Blocks only before the kernel's pool is ready, long before a pod runs. */
	do
		got = getrandom(s->key, sizeof(s->key), 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(s->key)) {
		ret = got < 0 ? -errno : -EIO;
		free(s);
		return ret;
	}
	s->max = max;
	s->tuples = tuples;
	for (i = 0; i < STRIPES; i++) {
		if (uv_mutex_init(&s->stripe[i].lock)) {
			while (i--)
				uv_mutex_destroy(&s->stripe[i].lock);
			free(s);
			return -ENOMEM;
		}
	}
	*out = s;
	return 0;
}

void sources_free(struct sources *s)
{
	struct entry *e;
	unsigned i, b;

	if (!s)
		return;
	for (i = 0; i < STRIPES; i++) {
		for (b = 0; b < BUCKETS; b++) {
			while ((e = s->stripe[i].bucket[b])) {
				s->stripe[i].bucket[b] = e->next;
				free(e);
			}
		}
		uv_mutex_destroy(&s->stripe[i].lock);
	}
	free(s);
}

/* The link to @k's entry (or to where it would go) in its locked stripe. */
static struct entry **find(struct stripe *st, const struct key *k, uint32_t h)
{
	struct entry **p = &st->bucket[(h / STRIPES) % BUCKETS];

	while (*p && memcmp(&(*p)->key, k, sizeof(*k)))
		p = &(*p)->next;
	return p;
}

/* Count one more of @k, if fewer than @max (0: any number) are counted. */
static int take(struct sources *s, const struct key *k, uint32_t max)
{
	uint32_t h = key_hash(s, k);
	struct stripe *st = &s->stripe[h % STRIPES];
	struct entry **p, *e;
	int ret = 0;

	uv_mutex_lock(&st->lock);
	p = find(st, k, h);
	if (*p && max && (*p)->count >= max) {
		ret = -EDQUOT;
	} else if (*p) {
		(*p)->count++;
	} else if ((e = malloc(sizeof(*e)))) {
		e->next = NULL;
		e->key = *k;
		e->count = 1;
		*p = e;
	} else {
		ret = -ENOMEM;
	}
	uv_mutex_unlock(&st->lock);
	return ret;
}

static void give(struct sources *s, const struct key *k)
{
	uint32_t h = key_hash(s, k);
	struct stripe *st = &s->stripe[h % STRIPES];
	struct entry **p, *e;

	uv_mutex_lock(&st->lock);
	p = find(st, k, h);
	e = *p;
	if (e && --e->count == 0) {
		*p = e->next;
		free(e);
	}
	uv_mutex_unlock(&st->lock);
}

int sources_take(struct sources *s, const struct sockaddr *peer, const struct sockaddr *dst)
{
	struct key src, tuple;
	bool by_source = s->max && source_key(peer, &src);
	bool by_tuple = s->tuples && tuple_key(peer, dst, &tuple);
	int ret;

	if (by_source) {
		ret = take(s, &src, s->max);
		if (ret)
			return ret;
	}
	if (by_tuple) {
		ret = take(s, &tuple, 0);
		if (ret) {
			if (by_source)
				give(s, &src);
			return ret;
		}
	}
	return 0;
}

void sources_give(struct sources *s, const struct sockaddr *peer, const struct sockaddr *dst)
{
	struct key k;

	if (s->max && source_key(peer, &k))
		give(s, &k);
	if (s->tuples && tuple_key(peer, dst, &k))
		give(s, &k);
}

int sources_pin(struct sources *s, const struct sockaddr *peer, uint16_t port,
		const struct sockaddr *dst)
{
	struct key k;

	if (!s->tuples || !tuple_key(peer, dst, &k))
		return 0;
	k.src_port = htons(port);
	return take(s, &k, 0);
}

void sources_unpin(struct sources *s, const struct sockaddr *peer, uint16_t port,
		   const struct sockaddr *dst)
{
	struct key k;

	if (!s->tuples || !tuple_key(peer, dst, &k))
		return;
	k.src_port = htons(port);
	give(s, &k);
}

bool sources_live(struct sources *s, const struct sockaddr *peer, uint16_t port,
		  const struct sockaddr *dst)
{
	struct key k;
	struct stripe *st;
	uint32_t h;
	bool live;

	if (!s->tuples || !tuple_key(peer, dst, &k))
		return false;
	k.src_port = htons(port);
	h = key_hash(s, &k);
	st = &s->stripe[h % STRIPES];
	uv_mutex_lock(&st->lock);
	live = *find(st, &k, h) != NULL;
	uv_mutex_unlock(&st->lock);
	return live;
}
