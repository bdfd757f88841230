// SPDX-License-Identifier: MIT
/* The proxy object: options, the workers, drain and stop, readings. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tpin/err.h"
#include "tpin/metrics.h"
#include "tpin/net.h"
#include "tpin/proxy-hooks.h"
#include "tpin/proxy.h"
#include "tpin/sock.h"
#include "sources.h"
#include "worker.h"

struct tpin_proxy {
	struct tpin_proxy_options opt;
	struct relay_config relay;
	struct tpin_metrics *metrics;
	struct sources *sources;
	struct worker *workers;
	unsigned n_workers;
	uint16_t port;
	uint16_t outbound_port;
	atomic_uint live;	 /* sessions past the cap check, for --max-connections */
	atomic_int fd_limit;	 /* see relay.h */
	atomic_uint port_cursor; /* the next --preserve-source port (upstream.c) */
	atomic_uint running;	 /* loops still running */
	bool started;
};

void tpin_proxy_options_init(struct tpin_proxy_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->mode = TPIN_MODE_TPROXY;
	opt->outbound_mode = TPIN_MODE_TPROXY;
	opt->upstream = TPIN_UPSTREAM_ORIGINAL;
	opt->capture_port = TPIN_DEFAULT_CAPTURE_PORT;
	opt->outbound_port = TPIN_DEFAULT_OUTBOUND_PORT;
	opt->admin_port = TPIN_DEFAULT_ADMIN_PORT;
	opt->ipv4 = true;
	opt->ipv6 = true;
	opt->proxy_mark = TPIN_DEFAULT_PROXY_MARK;
	opt->passthrough4.sin_family = AF_INET;
	opt->passthrough4.sin_addr.s_addr = htonl(TPIN_PASSTHROUGH4);
	opt->passthrough6.sin6_family = AF_INET6;
	opt->passthrough6.sin6_addr = (struct in6_addr)TPIN_PASSTHROUGH6_INIT;
	opt->connect_timeout_ms = 10000;
	opt->idle_timeout_ms = 3600 * 1000;
	opt->keepalive = (struct tpin_keepalive){ .idle_s = 60, .interval_s = 10, .count = 6 };
	opt->queue_limit = 256 * 1024;
	opt->upstream_buffer = TPIN_UPSTREAM_BUFFER_DEFAULT;
	opt->upstream_mss = TPIN_UPSTREAM_MSS_DEFAULT;
	opt->preserve_port_first = 1024;
	opt->preserve_port_last = 32767;
}

void tpin_proxy_default_caps(uint32_t *max_connections, uint32_t *max_per_source)
{
	struct rlimit rl;
	rlim_t fds = 1024;

	if (!getrlimit(RLIMIT_NOFILE, &rl))
		fds = rl.rlim_cur;
	if (fds > 2 * (rlim_t)UINT32_MAX)
		fds = 2 * (rlim_t)UINT32_MAX;
	*max_connections =
		fds > RELAY_FD_RESERVE + 2 ? (uint32_t)((fds - RELAY_FD_RESERVE) / 2) : 1;
	*max_per_source = *max_connections / 4 ? *max_connections / 4 : 1;
}

static void on_worker_exit(void *arg)
{
	struct tpin_proxy *p = arg;

	if (atomic_fetch_sub(&p->running, 1) == 1 && p->opt.on_finished)
		p->opt.on_finished(p->opt.on_finished_arg);
}

void tpin_proxy_free(struct tpin_proxy *p)
{
	unsigned i;

	if (!p)
		return;
	if (p->started) {
		tpin_proxy_stop(p);
		tpin_proxy_wait(p);
	}
	for (i = 0; p->workers && i < p->n_workers; i++)
		worker_free(&p->workers[i]);
	free(p->workers);
	tpin_metrics_free(p->metrics);
	sources_free(p->sources);
	free(p);
}

