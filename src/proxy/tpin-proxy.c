// SPDX-License-Identifier: MIT
/*
 * tpin-proxy: receives what tpin-init diverts and relays it to the
 * application. This file is the process: the self-check, privileges and
 * signals; the command line is cli.c, the proxy itself proxy.c and friends.
 */

#include <cap-ng.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "tpin/err.h"
#include "tpin/admin.h"
#include "tpin/config.h"
#include "tpin/log.h"
#include "tpin/probe.h"
#include "tpin/proxy.h"
#include "cli.h"

#define EXIT_USAGE 2

/*
 * After the listeners are bound, become the --user keeping only
 * CAP_NET_ADMIN, which transparent upstream sockets and SO_MARK need.
 * libcap-ng keeps the capability across setuid and clears the bounding set.
 */
static int drop_privileges(const struct cli_settings *st, struct tpin_err *err)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN) ||
	    capng_change_id((int)st->uid, (int)st->gid,
			    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING)) {
		tpin_err_set(err, -EPERM, "cannot become user %s with CAP_NET_ADMIN: %s", st->user,
			     strerror(errno ? errno : EPERM));
		return -EPERM;
	}
	return 0;
}

struct runtime {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	uv_async_t finished;
	struct tpin_proxy *proxy;
	struct tpin_admin *admin;
	struct tpin_log *log;
	uint32_t drain_ms;
	bool max_auto, per_source_auto; /* derived from the descriptor limit at start */
};

static void on_proxy_finished(void *arg)
{
	struct runtime *rt = arg;

	uv_async_send(&rt->finished);
}

/* Every loop has ended: close what keeps the main loop running. */
static void on_finished(uv_async_t *a)
{
	struct runtime *rt = a->data;

	uv_close((uv_handle_t *)&rt->sigterm, NULL);
	uv_close((uv_handle_t *)&rt->sigint, NULL);
	uv_close((uv_handle_t *)&rt->sighup, NULL);
	uv_close((uv_handle_t *)&rt->finished, NULL);
	tpin_admin_close(rt->admin);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct runtime *rt = sig->data;

	switch (signum) {
	case SIGTERM:
		tpin_log_event(rt->log, "SIGTERM: draining for up to %u ms", rt->drain_ms);
		tpin_admin_set_draining(rt->admin);
		tpin_proxy_drain(rt->proxy, rt->drain_ms);
		break;
	case SIGINT:
		tpin_log_event(rt->log, "SIGINT: stopping");
		tpin_proxy_stop(rt->proxy);
		break;
	case SIGHUP:
		if (tpin_log_reopen(rt->log))
			tpin_log_event(rt->log, "SIGHUP: cannot reopen the log file");
		break;
	}
}

static int start_signal(struct runtime *rt, uv_signal_t *sig, int signum)
{
	sig->data = rt;
	return uv_signal_start(sig, on_signal, signum);
}

/* "auto" caps, from the descriptor limit as it is at start. */
static void resolve_caps(struct cli_settings *st)
{
	uint32_t max, per_source;

	tpin_proxy_default_caps(&max, &per_source);
	if (st->max_auto)
		st->proxy.max_connections = max;
	if (st->per_source_auto) {
		max = st->proxy.max_connections ? st->proxy.max_connections : max;
		st->proxy.max_per_source = max / 4 ? max / 4 : 1;
	}
}

