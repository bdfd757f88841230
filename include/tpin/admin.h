/* SPDX-License-Identifier: MIT */
#ifndef TPIN_ADMIN_H
#define TPIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tpin_err;

/*
 * The admin endpoint on 127.0.0.1: /metrics (Prometheus text), /ready,
 * /connections; and /healthz/ready on the health port for kubelet probes.
 * It runs on the caller's loop, apart from the relaying loops.
 */
struct tpin_admin;
struct tpin_proxy;

struct tpin_admin_options {
	uint16_t port;	      /* 15000; 0 picks a free port: tests */
	uint16_t health_port; /* 15021; 0 picks a free port, and with no_health none */
	bool no_health;	      /* do not open the health port */
	/* Readiness requires "inet table_name" to exist; NULL skips the check. */
	const char *table_name;
};

/* tpin_admin_options_init - ports 15000 and 15021, table "tpin". */
void tpin_admin_options_init(struct tpin_admin_options *opt);

/*
 * tpin_admin_new - listen on 127.0.0.1. Returns 0, -ENOMEM, or the -errno of
 * the socket calls with a message in @err.
 */
int tpin_admin_new(struct tpin_admin **out, uv_loop_t *loop, struct tpin_proxy *proxy,
		   const struct tpin_admin_options *opt, struct tpin_err *err);

/* tpin_admin_port - the admin port; with @health the health port (0 if none). */
uint16_t tpin_admin_port(const struct tpin_admin *a, bool health);

/* tpin_admin_set_draining - readiness fails from now on. */
void tpin_admin_set_draining(struct tpin_admin *a);

/*
 * tpin_admin_close - stop listening and close open requests; the memory goes
 * when the loop has run their close callbacks. NULL is fine.
 */
void tpin_admin_close(struct tpin_admin *a);

#endif