static int check_options(const struct tpin_proxy_options *opt, struct tpin_err *err)
{
	if (!opt->ipv4 && !opt->ipv6) {
		tpin_err_set(err, -EINVAL, "neither IPv4 nor IPv6 is enabled");
		return -EINVAL;
	}
	if (!opt->capture_port) {
		tpin_err_set(err, -EINVAL, "the capture port must be set");
		return -EINVAL;
	}
	if (opt->outbound_port == opt->capture_port) {
		tpin_err_set(err, -EINVAL, "the capture port and the outbound port are both %u",
			     opt->capture_port);
		return -EINVAL;
	}
	if (opt->preserve_source && opt->mode != TPIN_MODE_TPROXY) {
		tpin_err_set(err, -EINVAL, "--preserve-source works only in tproxy mode");
		return -EINVAL;
	}
	if (opt->preserve_source && opt->upstream == TPIN_UPSTREAM_LOCALHOST) {
		tpin_err_set(err, -EINVAL,
			     "--preserve-source cannot connect to localhost from a remote address");
		return -EINVAL;
	}
	if (opt->preserve_source &&
	    (!opt->preserve_port_first || opt->preserve_port_first > opt->preserve_port_last)) {
		tpin_err_set(err, -EINVAL, "the --preserve-source ports are no range");
		return -EINVAL;
	}
	/* What the command line accepts; setsockopt takes an int. */
	if ((opt->upstream_buffer &&
	     (opt->upstream_buffer < 4096 || opt->upstream_buffer > 64u << 20)) ||
	    (opt->upstream_mss &&
	     (opt->upstream_mss < 536 || opt->upstream_mss > TPIN_UPSTREAM_MSS_MAX))) {
		tpin_err_set(err, -EINVAL, "upstream buffer %u or MSS %u out of range",
			     opt->upstream_buffer, opt->upstream_mss);
		return -EINVAL;
	}
	if (opt->queue_limit < 1 || opt->connect_timeout_ms < 1) {
		tpin_err_set(err, -EINVAL, "queue limit and connect timeout must be positive");
		return -EINVAL;
	}
	return 0;
}

int tpin_proxy_new(struct tpin_proxy **out, const struct tpin_proxy_options *opt,
		   struct tpin_err *err)
{
	struct tpin_proxy_hooks *hooks = tpin_proxy_hooks();
	struct listen_spec specs[4];
	struct tpin_proxy *p;
	unsigned i, n = 0;
	int ret;

	ret = check_options(opt, err);
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->opt = *opt;
	/* Unprivileged tests can set no mark, on the listeners or on upstream sockets. */
	if (hooks && hooks->loopback)
		p->opt.proxy_mark = 0;
	p->relay.opt = &p->opt;
	p->relay.live = &p->live;
	p->relay.hooks = hooks;
	p->relay.fd_limit = &p->fd_limit;
	p->relay.port_cursor = &p->port_cursor;
	relay_limits_refresh(&p->relay);
	/* Tests listen unprivileged on loopback, at ports the kernel picks. */
	p->port = hooks && hooks->loopback ? 0 : opt->capture_port;
	p->outbound_port = hooks && hooks->loopback ? 0 : opt->outbound_port;
	for (i = 0; i < 4; i++) {
		int family = i % 2 ? AF_INET6 : AF_INET;
		bool outbound = i >= 2;

		if (!(i % 2 ? opt->ipv6 : opt->ipv4) || (outbound && !opt->outbound_port))
			continue;
		/*
		 * Both kinds are transparent and carry the proxy's mark. The
		 * keepalive goes where the network is: on the sockets facing
		 * the clients inbound (inherited from the listener), on the
		 * upstream sockets outbound (upstream.c).
		 */
		specs[n++] = (struct listen_spec){
			.family = family,
			.outbound = outbound,
			.loopback = hooks && hooks->loopback,
			.transparent = !(hooks && hooks->loopback),
			.mark = hooks && hooks->loopback ? 0 : opt->proxy_mark,
			.ka = !outbound && opt->keepalive.idle_s ? &p->opt.keepalive : NULL,
		};
	}
	p->n_workers = opt->concurrency ? opt->concurrency : uv_available_parallelism();
	if (!p->n_workers)
		p->n_workers = 1;
	p->workers = calloc(p->n_workers, sizeof(*p->workers));
	if (!p->workers || tpin_metrics_new(&p->metrics, p->n_workers))
		goto nomem;
	ret = sources_new(&p->sources, opt->max_per_source, opt->preserve_source);
	if (ret == -ENOMEM)
		goto nomem;
	if (ret) {
		tpin_err_set(err, ret, "cannot draw the per-source tables' hash key: %s",
			     strerror(-ret));
		goto fail;
	}
	p->relay.sources = p->sources;
	for (i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];

