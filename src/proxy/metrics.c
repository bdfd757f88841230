// SPDX-License-Identifier: MIT
/*
 * Counters and their Prometheus text rendering. Each event loop writes only
 * its own shard, so the hot path is a plain load and store on a cache line
 * no other core writes; readers sum the shards.
 */

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/metrics.h"

#define NPORTS 65536

struct port_counters {
	atomic_uint_fast64_t bytes[2];
	atomic_uint_fast64_t connect_failures;
};

struct tpin_metrics_shard {
	atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t closed;
	atomic_uint_fast64_t refused[TPIN_REFUSED_MAX];
	/*
	 * One slot per port. calloc() hands back untouched zero pages, so only
	 * the ports that carry traffic cost memory.
	 */
	struct port_counters *port;
} __attribute__((aligned(64)));

struct tpin_metrics {
	unsigned n;
	struct tpin_metrics_shard *shard;
};

static const char *const refusal_names[TPIN_REFUSED_MAX] = {
	[TPIN_REFUSED_LOOP] = "loop",
	[TPIN_REFUSED_LIMIT] = "limit",
	[TPIN_REFUSED_SOURCE] = "source_limit",
	[TPIN_REFUSED_NOT_LOCAL] = "not_local",
	[TPIN_REFUSED_DESCRIPTORS] = "no_descriptors",
};

static const char *const direction_names[2] = {
	[TPIN_DIR_UPSTREAM] = "upstream",
	[TPIN_DIR_DOWNSTREAM] = "downstream",
};

#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)
/*
 * A shard has one writer: load and store, no locked read-modify-write. The
 * atomics only keep a reader on another thread from seeing a torn value.
 */
#define ADD(field, n) atomic_store_explicit(&(field), GET(field) + (n), memory_order_relaxed)

int tpin_metrics_new(struct tpin_metrics **out, unsigned shards)
{
	struct tpin_metrics *m = calloc(1, sizeof(*m));
	unsigned i;

	if (!m)
		return -ENOMEM;
	m->n = shards ? shards : 1;
	m->shard = aligned_alloc(64, m->n * sizeof(*m->shard));
	if (!m->shard) {
		free(m);
		return -ENOMEM;
	}
	memset(m->shard, 0, m->n * sizeof(*m->shard));
	for (i = 0; i < m->n; i++) {
		m->shard[i].port = calloc(NPORTS, sizeof(*m->shard[i].port));
		if (!m->shard[i].port) {
			tpin_metrics_free(m);
			return -ENOMEM;
		}
	}
	*out = m;
	return 0;
}

void tpin_metrics_free(struct tpin_metrics *m)
{
	unsigned i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		free(m->shard[i].port);
	free(m->shard);
	free(m);
}

struct tpin_metrics_shard *tpin_metrics_shard(struct tpin_metrics *m, unsigned i)
{
	return &m->shard[i % m->n];
}

void tpin_metrics_accepted(struct tpin_metrics_shard *m)
{
	ADD(m->accepted, 1);
}

void tpin_metrics_closed(struct tpin_metrics_shard *m)
{
	ADD(m->closed, 1);
}

void tpin_metrics_refused(struct tpin_metrics_shard *m, enum tpin_refusal why)
{
	ADD(m->refused[why], 1);
}

void tpin_metrics_connect_failed(struct tpin_metrics_shard *m, uint16_t port)
{
	ADD(m->port[port].connect_failures, 1);
}

void tpin_metrics_bytes(struct tpin_metrics_shard *m, uint16_t port, enum tpin_direction dir,
			uint64_t n)
{
	ADD(m->port[port].bytes[dir], n);
}

void tpin_metrics_totals(const struct tpin_metrics *m, struct tpin_metrics_totals *t)
{
	uint64_t closed = 0;
	unsigned i, j;

	memset(t, 0, sizeof(*t));
	/* Read closed first: a connection closing meanwhile then never shows
	 * as closed without having been accepted, and active stays >= 0. */
	for (j = 0; j < m->n; j++)
		closed += GET(m->shard[j].closed);
	atomic_thread_fence(memory_order_acquire);
	for (j = 0; j < m->n; j++) {
		const struct tpin_metrics_shard *sh = &m->shard[j];

		t->accepted += GET(sh->accepted);
		for (i = 0; i < TPIN_REFUSED_MAX; i++)
			t->refused += GET(sh->refused[i]);
		for (i = 0; i < NPORTS; i++) {
			t->connect_failures += GET(sh->port[i].connect_failures);
			t->bytes[0] += GET(sh->port[i].bytes[0]);
			t->bytes[1] += GET(sh->port[i].bytes[1]);
		}
	}
	t->active = t->accepted >= closed ? t->accepted - closed : 0;
}

static uint64_t sum_refused(const struct tpin_metrics *m, unsigned why)
{
	uint64_t v = 0;
	unsigned j;

	for (j = 0; j < m->n; j++)
		v += GET(m->shard[j].refused[why]);
	return v;
}

static uint64_t sum_port(const struct tpin_metrics *m, unsigned port, int what)
{
	uint64_t v = 0;
	unsigned j;

	for (j = 0; j < m->n; j++)
		v += what < 0 ? GET(m->shard[j].port[port].connect_failures)
			      : GET(m->shard[j].port[port].bytes[what]);
	return v;
}

void tpin_metrics_render(const struct tpin_metrics *m, struct tpin_strbuf *sb)
{
	struct tpin_metrics_totals t;
	uint64_t v;
	unsigned i, d;

	tpin_metrics_totals(m, &t);
	tpin_strbuf_printf(
		sb,
		"# HELP tpin_connections_accepted_total Connections accepted on the capture port.\n"
		"# TYPE tpin_connections_accepted_total counter\n"
		"tpin_connections_accepted_total %llu\n"
		"# HELP tpin_connections_active Connections open now.\n"
		"# TYPE tpin_connections_active gauge\n"
		"tpin_connections_active %llu\n"
		"# HELP tpin_connections_refused_total Connections closed without relaying, by "
		"reason.\n"
		"# TYPE tpin_connections_refused_total counter\n",
		(unsigned long long)t.accepted, (unsigned long long)t.active);
	for (i = 0; i < TPIN_REFUSED_MAX; i++)
		tpin_strbuf_printf(sb, "tpin_connections_refused_total{reason=\"%s\"} %llu\n",
				   refusal_names[i], (unsigned long long)sum_refused(m, i));

	tpin_strbuf_printf(sb, "# HELP tpin_upstream_connect_failures_total Failed connections to "
			       "the application, by original port.\n"
			       "# TYPE tpin_upstream_connect_failures_total counter\n");
	for (i = 0; i < NPORTS; i++) {
		v = sum_port(m, i, -1);
		if (v)
			tpin_strbuf_printf(
				sb, "tpin_upstream_connect_failures_total{port=\"%u\"} %llu\n", i,
				(unsigned long long)v);
	}

	tpin_strbuf_printf(
		sb, "# HELP tpin_bytes_total Bytes relayed, by direction and original port.\n"
		    "# TYPE tpin_bytes_total counter\n");
	for (i = 0; i < NPORTS; i++) {
		for (d = 0; d < 2; d++) {
			v = sum_port(m, i, (int)d);
			if (v)
				tpin_strbuf_printf(
					sb, "tpin_bytes_total{direction=\"%s\",port=\"%u\"} %llu\n",
					direction_names[d], i, (unsigned long long)v);
		}
	}
}
