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
 * session decides (relay.c).
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evset.h"

/* One socket of a connection, with what its edge-triggered events told. */
struct side {
	struct io io;  /* io.fd is -1 once closed */
	bool readable; /* input may wait: no EAGAIN since the last EPOLLIN */
	bool writable; /* room to send: no EAGAIN since the last EPOLLOUT */
	bool rdhup;    /* the peer's FIN has arrived (EPOLLRDHUP) */
	bool urgent;   /* urgent data arrived (EPOLLPRI): a short read may stop at its mark */
};

/* Bytes the receiving side would not take at once: a copy, sent later. */
struct chunk {
	struct chunk *next;
	size_t len, off;
	char data[];
};

struct flow {
	struct side *from, *to;
	struct chunk *head, **tail;	/* copy path: read, not yet written */
	size_t queued;			/* bytes waiting: in the queue or in the pipe */
	int pipe[2];			/* the splice path's pipe; -1 while copying */
	atomic_uint_fast64_t delivered; /* bytes written to @to; read by the admin thread */
	bool eof;			/* @from's FIN was read: nothing more comes */
	bool throttled;			/* @from is not read until the queue drains */
	bool no_splice;			/* splice(2) failed here once: copy only */
	bool stalled;			/* the pipe is out of page slots */
};

/* What every flow of one worker shares. */
struct flow_ctx {
	char *buf;	 /* one read's worth, reused by every read of the worker */
	size_t buf_size; /* a read that fills it marks its flow as bulk */
	size_t limit;	 /* bytes waiting before the sender is not read */
	int (*pipes)[2]; /* empty pipes kept for the next bulk flows */
	unsigned n_pipes, max_pipes;
	bool keep_pipes;      /* false while the worker ends: pipes are closed */
	atomic_int *fd_limit; /* pipes take no descriptor from the reserve (relay.h) */
	uint64_t peak;	      /* the most bytes that ever waited in one flow */
};

/* flow_init - an empty flow from @from to @to. */
void flow_init(struct flow *f, struct side *from, struct side *to);

/*
 * What flow_run() found, as bits (a negative value is an error):
 * FLOW_MORE: it stopped with input left, to let other connections run:
 *	run it again soon (evset_defer()).
 * FLOW_DONE: @from's FIN was read and every byte reached @to's socket: pass
 *	the FIN on now, with shutdown(2) or close(2). The last bytes may wait
 *	for it in the kernel (sent with MSG_MORE), so that data and FIN leave
 *	in one segment as the sender sent them.
 */
#define FLOW_MORE 1
#define FLOW_DONE 2

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

/* flow_free - drop what waits and give back the pipe (empty ones are kept). */
void flow_free(struct flow *f, struct flow_ctx *ctx);

/* flow_ctx_fini - close the kept pipes. */
void flow_ctx_fini(struct flow_ctx *ctx);

#endif
