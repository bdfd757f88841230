// SPDX-License-Identifier: MIT
/* What the clients hold now, over every worker; see sources.h. */

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
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

/* FNV-1a: the keys come from the network, but a stripe only spreads the locks. */
static uint32_t key_hash(const struct key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

int sources_new(struct sources **out, uint32_t max, bool tuples)
{
	struct sources *s = calloc(1, sizeof(*s));
	unsigned i;

	if (!s)
		return -ENOMEM;
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
	uint32_t h = key_hash(k);
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
	uint32_t h = key_hash(k);
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
	h = key_hash(&k);
	st = &s->stripe[h % STRIPES];
	uv_mutex_lock(&st->lock);
	live = *find(st, &k, h) != NULL;
	uv_mutex_unlock(&st->lock);
	return live;
}
