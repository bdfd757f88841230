// SPDX-License-Identifier: MIT
/* Connections per client source, over every worker; see sources.h. */

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sources.h"

#define STRIPES 64
#define BUCKETS 64 /* per stripe */

/* An IPv4 address, or the /64 of an IPv6 address. */
struct key {
	uint8_t family;
	uint8_t addr[8];
};

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
	struct stripe stripe[STRIPES];
};

static bool key_of(const struct sockaddr *sa, struct key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(k->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
	else
		return false;
	return true;
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

int sources_new(struct sources **out, uint32_t max)
{
	struct sources *s = calloc(1, sizeof(*s));
	unsigned i;

	if (!s)
		return -ENOMEM;
	s->max = max;
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

/* The entry of @k in its stripe (locked by the caller), and the link to it. */
static struct entry **find(struct stripe *st, const struct key *k, uint32_t h)
{
	struct entry **p = &st->bucket[(h / STRIPES) % BUCKETS];

	while (*p && memcmp(&(*p)->key, k, sizeof(*k)))
		p = &(*p)->next;
	return p;
}

int sources_take(struct sources *s, const struct sockaddr *peer)
{
	struct stripe *st;
	struct entry **p, *e;
	struct key k;
	uint32_t h;
	int ret = 0;

	if (!s->max || !key_of(peer, &k))
		return 0;
	h = key_hash(&k);
	st = &s->stripe[h % STRIPES];
	uv_mutex_lock(&st->lock);
	p = find(st, &k, h);
	if (*p && (*p)->count >= s->max) {
		ret = -EDQUOT;
	} else if (*p) {
		(*p)->count++;
	} else if ((e = malloc(sizeof(*e)))) {
		e->next = NULL;
		e->key = k;
		e->count = 1;
		*p = e;
	} else {
		ret = -ENOMEM;
	}
	uv_mutex_unlock(&st->lock);
	return ret;
}

void sources_give(struct sources *s, const struct sockaddr *peer)
{
	struct stripe *st;
	struct entry **p, *e;
	struct key k;
	uint32_t h;

	if (!s->max || !key_of(peer, &k))
		return;
	h = key_hash(&k);
	st = &s->stripe[h % STRIPES];
	uv_mutex_lock(&st->lock);
	p = find(st, &k, h);
	e = *p;
	if (e && --e->count == 0) {
		*p = e->next;
		free(e);
	}
	uv_mutex_unlock(&st->lock);
}
