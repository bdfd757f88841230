/* SPDX-License-Identifier: MIT */
#ifndef TPIN_METRICS_H
#define TPIN_METRICS_H

#include <stdint.h>

#include "tpin/strbuf.h"

/*
 * Counters of every event loop. Each loop writes only its own shard (no
 * cache line bounces between cores on the hot path); the admin endpoint
 * reads the sum of the shards from another thread. Byte counts are kept per
 * original destination port, which is what an operator asks about.
 */
struct tpin_metrics;
struct tpin_metrics_shard;

enum tpin_refusal {
	TPIN_REFUSED_LOOP,	/* the original destination was the proxy itself */
	TPIN_REFUSED_LIMIT,	/* --max-connections was reached */
	TPIN_REFUSED_SOURCE,	/* the client's source holds its share of the places */
	TPIN_REFUSED_NOT_LOCAL, /* the original destination is not the pod's own address */
	/* Too few descriptors left: the rest is kept for established connections and admin. */
	TPIN_REFUSED_DESCRIPTORS,
	TPIN_REFUSED_MAX,
};

/* Which way a connection goes: into the pod, or out of it (the app's own). */
enum tpin_traffic {
	TPIN_INBOUND,
	TPIN_OUTBOUND,
};

enum tpin_direction {
	TPIN_DIR_UPSTREAM,   /* client to application */
	TPIN_DIR_DOWNSTREAM, /* application to client */
};

/*
 * tpin_metrics_new - @shards writers (0 counts as 1), all counters zero.
 * Returns 0 or -ENOMEM.
 */
int tpin_metrics_new(struct tpin_metrics **out, unsigned shards);
void tpin_metrics_free(struct tpin_metrics *m);

/* tpin_metrics_shard - shard @i; only one thread may ever write to it. */
struct tpin_metrics_shard *tpin_metrics_shard(struct tpin_metrics *m, unsigned i);

void tpin_metrics_accepted(struct tpin_metrics_shard *m, enum tpin_traffic t);
void tpin_metrics_closed(struct tpin_metrics_shard *m, enum tpin_traffic t);
void tpin_metrics_refused(struct tpin_metrics_shard *m, enum tpin_traffic t, enum tpin_refusal why);
void tpin_metrics_connect_failed(struct tpin_metrics_shard *m, enum tpin_traffic t, uint16_t port);
void tpin_metrics_bytes(struct tpin_metrics_shard *m, enum tpin_traffic t, uint16_t port,
			enum tpin_direction dir, uint64_t n);

/* Plain readings over both kinds of traffic, for tests and the self-check. */
struct tpin_metrics_totals {
	uint64_t accepted;
	uint64_t active;
	uint64_t refused;
	uint64_t connect_failures;
	uint64_t bytes[2]; /* by enum tpin_direction, summed over ports */
};
void tpin_metrics_totals(const struct tpin_metrics *m, struct tpin_metrics_totals *t);

/* tpin_metrics_render - the Prometheus text exposition format into @sb. */
void tpin_metrics_render(const struct tpin_metrics *m, struct tpin_strbuf *sb);

#endif
