/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_FLOW_H
#define TPIN_PROXY_FLOW_H

/*
 * One direction of a relayed connection: the bytes that one socket sends,
 * on their way to the other. A connection is two flows over two sides.
 *
 * A flow copies through user space (copy.c) until a read fills the whole
 * shared buffer, which marks it as bulk; then it moves bytes with splice(2)
 * through a pipe of its own (splice.c) and never copies again. Either way
 * what the receiving side would not take at once waits in the flow (a queue
 * of copies, or the pipe), and the sending side is not read while more than
 * the queue limit waits: memory per connection stays bounded and TCP's flow
 * control pushes back on the sender.
 *
 * The flow knows nothing of sessions: it reports what happened and the
 * session decides (session.c).
 */

#include "flow-state.h"

/* flow_init - an empty flow from @from to @to. */
void flow_init(struct flow *f, struct side *from, struct side *to);

/*
 * flow_run - write what waits for @f->to while it takes it, then read what
 * @f->from has while under the limit, sending at once what the socket takes.
 * Adds the bytes written to @f->to to *@moved. Returns FLOW_* bits, or a
 * negative errno with *@at_to telling whether writing to @f->to (true) or
 * reading from @f->from (false) failed: -ECONNRESET is a reset by that
 * side's peer, -ENOMEM a copy that could not be made.
 */
int flow_run(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to);

/* flow_pending - whether bytes still wait in @f (queue or pipe). */
bool flow_pending(const struct flow *f);

/*
 * flow_push - queue @len bytes of @data ahead of anything @f->from sends
 * (the PROXY protocol header). Returns 0 or -ENOMEM.
 */
int flow_push(struct flow *f, const void *data, size_t len);

/*
 * flow_discard - read what @f->from sends and drop it: after @f->to failed,
 * a sender kept waiting would stop reading what is still delivered to it
 * (an echoing app blocks on its write), and the session would wait for
 * bytes that never drain. Returns 0 once @f->from has nothing more for now,
 * FLOW_MORE to let other connections run first, or a negative errno.
 */
int flow_discard(struct flow *f, struct flow_ctx *ctx);

/* flow_free - drop what waits and give back the pipe (empty ones are kept). */
void flow_free(struct flow *f, struct flow_ctx *ctx);

/* flow_ctx_fini - close the kept pipes. */
void flow_ctx_fini(struct flow_ctx *ctx);

#endif
