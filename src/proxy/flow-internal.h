/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_FLOW_INTERNAL_H
#define TPIN_PROXY_FLOW_INTERNAL_H

/*
 * The two ways a flow moves bytes, behind flow_run() (flow.c): copying
 * through the worker's buffer (copy.c) and splice(2) through a pipe
 * (splice.c). Each returns like flow_run(): 0 or a negative errno, with
 * *at_to saying which side failed; @last asks for the last bytes to wait
 * for the FIN (MSG_MORE, SPLICE_F_MORE) that the caller sends next.
 */

#include <stdbool.h>
#include <stddef.h>

#include "flow.h"

/* How many reads one run makes before it yields to other connections. */
#define FLOW_ROUNDS 16

/* Write the queue to @f->to while it takes it. */
int copy_flush(struct flow *f, bool last, size_t *moved);

/* Read @f->from into the shared buffer and send it, queueing what does not fit. */
int copy_move(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to);

/* Drop the queue. */
void copy_drop(struct flow *f);

/*
 * Move @f to the splice path: take a pipe. Returns false (and the flow goes
 * on copying) when no pipe can be had.
 */
bool splice_begin(struct flow *f, struct flow_ctx *ctx);

/* Write the pipe to @f->to while it takes it. */
int splice_flush(struct flow *f, bool last, size_t *moved);

/* Read @f->from into the pipe and on to @f->to. */
int splice_move(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to);

/* Give the pipe back: to the pool when empty, closed otherwise. */
void splice_end(struct flow *f, struct flow_ctx *ctx);

/* Note @f's queue size in the worker's peak. */
static inline void flow_note_queued(const struct flow *f, struct flow_ctx *ctx)
{
	if (f->queued > ctx->peak)
		ctx->peak = f->queued;
}

#endif
