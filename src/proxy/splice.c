// SPDX-License-Identifier: MIT
/*
 * The splice path of a flow: once a read filled the whole buffer (bulk
 * data), bytes move from socket to pipe to socket with splice(2) and are
 * never copied through user space. The pipe is the flow's queue: the sender
 * is not read while it holds more than the limit, and the FIN is passed on
 * once it is empty.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "splice.h"

/*
 * A pipe from the worker's pool, or a new one big enough to be the queue:
 * what the copy path would queue (the limit and one read) must fit, else the
 * flow stays on the copy path. Returns 0 or -errno.
 */
static int pipe_get(struct flow_ctx *ctx, int p[2])
{
	size_t want = ctx->limit + ctx->buf_size;
	int fds[2], ret;

	if (ctx->n_pipes) {
		ctx->n_pipes--;
		p[0] = ctx->pipes[ctx->n_pipes][0];
		p[1] = ctx->pipes[ctx->n_pipes][1];
		return 0;
	}
	if (want > INT32_MAX)
		return -EINVAL;
	/* Into a local pair: a failed pipe2() may have written to it (valgrind's does). */
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (fds[1] >= atomic_load_explicit(ctx->fd_limit, memory_order_relaxed))
		ret = -EMFILE;
	else if ((ret = fcntl(fds[1], F_SETPIPE_SZ, (int)want)) < 0)
		ret = -errno;
	else if ((size_t)ret < want)
		ret = -ENOSPC;
	else
		ret = 0;
	if (ret) {
		close(fds[0]);
		close(fds[1]);
		return ret;
	}
	p[0] = fds[0];
	p[1] = fds[1];
	return 0;
}

bool splice_begin(struct flow *f, struct flow_ctx *ctx)
{
	/*
	 * EMFILE, or the per-user pipe budget of an unprivileged proxy
	 * (fs.pipe-user-pages-soft): the flow goes on copying, for good.
	 */
	if (pipe_get(ctx, f->pipe)) {
		f->no_splice = true;
		return false;
	}
	return true;
}

void splice_end(struct flow *f, struct flow_ctx *ctx)
{
	if (f->pipe[0] < 0)
		return;
	/* A pipe with bytes left in it cannot serve another flow. */
	if (!f->queued && ctx->keep_pipes && ctx->n_pipes < ctx->max_pipes) {
		ctx->pipes[ctx->n_pipes][0] = f->pipe[0];
		ctx->pipes[ctx->n_pipes][1] = f->pipe[1];
		ctx->n_pipes++;
	} else {
		close(f->pipe[0]);
		close(f->pipe[1]);
	}
	f->pipe[0] = f->pipe[1] = -1;
}

int splice_flush(struct flow *f, bool last, size_t *moved)
{
	unsigned flags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE | (last ? SPLICE_F_MORE : 0);
	ssize_t r;

	while (f->queued) {
		r = splice(f->pipe[0], NULL, f->to->io.fd, NULL, f->queued, flags);
		if (r > 0) {
			f->queued -= (size_t)r;
			*moved += (size_t)r;
			f->stalled = false;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			f->to->writable = false;
			return 0;
		}
		return r < 0 ? -errno : -EPIPE;
	}
	return 0;
}

/* Whether @fd's next byte is the urgent mark; errno is left as it was. */
static bool at_mark(int fd)
{
	int mark = 0, saved = errno;
	bool at = !ioctl(fd, SIOCATMARK, &mark) && mark;

	errno = saved;
	return at;
}

/*
 * splice(2) from a TCP socket stops at the urgent mark (MSG_OOB) while the
 * bytes past it wait: it says EAGAIN there for as long as the mark stands,
 * or 0 once the peer's FIN is in (tcp_splice_read() stops on RCV_SHUTDOWN),
 * which is no end of stream. A plain recv() steps over the mark; like the
 * copy path's read it drops the urgent byte (no SO_OOBINLINE) and returns
 * what follows. Those bytes go into the pipe with write(2): only into an
 * empty pipe, whose size (at least one read, see pipe_get()) takes a whole
 * read in free page slots; until the pipe is empty this says EAGAIN. The
 * caller has checked that the socket is at the mark. Returns like splice(2).
 */
static ssize_t splice_urgent(struct flow *f, struct flow_ctx *ctx)
{
	ssize_t r, w;

	if (f->queued) {
		errno = EAGAIN;
		return -1;
	}
	r = recv(f->from->io.fd, ctx->buf, ctx->buf_size, 0);
	if (r <= 0)
		return r;
	/* Past the mark: splice(2) works again. */
	f->from->urgent = false;
	w = write(f->pipe[1], ctx->buf, (size_t)r);
	if (w == r)
		return r;
	/* Cannot happen with an empty pipe of this size; never lose bytes quietly. */
	errno = w < 0 ? errno : EIO;
	return -1;
}

int splice_move(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to)
{
	struct side *from = f->from;
	unsigned rounds;
	ssize_t r;
	int ret;

	for (rounds = 0; rounds < FLOW_ROUNDS; rounds++) {
		if (f->queued > ctx->limit)
			return 0;
		r = splice(from->io.fd, NULL, f->pipe[1], NULL, ctx->buf_size,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		/*
		 * At the urgent mark splice(2) says EAGAIN, or 0 if the FIN is
		 * in: 0 is the end of the stream only away from the mark.
		 */
		if (((r < 0 && errno == EAGAIN && from->urgent) || r == 0) && at_mark(from->io.fd))
			r = splice_urgent(f, ctx);
		if (r > 0) {
			f->queued += (size_t)r;
			flow_note_queued(f, ctx);
			if (f->to->writable) {
				ret = splice_flush(f, false, moved);
				if (ret) {
					*at_to = true;
					return ret;
				}
			}
			continue;
		}
		if (r == 0) {
			f->eof = true;
			from->readable = false;
			ret = f->to->writable ? splice_flush(f, true, moved) : 0;
			*at_to = true;
			return ret;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/*
			 * Nothing moved: the socket is empty, or the pipe is out
			 * of page slots (small segments take a slot each). With
			 * bytes in the pipe the two cannot be told apart: try
			 * again once the receiving side took some.
			 */
			if (f->queued)
				f->stalled = true;
			else
				from->readable = false;
			return 0;
		}
		*at_to = false;
		return -errno;
	}
	return FLOW_MORE;
}
