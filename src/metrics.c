// SPDX-License-Identifier: MIT
/* Shared counters and their Prometheus text rendering. */

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "tpin/metrics.h"

#define NPORTS 65536

struct port_counters {
	atomic_uint_fast64_t bytes[2];
	atomic_uint_fast64_t connect_failures;
};

struct tpin_metrics {
	atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t closed;
	atomic_uint_fast64_t refused[TPIN_REFUSED_MAX];
	/*
	 * One slot per port. calloc() hands back untouched zero pages, so only
	 * the ports that carry traffic cost memory.
	 */
	struct port_counters *port;
};

static const char *const refusal_names[TPIN_REFUSED_MAX] = {
	[TPIN_REFUSED_LOOP] = "loop",
	[TPIN_REFUSED_LIMIT] = "limit",
};

static const char *const direction_names[2] = {
	[TPIN_DIR_UPSTREAM] = "upstream",
	[TPIN_DIR_DOWNSTREAM] = "downstream",
};

#define ADD(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

int tpin_metrics_new(struct tpin_metrics **out)
{
	struct tpin_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->port = calloc(NPORTS, sizeof(*m->port));
	if (!m->port) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void tpin_metrics_free(struct tpin_metrics *m)
{
	if (!m)
		return;
	free(m->port);
	free(m);
}

void tpin_metrics_accepted(struct tpin_metrics *m)
{
	ADD(m->accepted, 1);
}

void tpin_metrics_closed(struct tpin_metrics *m)
{
	ADD(m->closed, 1);
}

void tpin_metrics_refused(struct tpin_metrics *m, enum tpin_refusal why)
{
	ADD(m->refused[why], 1);
}

void tpin_metrics_connect_failed(struct tpin_metrics *m, uint16_t port)
{
	ADD(m->port[port].connect_failures, 1);
}

void tpin_metrics_bytes(struct tpin_metrics *m, uint16_t port, enum tpin_direction dir,
			uint64_t n)
{
	ADD(m->port[port].bytes[dir], n);
}

void tpin_metrics_totals(const struct tpin_metrics *m, struct tpin_metrics_totals *t)
{
	uint64_t closed;
	unsigned i;

	/* Read closed first: a connection closing meanwhile then never shows
	 * as closed without having been accepted, and active stays >= 0. */
	closed = GET(m->closed);
	t->accepted = GET(m->accepted);
	t->active = t->accepted >= closed ? t->accepted - closed : 0;
	t->refused = 0;
	for (i = 0; i < TPIN_REFUSED_MAX; i++)
		t->refused += GET(m->refused[i]);
	t->connect_failures = 0;
	t->bytes[0] = t->bytes[1] = 0;
	for (i = 0; i < NPORTS; i++) {
		t->connect_failures += GET(m->port[i].connect_failures);
		t->bytes[0] += GET(m->port[i].bytes[0]);
		t->bytes[1] += GET(m->port[i].bytes[1]);
	}
}

void tpin_metrics_render(const struct tpin_metrics *m, struct tpin_strbuf *sb)
{
	struct tpin_metrics_totals t;
	uint64_t v;
	unsigned i, d;

	tpin_metrics_totals(m, &t);
	tpin_strbuf_printf(sb,
			   "# HELP tpin_connections_accepted_total Connections accepted on the capture port.\n"
			   "# TYPE tpin_connections_accepted_total counter\n"
			   "tpin_connections_accepted_total %llu\n"
			   "# HELP tpin_connections_active Connections open now.\n"
			   "# TYPE tpin_connections_active gauge\n"
			   "tpin_connections_active %llu\n"
			   "# HELP tpin_connections_refused_total Connections closed without relaying, by reason.\n"
			   "# TYPE tpin_connections_refused_total counter\n",
			   (unsigned long long)t.accepted, (unsigned long long)t.active);
	for (i = 0; i < TPIN_REFUSED_MAX; i++)
		tpin_strbuf_printf(sb, "tpin_connections_refused_total{reason=\"%s\"} %llu\n",
				   refusal_names[i], (unsigned long long)GET(m->refused[i]));

	tpin_strbuf_printf(sb,
			   "# HELP tpin_upstream_connect_failures_total Failed connections to the application, by original port.\n"
			   "# TYPE tpin_upstream_connect_failures_total counter\n");
	for (i = 0; i < NPORTS; i++) {
		v = GET(m->port[i].connect_failures);
		if (v)
			tpin_strbuf_printf(sb, "tpin_upstream_connect_failures_total{port=\"%u\"} %llu\n",
					   i, (unsigned long long)v);
	}

	tpin_strbuf_printf(sb,
			   "# HELP tpin_bytes_total Bytes relayed, by direction and original port.\n"
			   "# TYPE tpin_bytes_total counter\n");
	for (i = 0; i < NPORTS; i++) {
		for (d = 0; d < 2; d++) {
			v = GET(m->port[i].bytes[d]);
			if (v)
				tpin_strbuf_printf(
					sb, "tpin_bytes_total{direction=\"%s\",port=\"%u\"} %llu\n",
					direction_names[d], i, (unsigned long long)v);
		}
	}
}
