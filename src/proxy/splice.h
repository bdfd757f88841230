/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_SPLICE_H
#define TPIN_PROXY_SPLICE_H

/*
 * The splice path of a flow: splice(2) through a pipe of its own. Returns
 * like copy.h's functions; SPLICE_F_MORE stands for MSG_MORE.
 */

#include <stdbool.h>
#include <stddef.h>

#include "flow-state.h"

/*
 * Move @f to the splice path: take a pipe. Returns false (and the flow goes
 * on copying, for good) when no pipe can be had.
 */
bool splice_begin(struct flow *f, struct flow_ctx *ctx);

/* Write the pipe to @f->to while it takes it. */
int splice_flush(struct flow *f, bool last, size_t *moved);

/* Read @f->from into the pipe and on to @f->to. */
int splice_move(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to);

/* Give the pipe back: to the pool when empty, closed otherwise. */
void splice_end(struct flow *f, struct flow_ctx *ctx);

#endif
