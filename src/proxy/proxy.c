// SPDX-License-Identifier: MIT
/* The proxy object: options, worker threads, drain and stop, readings. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy-internal.h"
#include "tpin/metrics.h"
#include "tpin/sock.h"

void tpin_proxy_options_init(struct tpin_proxy_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->mode = TPIN_MODE_TPROXY;
	opt->upstream = TPIN_UPSTREAM_ORIGINAL;
	opt->capture_port = TPIN_DEFAULT_CAPTURE_PORT;
	opt->admin_port = TPIN_DEFAULT_ADMIN_PORT;
	opt->ipv4 = true;
	opt->ipv6 = true;
	opt->transparent = true;
	opt->proxy_mark = TPIN_DEFAULT_PROXY_MARK;
	opt->passthrough4.sin_family = AF_INET;
	opt->passthrough4.sin_addr.s_addr = htonl(0x7f000006); /* 127.0.0.6 */
	opt->passthrough6.sin6_family = AF_INET6;
	opt->passthrough6.sin6_addr.s6_addr[15] = 6; /* ::6 */
	opt->connect_timeout_ms = 10000;
	opt->queue_limit = 256 * 1024;
}

void worker_maybe_end(struct worker *w)
{
	if (!w->ending || w->n_sessions || !w->core_open)
		return;
	w->core_open = false;
	uv_mutex_lock(&w->lock);
	w->async_open = false;
	uv_mutex_unlock(&w->lock);
	uv_close((uv_handle_t *)&w->async, NULL);
	uv_close((uv_handle_t *)&w->drain_timer, NULL);
	/* The last lines go out before the loop can end. */
	relay_log_flush(w);
	if (w->log_open) {
		w->log_open = false;
		uv_close((uv_handle_t *)&w->log_flush, NULL);
	}
}

static void on_drain_deadline(uv_timer_t *t)
{
	struct worker *w = t->data;

	relay_close_all(w, "drain_timeout");
}

static void on_command(uv_async_t *a)
{
	struct worker *w = a->data;
	int cmd = atomic_load(&w->cmd);

	if (cmd == CMD_NONE)
		return;
	if (!w->ending) {
		listener_close_all(w);
		w->ending = true;
	}
	if (cmd == CMD_STOP) {
		relay_close_all(w, "stopped");
	} else if (!w->drained) {
		w->drained = true;
		uv_timer_start(&w->drain_timer, on_drain_deadline, atomic_load(&w->drain_ms), 0);
	}
	worker_maybe_end(w);
}

/* Close whatever is open and run the loop until the close callbacks ran. */
static int worker_teardown(struct worker *w)
{
	int ret;

	listener_close_all(w);
	w->ending = true;
	relay_close_all(w, "stopped");
	worker_maybe_end(w);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	ret = uv_loop_close(&w->loop);
	w->loop_ready = false;
	return ret;
}