		w->on_exit = on_worker_exit;
		w->arg = p;
		ret = worker_init(w, &p->relay, specs, n, &p->port, &p->outbound_port,
				  tpin_metrics_shard(p->metrics, i), err);
		if (ret)
			goto fail;
	}
	p->relay.capture_port = p->port;
	p->relay.outbound_port = p->outbound_port;
	*out = p;
	return 0;
nomem:
	tpin_err_set(err, -ENOMEM, "out of memory");
	ret = -ENOMEM;
fail:
	tpin_proxy_free(p);
	return ret;
}

int tpin_proxy_start(struct tpin_proxy *p)
{
	unsigned i;
	int ret;

	if (p->started)
		return -EALREADY;
	p->started = true;
	atomic_store(&p->running, p->n_workers);
	for (i = 0; i < p->n_workers; i++) {
		ret = worker_start(&p->workers[i]);
		if (ret) {
			/* The loops never run: count them as finished and stop the rest. */
			atomic_fetch_sub(&p->running, p->n_workers - i);
			tpin_proxy_stop(p);
			return ret;
		}
	}
	return 0;
}

void tpin_proxy_drain(struct tpin_proxy *p, uint32_t timeout_ms)
{
	unsigned i;

	for (i = 0; i < p->n_workers; i++)
		worker_post(&p->workers[i], WORKER_DRAIN, timeout_ms);
}

void tpin_proxy_stop(struct tpin_proxy *p)
{
	unsigned i;

	for (i = 0; i < p->n_workers; i++)
		worker_post(&p->workers[i], WORKER_STOP, 0);
}

int tpin_proxy_wait(struct tpin_proxy *p)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < p->n_workers; i++)
		if (worker_join(&p->workers[i]))
			ret = -EBUSY;
	return ret;
}

uint16_t tpin_proxy_port(const struct tpin_proxy *p)
{
	return p->port;
}

uint16_t tpin_proxy_outbound_port(const struct tpin_proxy *p)
{
	return p->outbound_port;
}

bool tpin_proxy_listening(const struct tpin_proxy *p)
{
	unsigned i;

	for (i = 0; i < p->n_workers; i++)
		if (!worker_listening(&p->workers[i]))
			return false;
	return true;
}

int tpin_proxy_transparent(const struct tpin_proxy *p, bool *all)
{
	unsigned i, j;
	bool on;
	int fd, ret;

	*all = true;
	for (i = 0; i < p->n_workers; i++) {
		const struct worker *w = &p->workers[i];

		for (j = 0; j < w->n_listeners; j++) {
			fd = worker_listener_fd(w, j);
			if (fd < 0)
				return -ENOTCONN;
			ret = tpin_sock_get_transparent(fd, w->listeners[j].family, &on);
			if (ret)
				return ret;
			*all = *all && on;
		}
	}
	return 0;
}

void tpin_proxy_stats(const struct tpin_proxy *p, struct tpin_proxy_stats *st)
{
	struct tpin_metrics_totals t;
	unsigned i;
	uint64_t peak;

	tpin_metrics_totals(p->metrics, &t);
	memset(st, 0, sizeof(*st));
	st->accepted = t.accepted;
	st->active = t.active;
	st->refused = t.refused;
	st->connect_failures = t.connect_failures;
	st->bytes_up = t.bytes[TPIN_DIR_UPSTREAM];
	st->bytes_down = t.bytes[TPIN_DIR_DOWNSTREAM];
	st->live = atomic_load(&p->live);
	for (i = 0; i < p->n_workers; i++) {
		peak = worker_queue_peak(&p->workers[i]);
		if (peak > st->queue_peak)
			st->queue_peak = peak;
	}
}

struct tpin_metrics *tpin_proxy_metrics(const struct tpin_proxy *p)
{
	return p->metrics;
}

void tpin_proxy_connections(struct tpin_proxy *p, struct tpin_strbuf *sb)
{
	unsigned i;

	for (i = 0; i < p->n_workers; i++)
		worker_describe(&p->workers[i], sb);
}
