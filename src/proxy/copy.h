/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_COPY_H
#define TPIN_PROXY_COPY_H

/*
 * The copy path of a flow: through the worker's buffer. Each returns 0, a
 * FLOW_* bit, or a negative errno with *at_to saying which side failed;
 * @last asks for the last bytes to wait for the FIN (MSG_MORE) that the
 * caller sends next.
 */

#include <stdbool.h>
#include <stddef.h>

#include "flow-state.h"

/* Write the queue to @f->to while it takes it. */
int copy_flush(struct flow *f, bool last, size_t *moved);

/*
 * Read @f->from into the shared buffer and send it, queueing what does not
 * fit. FLOW_FULL: a read filled the buffer with nothing queued (bulk).
 */
int copy_move(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to);

/* Drop the queue. */
void copy_drop(struct flow *f);

#endif