static int worker_init(struct tpin_proxy *p, struct worker *w, char *err, size_t errlen)
{
	const struct tpin_proxy_options *opt = &p->opt;
	int ret;

	w->p = p;
	w->m = tpin_metrics_shard(p->metrics, (unsigned)(w - p->workers));
	w->rbuf = malloc(RELAY_BUF_SIZE);
	w->logbuf = opt->log ? malloc(RELAY_LOG_SIZE) : NULL;
	if (!w->rbuf || (opt->log && !w->logbuf)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = uv_mutex_init(&w->lock);
	if (ret)
		goto fail;
	w->lock_ready = true;
	ret = uv_loop_init(&w->loop);
	if (ret)
		goto fail;
	w->loop_ready = true;
	ret = uv_async_init(&w->loop, &w->async, on_command);
	if (ret)
		goto fail;
	w->async.data = w;
	uv_timer_init(&w->loop, &w->drain_timer);
	w->drain_timer.data = w;
	if (opt->log) {
		uv_prepare_init(&w->loop, &w->log_flush);
		w->log_flush.data = w;
		w->log_open = true;
	}
	/* The async handle keeps the loop alive until a drain or stop ends it. */
	w->core_open = true;
	w->async_open = true;
	if (opt->ipv4) {
		ret = listener_open(w, AF_INET, &p->port, err, errlen);
		if (ret)
			return ret;
	}
	if (opt->ipv6) {
		ret = listener_open(w, AF_INET6, &p->port, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot set up an event loop: %s", uv_strerror(ret));
	return ret;
}

static void worker_main(void *arg)
{
	struct worker *w = arg;
	struct tpin_proxy *p = w->p;

	uv_run(&w->loop, UV_RUN_DEFAULT);
	relay_log_flush(w);
	w->close_result = uv_loop_close(&w->loop);
	w->loop_ready = false;
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
	for (i = 0; p->workers && i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];

		if (w->loop_ready)
			worker_teardown(w);
		if (w->lock_ready)
			uv_mutex_destroy(&w->lock);
		relay_free_sessions(w);
		relay_free_pipes(w);
		free(w->rbuf);
		free(w->logbuf);
	}
	free(p->workers);
	tpin_metrics_free(p->metrics);
	free(p);
}

static int check_options(const struct tpin_proxy_options *opt, char *err, size_t errlen)
{
	if (!opt->ipv4 && !opt->ipv6) {
		snprintf(err, errlen, "neither IPv4 nor IPv6 is enabled");
		return -EINVAL;
	}
	if (!opt->capture_port && opt->transparent) {
		snprintf(err, errlen, "a transparent listener needs a fixed capture port");
		return -EINVAL;
	}
	if (opt->preserve_source && opt->mode != TPIN_MODE_TPROXY) {
		snprintf(err, errlen, "--preserve-source works only in tproxy mode");
		return -EINVAL;
	}
	if (opt->preserve_source && opt->upstream == TPIN_UPSTREAM_LOCALHOST) {
		snprintf(err, errlen,
			 "--preserve-source cannot connect to localhost from a remote address");
		return -EINVAL;
	}
	if (opt->queue_limit < 1 || opt->connect_timeout_ms < 1) {
		snprintf(err, errlen, "queue limit and connect timeout must be positive");
		return -EINVAL;
	}
	return 0;
}

int tpin_proxy_new(struct tpin_proxy **out, const struct tpin_proxy_options *opt, char *err,
		   size_t errlen)
{
	struct tpin_proxy *p;
	unsigned i;
	int ret;

	ret = check_options(opt, err, errlen);
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->opt = *opt;
	p->port = opt->capture_port;
	p->n_workers = opt->concurrency ? opt->concurrency : uv_available_parallelism();
	if (!p->n_workers)
		p->n_workers = 1;
	p->workers = calloc(p->n_workers, sizeof(*p->workers));
	if (!p->workers || tpin_metrics_new(&p->metrics, p->n_workers))
		goto nomem;
	for (i = 0; i < p->n_workers; i++) {
		ret = worker_init(p, &p->workers[i], err, errlen);
		if (ret)
			goto fail;
	}
	*out = p;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	ret = -ENOMEM;
fail:
	tpin_proxy_free(p);
	/* libuv's errors are already negative errno values on Linux. */
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
		ret = uv_thread_create(&p->workers[i].thread, worker_main, &p->workers[i]);
		if (ret) {
			/* The loops never run: count them as finished and stop the rest. */
			atomic_fetch_sub(&p->running, p->n_workers - i);
			tpin_proxy_stop(p);
			return ret;
		}
		p->workers[i].thread_started = true;
	}
	return 0;
}

static void post(struct tpin_proxy *p, int cmd, uint32_t drain_ms)
{
	unsigned i;

	for (i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];

		uv_mutex_lock(&w->lock);
		if (cmd == CMD_DRAIN)
			atomic_store(&w->drain_ms, drain_ms);
		/* A stop overrides a drain, never the other way round. */
		if (atomic_load(&w->cmd) < cmd)
			atomic_store(&w->cmd, cmd);
		if (w->async_open)
			uv_async_send(&w->async);
		uv_mutex_unlock(&w->lock);
	}
}

void tpin_proxy_drain(struct tpin_proxy *p, uint32_t timeout_ms)
{
	post(p, CMD_DRAIN, timeout_ms);
}

void tpin_proxy_stop(struct tpin_proxy *p)
{
	post(p, CMD_STOP, 0);
}

int tpin_proxy_wait(struct tpin_proxy *p)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];

		if (!w->thread_started)
			continue;
		uv_thread_join(&w->thread);
		w->thread_started = false;
		if (w->close_result)
			ret = -EBUSY;
	}
	return ret;
}

uint16_t tpin_proxy_port(const struct tpin_proxy *p)
{
	return p->port;
}

bool tpin_proxy_listening(const struct tpin_proxy *p)
{
	unsigned i, j;

	for (i = 0; i < p->n_workers; i++)
		for (j = 0; j < p->workers[i].n_listeners; j++)
			if (!atomic_load(&p->workers[i].listeners[j].up))
				return false;
	return true;
}

int tpin_proxy_transparent(const struct tpin_proxy *p, bool *all)
{
	unsigned i, j;
	uv_os_fd_t fd;
	bool on;
	int ret;

	*all = true;
	for (i = 0; i < p->n_workers; i++) {
		for (j = 0; j < p->workers[i].n_listeners; j++) {
			const struct listener *l = &p->workers[i].listeners[j];

			if (!atomic_load(&l->up))
				return -ENOTCONN;
			uv_fileno((const uv_handle_t *)&l->tcp, &fd);
			ret = tpin_sock_get_transparent(fd, l->family, &on);
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
	for (i = 0; i < p->n_workers; i++) {
		peak = atomic_load(&p->workers[i].queue_peak);
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
		relay_describe(&p->workers[i], sb);
}
