/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_FLOW_STATE_H
#define TPIN_PROXY_FLOW_STATE_H

/*
 * The state of a flow (flow.h), shared by the two ways it moves bytes:
 * copy.c and splice.c, which flow.c chooses between.
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
	bool error;    /* failed (EPOLLERR, a reset): read on to the error, past short reads */
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

/* How many reads one run makes before it yields to other connections. */
#define FLOW_ROUNDS 16
/*
 * What copy_move() and splice_move() return besides 0 and -errno: FLOW_MORE
 * (flow.h), or FLOW_FULL: a read filled the whole buffer and nothing waits,
 * the sign of bulk data, worth the move to splice(2).
 */
#define FLOW_FULL 4

/* Note @f's queue size in the worker's peak. */
static inline void flow_note_queued(const struct flow *f, struct flow_ctx *ctx)
{
	if (f->queued > ctx->peak)
		ctx->peak = f->queued;
}

#endif
