// SPDX-License-Identifier: MIT
/*
 * The copy path of a flow: read into the worker's one buffer, send at once,
 * and copy only what the receiving socket would not take. An idle or fast
 * connection holds no buffer at all.
 */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "copy.h"

/* Chunks written with one sendmsg(2). */
#define IOV_BATCH 64

/* MSG_MORE: the last bytes wait in the kernel for the FIN the caller sends next. */
static int send_flags(bool last)
{
	return MSG_NOSIGNAL | (last ? MSG_MORE : 0);
}

static int queue(struct flow *f, const char *data, size_t len)
{
	struct chunk *c = malloc(sizeof(*c) + len);

	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = len;
	c->off = 0;
	memcpy(c->data, data, len);
	*f->tail = c;
	f->tail = &c->next;
	f->queued += len;
	return 0;
}

int copy_flush(struct flow *f, bool last, size_t *moved)
{
	struct iovec iov[IOV_BATCH];
	struct msghdr msg = { .msg_iov = iov };
	struct chunk *c;
	size_t i, batch;
	ssize_t n;

	while (f->head) {
		batch = 0;
		for (i = 0, c = f->head; c && i < IOV_BATCH; c = c->next, i++) {
			iov[i].iov_base = c->data + c->off;
			iov[i].iov_len = c->len - c->off;
			batch += iov[i].iov_len;
		}
		msg.msg_iovlen = i;
		n = sendmsg(f->to->io.fd, &msg, send_flags(last && !c));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				f->to->writable = false;
				return 0;
			}
			return -errno;
		}
		*moved += (size_t)n;
		f->queued -= (size_t)n;
		if ((size_t)n < batch) {
			/*
			 * A short write: the socket is full, and says so with an
			 * EPOLLOUT edge once it has room again.
			 */
			f->to->writable = false;
		}
		while ((c = f->head) && (size_t)n >= c->len - c->off) {
			n -= (ssize_t)(c->len - c->off);
			f->head = c->next;
			free(c);
		}
		if (!f->head) {
			f->tail = &f->head;
			return 0;
		}
		f->head->off += (size_t)n;
		/*
		 * The whole batch went and more waits: nothing says the socket
		 * is full (no EAGAIN, so no EPOLLOUT edge will come), write on.
		 */
		if (!f->to->writable)
			return 0;
	}
	return 0;
}

/* Send @len bytes read just now; what does not go at once is copied and queued. */
static int send_or_queue(struct flow *f, const char *data, size_t len, bool last, size_t *moved)
{
	ssize_t n;

	if (!f->head && f->to->writable) {
		do
			n = send(f->to->io.fd, data, len, send_flags(last));
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n > 0) {
			*moved += (size_t)n;
			data += n;
			len -= (size_t)n;
		}
		if (len)
			f->to->writable = false;
	}
	return len ? queue(f, data, len) : 0;
}

int copy_move(struct flow *f, struct flow_ctx *ctx, size_t *moved, bool *at_to)
{
	struct side *from = f->from;
	unsigned rounds;
	ssize_t n;
	int ret;

	for (rounds = 0; rounds < FLOW_ROUNDS; rounds++) {
		if (f->queued > ctx->limit)
			return 0;
		n = recv(from->io.fd, ctx->buf, ctx->buf_size, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				from->readable = false;
				from->urgent = false;
				return 0;
			}
			*at_to = false;
			return -errno;
		}
		if (n == 0) {
			f->eof = true;
			from->readable = false;
			return 0;
		}
		/*
		 * A short read emptied the socket, unless it stopped at an urgent
		 * mark (the byte at the mark is dropped, as without
		 * SO_OOBINLINE; reading on steps over it). After the peer's FIN
		 * (EPOLLRDHUP) every byte before it is already here, so a short
		 * read is the end: the data and the FIN can leave together.
		 */
		if ((size_t)n < ctx->buf_size && !from->urgent && !from->error) {
			from->readable = false;
			f->eof = from->rdhup;
		}
		ret = send_or_queue(f, ctx->buf, (size_t)n, f->eof, moved);
		if (ret) {
			*at_to = true;
			return ret;
		}
		flow_note_queued(f, ctx);
		if (!from->readable || f->eof)
			return 0;
		if (!f->queued && !f->no_splice && !from->error)
			return FLOW_FULL;
	}
	return FLOW_MORE;
}

void copy_drop(struct flow *f)
{
	struct chunk *c;

	while ((c = f->head)) {
		f->head = c->next;
		free(c);
	}
	f->tail = &f->head;
}
