// SPDX-License-Identifier: MIT
/* One event loop on one thread; see worker.h. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tpin/err.h"
#include "tpin/proxy-options.h"
#include "worker.h"

/* The last handles close; the loop ends once their callbacks ran. */
static void worker_close_core(struct worker *w)
{
	if (!w->core_open)
		return;
	w->core_open = false;
	uv_mutex_lock(&w->lock);
	w->async_open = false;
	uv_mutex_unlock(&w->lock);
	uv_close((uv_handle_t *)&w->async, NULL);
	uv_close((uv_handle_t *)&w->drain_timer, NULL);
	uv_close((uv_handle_t *)&w->limits, NULL);
	evset_close(&w->set);
	/* The last lines go out before the loop can end. */
	tpin_log_batch_close(&w->log);
}

/* The relay's last session is gone and nothing new may come. */
static void on_relay_empty(void *arg)
{
	worker_close_core(arg);
}

/* Stop accepting; the loop ends with the last session. */
static void worker_end(struct worker *w)
{
	unsigned i;

	if (w->ending)
		return;
	w->ending = true;
	for (i = 0; i < w->n_listeners; i++)
		listener_close(&w->listeners[i]);
	relay_end(&w->relay);
}

static void on_drain_deadline(uv_timer_t *t)
{
	struct worker *w = t->data;

	relay_close_all(&w->relay, "drain_timeout");
}

static void on_command(uv_async_t *a)
{
	struct worker *w = a->data;
	int cmd = atomic_load(&w->cmd);

	if (cmd == WORKER_NONE)
		return;
	if (cmd == WORKER_STOP) {
		relay_close_all(&w->relay, "stopped");
	} else if (!w->drained) {
		w->drained = true;
		uv_timer_start(&w->drain_timer, on_drain_deadline, atomic_load(&w->drain_ms), 0);
	}
	worker_end(w);
}

static void on_limits(uv_timer_t *t)
{
	struct worker *w = t->data;

	relay_limits_refresh(w->relay.cfg);
}

static void on_accept(struct listener *l, int fd, const struct sockaddr *peer, socklen_t len)
{
	struct worker *w = l->data;

	relay_accept(&w->relay, fd, peer, len, l->outbound);
}

int worker_init(struct worker *w, const struct relay_config *cfg, const struct listen_spec *specs,
		unsigned n, uint16_t *port, uint16_t *out_port, struct tpin_metrics_shard *m,
		struct tpin_err *err)
{
	struct listen_spec spec;
	unsigned i;
	int ret;

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
	uv_timer_init(&w->loop, &w->limits);
	w->limits.data = w;
	uv_timer_start(&w->limits, on_limits, 1000, 1000);
	/* A timer that alone would keep the loop alive must not: the async handle does. */
	uv_unref((uv_handle_t *)&w->limits);
	/* The async handle keeps the loop alive until a drain or stop ends it. */
	w->core_open = w->async_open = true;
	ret = evset_init(&w->set, &w->loop);
	if (ret) {
		/* The async handle and timer close with the rest in worker_free(). */
		w->set.open = false;
		goto fail;
	}
	ret = tpin_log_batch_init(&w->log, cfg->opt->log, &w->loop);
	if (!ret)
		ret = relay_init(&w->relay, cfg, &w->loop, &w->set, m, &w->log, on_relay_empty, w);
	if (ret)
		goto fail;
	w->relay_ready = true;
	for (i = 0; i < n; i++) {
		struct listener *l = &w->listeners[w->n_listeners++];

		uint16_t *p = specs[i].outbound ? out_port : port;

		spec = specs[i];
		spec.port = *p;
		l->on_accept = on_accept;
		l->data = w;
		l->log = cfg->opt->log;
		ret = listener_open(l, &w->loop, &w->set, &spec, p, err);
		if (ret)
			return ret;
	}
	return 0;
fail:
	tpin_err_set(err, ret, "cannot set up an event loop: %s", strerror(-ret));
	return ret;
}

static void worker_main(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
	w->close_result = uv_loop_close(&w->loop);
	w->loop_ready = false;
	if (w->on_exit)
		w->on_exit(w->arg);
}

int worker_start(struct worker *w)
{
	int ret = uv_thread_create(&w->thread, worker_main, w);

	w->thread_started = !ret;
	return ret;
}

void worker_post(struct worker *w, enum worker_cmd cmd, uint32_t drain_ms)
{
	uv_mutex_lock(&w->lock);
	if (cmd == WORKER_DRAIN)
		atomic_store(&w->drain_ms, drain_ms);
	/* A stop overrides a drain, never the other way round. */
	if (atomic_load(&w->cmd) < (int)cmd)
		atomic_store(&w->cmd, cmd);
	if (w->async_open)
		uv_async_send(&w->async);
	uv_mutex_unlock(&w->lock);
}

int worker_join(struct worker *w)
{
	if (!w->thread_started)
		return 0;
	uv_thread_join(&w->thread);
	w->thread_started = false;
	return w->close_result ? -EBUSY : 0;
}

void worker_free(struct worker *w)
{
	unsigned i;

	if (w->loop_ready) {
		/* A worker that never ran, or whose setup failed halfway. */
		for (i = 0; i < w->n_listeners; i++)
			listener_close(&w->listeners[i]);
		if (w->relay_ready) {
			relay_close_all(&w->relay, "stopped");
			w->ending = true;
			relay_end(&w->relay);
		}
		worker_close_core(w);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		uv_loop_close(&w->loop);
		w->loop_ready = false;
	}
	if (w->relay_ready)
		relay_fini(&w->relay);
	tpin_log_batch_fini(&w->log);
	if (w->lock_ready)
		uv_mutex_destroy(&w->lock);
}

bool worker_listening(const struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->n_listeners; i++)
		if (!atomic_load(&w->listeners[i].up))
			return false;
	return true;
}

int worker_listener_fd(const struct worker *w, unsigned i)
{
	return i < w->n_listeners && atomic_load(&w->listeners[i].up) ? w->listeners[i].io.fd : -1;
}

void worker_describe(struct worker *w, struct tpin_strbuf *sb)
{
	relay_describe(&w->relay, sb);
}

uint64_t worker_queue_peak(const struct worker *w)
{
	return relay_queue_peak(&w->relay);
}
