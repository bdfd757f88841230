// SPDX-License-Identifier: MIT
/*
 * flow_run(), the one entry point of a flow: first what waits for the
 * receiving side, then what the sending side has. See flow.h.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "copy.h"
#include "flow.h"
#include "splice.h"

void flow_init(struct flow *f, struct side *from, struct side *to)
{
	memset(f, 0, sizeof(*f));
	f->from = from;
	f->to = to;
	f->tail = &f->head;
	f->pipe[0] = f->pipe[1] = -1;
}

bool flow_pending(const struct flow *f)
{
	return f->queued != 0;
}

int flow_run(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to)
{
	bool spliced = f->pipe[0] >= 0;
	/*
	 * The last bytes wait in the kernel for the FIN the session sends next
	 * (copy.c, splice.c); after the sender's reset no FIN comes, and held
	 * bytes would leave only with a later ACK, if one came.
	 */
	bool last = f->eof && !f->from->error;
	int ret;

	if (f->queued && f->to->writable) {
		ret = spliced ? splice_flush(f, last, moved) : copy_flush(f, last, moved);
		if (ret) {
			*at_to = true;
			return ret;
		}
	}
	/* Half the limit: hysteresis, so a busy pair does not flap. */
	if (f->throttled && f->queued <= ctx->limit / 2)
		f->throttled = false;
	if (!f->eof && !f->throttled && f->from->readable && !f->stalled) {
		ret = spliced ? splice_move(f, ctx, moved, at_to) : copy_move(f, ctx, moved, at_to);
		/* Bulk data: from now on splice(2) moves it, if a pipe can be had. */
		if (ret == FLOW_FULL && splice_begin(f, ctx))
			ret = splice_move(f, ctx, moved, at_to);
		else if (ret == FLOW_FULL)
			ret = FLOW_MORE;
		if (ret < 0)
			return ret;
		if (f->queued > ctx->limit)
			f->throttled = true;
		if (ret == FLOW_MORE && !f->throttled)
			return FLOW_MORE;
	}
	return f->eof && !f->queued ? FLOW_DONE : 0;
}

int flow_push(struct flow *f, const void *data, size_t len)
{
	struct chunk *c = malloc(sizeof(*c) + len);

	if (!c)
		return -ENOMEM;
	c->len = len;
	c->off = 0;
	memcpy(c->data, data, len);
	/* Ahead of everything: it is only ever pushed before the first byte. */
	c->next = f->head;
	if (!f->head)
		f->tail = &c->next;
	f->head = c;
	f->queued += len;
	return 0;
}

int flow_discard(struct flow *f, struct flow_ctx *ctx)
{
	/* As many reads per turn as a copying flow gets, so others get theirs. */
	for (unsigned rounds = 0; rounds < FLOW_ROUNDS; rounds++) {
		ssize_t n;

		if (f->eof || !f->from->readable)
			return 0;
		n = recv(f->from->io.fd, ctx->buf, ctx->buf_size, 0);
		if (n > 0)
			continue;
		if (n == 0) {
			f->eof = true;
			f->from->readable = false;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			f->from->readable = false;
			return 0;
		}
		return -errno;
	}
	return FLOW_MORE;
}

void flow_free(struct flow *f, struct flow_ctx *ctx)
{
	copy_drop(f);
	splice_end(f, ctx);
	f->queued = 0;
}

void flow_ctx_fini(struct flow_ctx *ctx)
{
	while (ctx->n_pipes) {
		ctx->n_pipes--;
		close(ctx->pipes[ctx->n_pipes][0]);
		close(ctx->pipes[ctx->n_pipes][1]);
	}
}
