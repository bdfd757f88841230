/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_SOURCES_H
#define TPIN_PROXY_SOURCES_H

/*
 * What each client source holds now, over every worker: so that one source
 * (an IPv4 address, or an IPv6 /64, which one host can fill with addresses
 * of its own) cannot take every connection the proxy can hold. Any thread;
 * the table is split in stripes, each under its own lock, so two workers
 * rarely wait for each other.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct sources;

/*
 * sources_new - a table allowing @max connections per source (0: any
 * number). Returns 0 or -ENOMEM.
 */
int sources_new(struct sources **out, uint32_t max);

void sources_free(struct sources *s);

/*
 * sources_take - count one more connection from @peer. Returns 0, -EDQUOT
 * when its source holds its share already (nothing is counted then), or
 * -ENOMEM.
 */
int sources_take(struct sources *s, const struct sockaddr *peer);

/* sources_give - one connection from @peer taken with sources_take() ended. */
void sources_give(struct sources *s, const struct sockaddr *peer);

#endif