static void self_check(const struct cli_settings *st, struct tpin_proxy *proxy)
{
	struct tpin_probe_cache cache = { 0 };
	bool ok = false;
	int ret;

	ret = tpin_proxy_transparent(proxy, &ok);
	printf("self-check: listener on :%u transparent: %s\n", tpin_proxy_port(proxy),
	       !ret && ok ? "ok" : "FAILED");
	ret = tpin_probe_ruleset(st->table_name, &cache);
	printf("self-check: nftables table inet %s as tpin-init installed it: %s\n", st->table_name,
	       ret == 0		? "ok"
	       : ret == -ENOENT ? "FAILED (missing)"
				: "FAILED (differs)");
	ret = tpin_probe_rule(AF_INET, st->mark, st->route_table);
	printf("self-check: IPv4 rule fwmark 0x%x lookup %u present: %s\n", st->mark,
	       st->route_table, ret == 0 ? "ok" : "FAILED");
	ret = tpin_probe_local_route(AF_INET, st->route_table);
	printf("self-check: IPv4 local default route in table %u present: %s\n", st->route_table,
	       ret == 0 ? "ok" : "FAILED");
	if (st->proxy.ipv6) {
		ret = tpin_probe_rule(AF_INET6, st->mark, st->route_table);
		printf("self-check: IPv6 rule fwmark 0x%x lookup %u present: %s\n", st->mark,
		       st->route_table, ret == 0 ? "ok" : "FAILED");
		ret = tpin_probe_local_route(AF_INET6, st->route_table);
		printf("self-check: IPv6 local default route in table %u present: %s\n",
		       st->route_table, ret == 0 ? "ok" : "FAILED");
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct runtime rt = { 0 };
	struct cli_settings st = { 0 };
	struct tpin_admin_options aopt;
	char keepalive[48] = "off";
	struct tpin_err err = { 0 };
	int ret, status = 1;

	tpin_proxy_options_init(&st.proxy);
	st.drain_ms = 45000;
	st.mark = TPIN_DEFAULT_MARK;
	st.route_table = TPIN_DEFAULT_ROUTE_TABLE;
	strcpy(st.table_name, TPIN_DEFAULT_TABLE_NAME);
	st.max_auto = st.per_source_auto = true;
	if (cli_parse(&st, argc, argv, &err)) {
		fprintf(stderr, "tpin-proxy: %s\n", err.msg);
		return EXIT_USAGE;
	}
	resolve_caps(&st);
	rt.drain_ms = st.drain_ms;
	/*
	 * libuv writes with write(), not send(MSG_NOSIGNAL): a write to a peer
	 * that has reset raises SIGPIPE, and by default that ends the process.
	 * An app killed mid-transfer must cost its connections, not the proxy.
	 */
	signal(SIGPIPE, SIG_IGN);

	ret = tpin_log_open(&rt.log, st.log_file, st.log_format);
	if (ret) {
		fprintf(stderr, "tpin-proxy: cannot open the log file %s: %s\n", st.log_file,
			strerror(-ret));
		return 1;
	}
	st.proxy.log = rt.log;
	st.proxy.on_finished = on_proxy_finished;
	st.proxy.on_finished_arg = &rt;
	ret = uv_loop_init(&rt.loop);
	if (ret) {
		fprintf(stderr, "tpin-proxy: cannot set up the event loop: %s\n", uv_strerror(ret));
		goto out_log;
	}
	ret = tpin_proxy_new(&rt.proxy, &st.proxy, &err);
	if (ret) {
		fprintf(stderr, "tpin-proxy: %s\n", err.msg);
		goto out_loop;
	}
	tpin_admin_options_init(&aopt);
	aopt.port = st.proxy.admin_port;
	aopt.table_name = st.table_name;
	ret = tpin_admin_new(&rt.admin, &rt.loop, rt.proxy, &aopt, &err);
	if (ret) {
		fprintf(stderr, "tpin-proxy: %s\n", err.msg);
		goto out_proxy;
	}
	self_check(&st, rt.proxy);
	if (st.user && drop_privileges(&st, &err)) {
		fprintf(stderr, "tpin-proxy: %s\n", err.msg);
		goto out_admin;
	}

	uv_async_init(&rt.loop, &rt.finished, on_finished);
	rt.finished.data = &rt;
	uv_signal_init(&rt.loop, &rt.sigterm);
	uv_signal_init(&rt.loop, &rt.sigint);
	uv_signal_init(&rt.loop, &rt.sighup);
	if (start_signal(&rt, &rt.sigterm, SIGTERM) || start_signal(&rt, &rt.sigint, SIGINT) ||
	    start_signal(&rt, &rt.sighup, SIGHUP)) {
		fprintf(stderr, "tpin-proxy: cannot catch signals\n");
		goto out_handles;
	}
	ret = tpin_proxy_start(rt.proxy);
	if (ret) {
		fprintf(stderr, "tpin-proxy: cannot start the event loops: %s\n", uv_strerror(ret));
		goto out_handles;
	}
	if (st.proxy.keepalive.idle_s)
		snprintf(keepalive, sizeof(keepalive), "%us,%us,%u", st.proxy.keepalive.idle_s,
			 st.proxy.keepalive.interval_s, st.proxy.keepalive.count);
	printf("limits: %u connections (%s), %u per source (%s); idle timeout %u s; keepalive %s\n",
	       st.proxy.max_connections,
	       st.max_auto ? "from the descriptor limit" : "--max-connections",
	       st.proxy.max_per_source,
	       st.per_source_auto ? "a quarter" : "--max-connections-per-source",
	       st.proxy.idle_timeout_ms / 1000, keepalive);
	printf("tpin-proxy: relaying from port %u (%s mode, %s upstream)",
	       tpin_proxy_port(rt.proxy), tpin_mode_name(st.proxy.mode),
	       st.proxy.upstream == TPIN_UPSTREAM_LOCALHOST ? "localhost" : "original");
	if (tpin_proxy_outbound_port(rt.proxy))
		printf(" and outbound from port %u (%s mode)", tpin_proxy_outbound_port(rt.proxy),
		       tpin_mode_name(st.proxy.outbound_mode));
	printf("\n");
	fflush(stdout);
	uv_run(&rt.loop, UV_RUN_DEFAULT);
	status = tpin_proxy_wait(rt.proxy) ? 1 : 0;
	rt.admin = NULL; /* closed by on_finished */
	goto out_proxy;

out_handles:
	/* Nothing ran yet: close the main loop's handles and let them finish. */
	uv_close((uv_handle_t *)&rt.finished, NULL);
	uv_close((uv_handle_t *)&rt.sigterm, NULL);
	uv_close((uv_handle_t *)&rt.sigint, NULL);
	uv_close((uv_handle_t *)&rt.sighup, NULL);
out_admin:
	tpin_admin_close(rt.admin);
	rt.admin = NULL;
out_proxy:
	uv_run(&rt.loop, UV_RUN_DEFAULT);
	tpin_proxy_free(rt.proxy);
out_loop:
	uv_loop_close(&rt.loop);
out_log:
	tpin_log_close(rt.log);
	return status;
}
