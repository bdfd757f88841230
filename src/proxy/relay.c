// SPDX-License-Identifier: MIT
/*
 * Whether an accepted connection may be relayed. relay_accept() learns
 * where the client was going and refuses, with a reset the client hears at
 * once, what must not be relayed: past the descriptor reserve, past the
 * connection caps, back into the proxy itself, or, coming in, to an address
 * that is not the pod's own. The rest goes to a session (session.c).
 *
 * Inbound and outbound connections differ only here and in where the
 * upstream goes (upstream.c): an inbound one comes from the network to the
 * pod's own address, an outbound one from the app to anywhere else. The
 * per-source cap is for the network's clients; the app is one source that
 * may use every place.
 */

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "relay.h"
#include "sources.h"
#include "tpin/log.h"
#include "tpin/proxy-hooks.h"
#include "tpin/proxy-options.h"
#include "tpin/sock.h"

/* Whether @port on @addr is one of the proxy's own: a connection there would come back. */
static bool is_loop(struct relay *r, const struct sockaddr *addr, uint16_t port)
{
	const struct relay_config *cfg = r->cfg;

	if (port != cfg->capture_port && port != cfg->opt->admin_port &&
	    (!cfg->outbound_port || port != cfg->outbound_port) && port != TPIN_HEALTH_PORT)
		return false;
	return localaddr_has(&r->local, addr);
}

void relay_accept(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len,
		  bool outbound)
{
	const struct tpin_proxy_options *opt = r->cfg->opt;
	const struct tpin_proxy_hooks *h = r->cfg->hooks;
	struct sockaddr_storage ss;
	uint32_t max = opt->max_connections;
	struct session *s;
	int ret;

	if (h && atomic_load_explicit(&h->fail_alloc, memory_order_relaxed))
		s = NULL;
	else
		s = session_new(&r->env, fd, peer, peer_len, outbound);
	if (!s) {
		/* The client hears at once, and the listener goes on. */
		tpin_sock_close_reset(fd);
		tpin_log_event(opt->log, "out of memory: connection reset");
		return;
	}
	if (h && h->original_dst.ss_family) {
		memcpy(&s->orig, &h->original_dst, sizeof(s->orig));
	} else {
		/* The local address is the original destination in TPROXY mode. */
		ret = tpin_sock_original_dst(fd, outbound ? opt->outbound_mode : opt->mode, &ss);
		if (ret) {
			session_fail_client(s, "original_dst", ret);
			return;
		}
		memcpy(&s->orig, &ss, sizeof(s->orig));
	}
	s->port = tpin_sockaddr_port(&s->orig.sa);

	if (fd >= atomic_load_explicit(r->cfg->fd_limit, memory_order_relaxed)) {
		session_refuse(s, TPIN_REFUSED_DESCRIPTORS, "refused_no_descriptors");
		return;
	}
	/* Counted only when added: the session takes back what was added. */
	if (max) {
		s->counted = true;
		if (atomic_fetch_add(r->cfg->live, 1) >= max) {
			session_refuse(s, TPIN_REFUSED_LIMIT, "refused_limit");
			return;
		}
	}
	/* One source must not take every place: room stays for the others. */
	ret = outbound ? 0 : sources_take(r->cfg->sources, &s->peer.sa, &s->orig.sa);
	if (ret == -EDQUOT) {
		session_refuse(s, TPIN_REFUSED_SOURCE, "refused_source_limit");
		return;
	}
	if (ret) {
		session_fail_client(s, "accept", ret);
		return;
	}
	s->sourced = !outbound;
	/* A connection to the proxy's own ports would come straight back here. */
	if (is_loop(r, &s->orig.sa, s->port)) {
		session_refuse(s, TPIN_REFUSED_LOOP, "refused_loop");
		return;
	}
	/*
	 * Only the pod's own addresses are the pod's to serve: relaying
	 * anywhere else would make the pod an open relay for whoever routes
	 * through it. The rules intercept only local destinations; this holds
	 * even when a rule says otherwise. Tests that fix the destination skip it.
	 */
	if (!outbound && !(h && h->original_dst.ss_family) &&
	    !localaddr_has(&r->local, &s->orig.sa)) {
		session_refuse(s, TPIN_REFUSED_NOT_LOCAL, "refused_not_local");
		return;
	}
	session_start(s);
}

void relay_limits_refresh(const struct relay_config *cfg)
{
	struct rlimit rl;
	int limit = INT32_MAX;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)INT32_MAX)
		limit = (int)rl.rlim_cur;
	limit = limit > RELAY_FD_RESERVE ? limit - RELAY_FD_RESERVE : 0;
	atomic_store_explicit(cfg->fd_limit, limit, memory_order_relaxed);
}

int relay_init(struct relay *r, const struct relay_config *cfg, uv_loop_t *loop, struct evset *set,
	       struct tpin_metrics_shard *m, struct tpin_log_batch *log,
	       void (*on_empty)(void *arg), void *arg)
{
	struct session_env *env = &r->env;
	int ret;

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	env->opt = cfg->opt;
	env->loop = loop;
	env->set = set;
	env->m = m;
	env->log = log;
	env->sources = cfg->sources;
	env->port_cursor = cfg->port_cursor;
	env->live = cfg->live;
	env->on_empty = on_empty;
	env->arg = arg;
	ret = session_env_init(env, cfg->opt->queue_limit, cfg->fd_limit);
	if (ret)
		return ret;
	ret = localaddr_init(&r->local, set);
	if (ret)
		session_env_fini(env);
	return ret;
}

void relay_close_all(struct relay *r, const char *why)
{
	session_close_all(&r->env, why);
}

void relay_end(struct relay *r)
{
	struct session_env *env = &r->env;

	if (env->ending)
		return;
	env->ending = true;
	env->fx.keep_pipes = false;
	localaddr_stop(&r->local);
	if (!env->n && env->on_empty)
		env->on_empty(env->arg);
}

void relay_describe(struct relay *r, struct tpin_strbuf *sb)
{
	session_describe(&r->env, sb);
}

uint64_t relay_queue_peak(const struct relay *r)
{
	return atomic_load(&r->env.queue_peak);
}

void relay_fini(struct relay *r)
{
	localaddr_fini(&r->local);
	session_env_fini(&r->env);
}
