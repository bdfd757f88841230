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
	atomic_uint_fast64_t accepted[2]; /* by enum tpin_traffic */
	atomic_uint_fast64_t closed[2];
	atomic_uint_fast64_t refused[2][TPIN_REFUSED_MAX];
	/*
	 * One slot per traffic and port. calloc() hands back untouched zero
	 * pages, so only the ports that carry traffic cost memory.
	 */
	struct port_counters *port[2];
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

static const char *const traffic_names[2] = {
	[TPIN_INBOUND] = "inbound",
	[TPIN_OUTBOUND] = "outbound",
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
		m->shard[i].port[0] = calloc(NPORTS, sizeof(*m->shard[i].port[0]));
		m->shard[i].port[1] = calloc(NPORTS, sizeof(*m->shard[i].port[1]));
		if (!m->shard[i].port[0] || !m->shard[i].port[1]) {
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
	for (i = 0; i < m->n; i++) {
		free(m->shard[i].port[0]);
		free(m->shard[i].port[1]);
	}
	free(m->shard);
	free(m);
}

struct tpin_metrics_shard *tpin_metrics_shard(struct tpin_metrics *m, unsigned i)
{
	return &m->shard[i % m->n];
}

void tpin_metrics_accepted(struct tpin_metrics_shard *m, enum tpin_traffic t)
{
	ADD(m->accepted[t], 1);
}

void tpin_metrics_closed(struct tpin_metrics_shard *m, enum tpin_traffic t)
{
	ADD(m->closed[t], 1);
}

void tpin_metrics_refused(struct tpin_metrics_shard *m, enum tpin_traffic t, enum tpin_refusal why)
{
	ADD(m->refused[t][why], 1);
}

void tpin_metrics_connect_failed(struct tpin_metrics_shard *m, enum tpin_traffic t, uint16_t port)
{
	ADD(m->port[t][port].connect_failures, 1);
}

void tpin_metrics_bytes(struct tpin_metrics_shard *m, enum tpin_traffic t, uint16_t port,
			enum tpin_direction dir, uint64_t n)
{
	ADD(m->port[t][port].bytes[dir], n);
}

void tpin_metrics_totals(const struct tpin_metrics *m, struct tpin_metrics_totals *t)
{
	uint64_t closed = 0;
	unsigned i, j, k;

	memset(t, 0, sizeof(*t));
	/* Read closed first: a connection closing meanwhile then never shows
	 * as closed without having been accepted, and active stays >= 0. */
	for (j = 0; j < m->n; j++)
		closed += GET(m->shard[j].closed[0]) + GET(m->shard[j].closed[1]);
	atomic_thread_fence(memory_order_acquire);
	for (j = 0; j < m->n; j++) {
		const struct tpin_metrics_shard *sh = &m->shard[j];

		for (k = 0; k < 2; k++) {
			t->accepted += GET(sh->accepted[k]);
			for (i = 0; i < TPIN_REFUSED_MAX; i++)
				t->refused += GET(sh->refused[k][i]);
			for (i = 0; i < NPORTS; i++) {
				t->connect_failures += GET(sh->port[k][i].connect_failures);
				t->bytes[0] += GET(sh->port[k][i].bytes[0]);
				t->bytes[1] += GET(sh->port[k][i].bytes[1]);
			}
		}
	}
	t->active = t->accepted >= closed ? t->accepted - closed : 0;
}

/* The sum over the shards of the counter that @get picks out of each. */
static uint64_t sum(const struct tpin_metrics *m,
		    uint64_t (*get)(const struct tpin_metrics_shard *sh, unsigned a, unsigned b,
				    unsigned c),
		    unsigned a, unsigned b, unsigned c)
{
	uint64_t v = 0;
	unsigned j;

	for (j = 0; j < m->n; j++)
		v += get(&m->shard[j], a, b, c);
	return v;
}

static uint64_t get_accepted(const struct tpin_metrics_shard *sh, unsigned t, unsigned b,
			     unsigned c)
{
	return GET(sh->accepted[t]);
}

static uint64_t get_closed(const struct tpin_metrics_shard *sh, unsigned t, unsigned b, unsigned c)
{
	return GET(sh->closed[t]);
}

static uint64_t get_refused(const struct tpin_metrics_shard *sh, unsigned t, unsigned why,
			    unsigned c)
{
	return GET(sh->refused[t][why]);
}

static uint64_t get_failures(const struct tpin_metrics_shard *sh, unsigned t, unsigned port,
			     unsigned c)
{
	return GET(sh->port[t][port].connect_failures);
}

static uint64_t get_bytes(const struct tpin_metrics_shard *sh, unsigned t, unsigned port,
			  unsigned dir)
{
	return GET(sh->port[t][port].bytes[dir]);
}

void tpin_metrics_render(const struct tpin_metrics *m, struct tpin_strbuf *sb)
{
	uint64_t v, closed;
	unsigned t, i, d;

	tpin_strbuf_printf(sb, "# HELP tpin_connections_accepted_total Connections accepted, by "
			       "traffic (inbound: on the capture port, outbound: the app's own).\n"
			       "# TYPE tpin_connections_accepted_total counter\n");
	for (t = 0; t < 2; t++)
		tpin_strbuf_printf(sb, "tpin_connections_accepted_total{traffic=\"%s\"} %llu\n",
				   traffic_names[t],
				   (unsigned long long)sum(m, get_accepted, t, 0, 0));
	tpin_strbuf_printf(sb, "# HELP tpin_connections_active Connections open now.\n"
			       "# TYPE tpin_connections_active gauge\n");
	for (t = 0; t < 2; t++) {
		/* Closed first, as in tpin_metrics_totals(). */
		closed = sum(m, get_closed, t, 0, 0);
		atomic_thread_fence(memory_order_acquire);
		v = sum(m, get_accepted, t, 0, 0);
		tpin_strbuf_printf(sb, "tpin_connections_active{traffic=\"%s\"} %llu\n",
				   traffic_names[t],
				   (unsigned long long)(v >= closed ? v - closed : 0));
	}
	tpin_strbuf_printf(sb, "# HELP tpin_connections_refused_total Connections closed without "
			       "relaying, by reason.\n"
			       "# TYPE tpin_connections_refused_total counter\n");
	for (t = 0; t < 2; t++)
		for (i = 0; i < TPIN_REFUSED_MAX; i++)
			tpin_strbuf_printf(sb,
					   "tpin_connections_refused_total{traffic=\"%s\",reason="
					   "\"%s\"} %llu\n",
					   traffic_names[t], refusal_names[i],
					   (unsigned long long)sum(m, get_refused, t, i, 0));

	tpin_strbuf_printf(sb, "# HELP tpin_upstream_connect_failures_total Failed connections to "
			       "where a connection went, by original port.\n"
			       "# TYPE tpin_upstream_connect_failures_total counter\n");
	for (t = 0; t < 2; t++) {
		for (i = 0; i < NPORTS; i++) {
			v = sum(m, get_failures, t, i, 0);
			if (v)
				tpin_strbuf_printf(
					sb,
					"tpin_upstream_connect_failures_total{traffic=\"%s\","
					"port=\"%u\"} %llu\n",
					traffic_names[t], i, (unsigned long long)v);
		}
	}

	tpin_strbuf_printf(sb, "# HELP tpin_bytes_total Bytes relayed, by traffic, direction "
			       "(upstream: from the client) and original port.\n"
			       "# TYPE tpin_bytes_total counter\n");
	for (t = 0; t < 2; t++) {
		for (i = 0; i < NPORTS; i++) {
			for (d = 0; d < 2; d++) {
				v = sum(m, get_bytes, t, i, d);
				if (v)
					tpin_strbuf_printf(sb,
							   "tpin_bytes_total{traffic=\"%s\","
							   "direction=\"%s\",port=\"%u\"} %llu\n",
							   traffic_names[t], direction_names[d], i,
							   (unsigned long long)v);
			}
		}
	}
}
