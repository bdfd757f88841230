// SPDX-License-Identifier: MIT
/*
 * One session per accepted connection: the client handle and the upstream
 * handle live inside it, bytes move both ways with backpressure, a FIN is
 * carried across with uv_shutdown, and the memory goes back only in the last
 * close callback.
 *
 * A session is what an idle connection costs, so it holds only what is
 * needed to relay: one address per side (the client's and the original
 * destination; the upstream address follows from the latter), no strings.
 * Text is made only for the access log line and the admin listing.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy-internal.h"
#include "tpin/log.h"
#include "tpin/metrics.h"
#include "tpin/sock.h"

/* One read's worth: big enough for bulk; one per worker, not per session. */
#define CHUNK_SIZE RELAY_BUF_SIZE
/* How often the connect is retried when the kernel reuses the client's port. */
#define PRESERVE_RETRIES 4

enum session_state {
	STATE_CONNECTING,
	STATE_RELAYING,
	STATE_HALF_CLOSED,
	STATE_CLOSING,
};

static const char *const state_names[] = {
	[STATE_CONNECTING] = "connecting",
	[STATE_RELAYING] = "relaying",
	[STATE_HALF_CLOSED] = "half-closed",
	[STATE_CLOSING] = "closing",
};

union inaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct side {
	uv_tcp_t tcp;
	struct session *s;
	atomic_uint_fast64_t bytes; /* delivered to the peer; read by the admin thread */
	uint32_t writes;	    /* write requests whose callback has not run */
	bool is_client : 1;
	bool open : 1;	    /* initialized and not yet given to uv_close */
	bool eof : 1;	    /* this side sent its FIN */
	bool shut : 1;	    /* our FIN to this side has been sent */
	bool throttled : 1; /* not read while the peer's queue is full */
};

struct session {
	struct side client;
	struct side upstream;
	struct worker *w;
	struct session *prev, *next; /* the worker's list; next is the freelist's link too */
	/* The connect request is done before the first shutdown can start. */
	union {
		uv_connect_t connect;
		uv_shutdown_t shutdown[2]; /* toward the client, toward the upstream */
	} req;
	uv_timer_t timer;   /* the connect timeout, then the idle timeout */
	struct spliced *sp; /* the splice path's state, once the session moved to it */
	uint64_t started_ms;
	uint64_t last_active_ms;
	union inaddr peer; /* the client */
	union inaddr orig; /* the original destination; sa_family 0 until known */
	/*
	 * How the session ended: a fixed word, or with what set
	 * "<result>_<what>:<uv_err_name(status)>", made only when logged.
	 */
	const char *result;
	const char *what;
	int status;
	atomic_int state;
	uint16_t port;	 /* the original destination port, for metrics */
	uint8_t handles; /* handles not yet closed; the last close frees */
	uint8_t attempts;
	bool timer_open : 1;
	bool closing : 1;
	bool connected : 1;
	bool counted : 1;	 /* holds a place under --max-connections */
	bool listed : 1;	 /* on the worker's session list */
	bool header_pending : 1; /* the PROXY header's write has not called back */
	bool no_splice : 1;	 /* splice(2) failed here once: copy only */
	/* An upstream address was chosen (else "-"); not a bit field: the admin thread reads it. */
	bool chosen;
};

/*
 * What the other side would not take at once: a copy of just those bytes,
 * and the write request that carries them. Reads go into the worker's one
 * shared buffer, so an idle or fast connection holds no buffer at all.
 */
struct chunk {
	uv_write_t req;
	size_t len;
	char data[];
};

enum {
	RESET_CLIENT = 1,
	RESET_UPSTREAM = 2,
};

/* Sessions kept for reuse per worker: enough for bursts of new connections. */
#define FREELIST_MAX 256

/*
 * The splice path. A session that carries bulk data (a read filled the whole
 * shared buffer) moves its bytes with splice(2) through a pipe per direction
 * instead of copying them through user space. libuv lets no second watcher
 * onto a socket its stream handle owns, so the session takes the sockets
 * over: it dups both descriptors, closes the stream handles and drives the
 * dups with uv_poll_t. The pipe is the queue toward the other side: a side
 * is not read while its pipe holds more than the queue limit, its FIN is
 * passed on (shutdown) once its pipe is empty, and a reset closes with
 * SO_LINGER 0 as on the copy path.
 */
struct spliced {
	uv_poll_t poll[2]; /* [0] the client, [1] the upstream */
	int fd[2];	   /* the dups the polls watch; closed after them */
	int pipe[2][2];	   /* [d]: what side d sends */
	size_t n[2];	   /* bytes in pipe[d] */
	int events[2];	   /* what poll[i] waits for now */
	bool poll_open[2];
	/* Side d was readable but pipe[d] took nothing: full by its page slots. */
	bool stalled[2];
};

static void upstream_connect(struct session *s);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static bool splice_start(struct session *s, struct side *from);
static void splice_free(struct session *s);

static const struct tpin_proxy_options *options(const struct session *s)
{
	return &s->w->p->opt;
}

static struct side *peer_of(struct side *side)
{
	struct session *s = side->s;

	return side->is_client ? &s->upstream : &s->client;
}

static const char *side_name(const struct side *side)
{
	return side->is_client ? "client" : "upstream";
}

/* The direction of what is read from @side. */
static enum tpin_direction side_dir(const struct side *side)
{
	return side->is_client ? TPIN_DIR_UPSTREAM : TPIN_DIR_DOWNSTREAM;
}

static uv_shutdown_t *shutdown_req(struct side *side)
{
	return &side->s->req.shutdown[side->is_client ? 0 : 1];
}

atomic_bool tpin_relay_fail_alloc;

static struct session *session_alloc(struct worker *w)
{
	struct session *s = w->free_sessions;

	if (atomic_load_explicit(&tpin_relay_fail_alloc, memory_order_relaxed))
		return NULL;
	if (!s)
		return calloc(1, sizeof(*s));
	w->free_sessions = s->next;
	w->n_free--;
	memset(s, 0, sizeof(*s));
	return s;
}

void relay_free_sessions(struct worker *w)
{
	struct session *s;

	while ((s = w->free_sessions)) {
		w->free_sessions = s->next;
		free(s);
	}
	w->n_free = 0;
}

/* Where the session connects: the original destination or loopback at its port. */
static void upstream_addr(const struct session *s, union inaddr *a)
{
	*a = s->orig;
	if (options(s)->upstream != TPIN_UPSTREAM_LOCALHOST)
		return;
	if (a->sa.sa_family == AF_INET)
		a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		a->sin6.sin6_addr = in6addr_loopback;
}

/* The session's three addresses as text; "-" for what is not known. */
static void session_addrs(const struct session *s, char *peer, char *orig, char *up)
{
	union inaddr a;

	tpin_sockaddr_format(&s->peer.sa, peer, TPIN_SOCKADDR_STRLEN);
	tpin_sockaddr_format(&s->orig.sa, orig, TPIN_SOCKADDR_STRLEN);
	if (s->chosen) {
		upstream_addr(s, &a);
		tpin_sockaddr_format(&a.sa, up, TPIN_SOCKADDR_STRLEN);
	} else {
		strcpy(up, "-");
	}
}

static void session_free(struct session *s)
{
	struct worker *w = s->w;

	if (s->listed) {
		uv_mutex_lock(&w->lock);
		if (s->prev)
			s->prev->next = s->next;
		else
			w->sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		uv_mutex_unlock(&w->lock);
	}
	if (s->counted)
		atomic_fetch_sub(&w->p->live, 1);
	splice_free(s);
	tpin_metrics_closed(w->m);
	if (w->n_free < FREELIST_MAX && !w->ending) {
		s->next = w->free_sessions;
		w->free_sessions = s;
		w->n_free++;
	} else {
		free(s);
	}
	w->n_sessions--;
	worker_maybe_end(w);
}

static void on_close(uv_handle_t *h)
{
	struct session *s = h->data;

	if (--s->handles == 0 && s->closing)
		session_free(s);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct session *s = h->data;
	struct spliced *sp = s->sp;
	int i = h == (uv_handle_t *)&sp->poll[0] ? 0 : 1;

	close(sp->fd[i]);
	sp->fd[i] = -1;
	on_close(h);
}

static void close_side(struct side *side, bool reset)
{
	struct spliced *sp = side->s->sp;
	int i = side->is_client ? 0 : 1;

	if (sp && sp->poll_open[i]) {
		sp->poll_open[i] = false;
		if (reset) {
			/* The last descriptor of the socket closes with a reset. */
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(sp->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		uv_close((uv_handle_t *)&sp->poll[i], on_poll_closed);
		return;
	}
	if (!side->open)
		return;
	side->open = false;
	/*
	 * A reset tells the peer at once that nothing more will come. libuv
	 * refuses it while a shutdown is pending, but then the FIN would tell
	 * the peer that the writes this close cancels were never part of the
	 * stream: set the linger by hand, the socket closes with a reset.
	 */
	if (reset && !uv_tcp_close_reset(&side->tcp, on_close))
		return;
	if (reset) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		uv_os_fd_t fd;

		if (!uv_fileno((uv_handle_t *)&side->tcp, &fd))
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	uv_close((uv_handle_t *)&side->tcp, on_close);
}

/* The socket of side @i, whichever path owns it now; -1 once closed. */
static int side_fd(struct session *s, int i)
{
	struct side *side = i ? &s->upstream : &s->client;
	uv_os_fd_t fd;

	if (s->sp)
		return s->sp->poll_open[i] ? s->sp->fd[i] : -1;
	if (!side->open || uv_fileno((uv_handle_t *)&side->tcp, &fd))
		return -1;
	return fd;
}

/*
 * The sides a forced end (drain deadline, stop, idle timeout) must reset:
 * those with bytes still on their way to them, queued here (write queue or
 * pipe) or not yet read from the other side's socket. A FIN would make a
 * cut close-delimited response look complete; a reset says it is not.
 */
static int pending_resets(struct session *s)
{
	int i, fd, unread, reset = 0;

	for (i = 0; i < 2; i++) {
		struct side *to = i ? &s->upstream : &s->client;
		bool pending;

		if (s->sp)
			pending = s->sp->n[1 - i] != 0;
		else
			pending = to->open && (to->writes || to->tcp.write_queue_size);
		fd = side_fd(s, 1 - i);
		unread = 0;
		if (!pending && fd >= 0 && !ioctl(fd, FIONREAD, &unread) && unread > 0)
			pending = true;
		if (pending)
			reset |= i ? RESET_UPSTREAM : RESET_CLIENT;
	}
	return reset;
}

static void on_log_flush(uv_prepare_t *h)
{
	relay_log_flush(h->data);
}

void relay_log_flush(struct worker *w)
{
	tpin_log_write(w->p->opt.log, w->logbuf, w->loglen);
	w->loglen = 0;
	if (w->log_open)
		uv_prepare_stop(&w->log_flush);
}

/*
 * The line goes into the worker's buffer; the buffer is written once per
 * loop turn, just before the loop waits (a prepare handle), or when it is
 * full, and when the worker ends: one write(2) for many connections.
 */
static void log_session(struct session *s)
{
	struct worker *w = s->w;
	char peer[TPIN_SOCKADDR_STRLEN], orig[TPIN_SOCKADDR_STRLEN], up[TPIN_SOCKADDR_STRLEN];
	char result[64];
	struct tpin_log_entry e = {
		.client = peer,
		.original_dst = orig,
		.upstream = up,
		.bytes_up = atomic_load_explicit(&s->client.bytes, memory_order_relaxed),
		.bytes_down = atomic_load_explicit(&s->upstream.bytes, memory_order_relaxed),
		.duration_ms = uv_now(&w->loop) - s->started_ms,
		.result = s->result,
	};
	int n;

	if (!w->p->opt.log)
		return;
	session_addrs(s, peer, orig, up);
	if (s->what) {
		/* The three parts are short fixed words: no truncation. */
		size_t a = strlen(s->result), b = strlen(s->what);
		const char *c = uv_err_name(s->status);
		size_t d = strlen(c);

		if (a + b + d + 3 <= sizeof(result)) {
			memcpy(result, s->result, a);
			result[a] = '_';
			memcpy(result + a + 1, s->what, b);
			result[a + 1 + b] = ':';
			memcpy(result + a + 2 + b, c, d + 1);
			e.result = result;
		}
	}
	if (w->loglen + TPIN_LOG_LINE_MAX > RELAY_LOG_SIZE)
		relay_log_flush(w);
	n = tpin_log_format_access(w->logbuf + w->loglen, TPIN_LOG_LINE_MAX,
				   tpin_log_fmt(w->p->opt.log), tpin_log_now_ms(), &e);
	if (n >= TPIN_LOG_LINE_MAX) {
		/* Cut short, still one line. */
		n = TPIN_LOG_LINE_MAX - 1;
		w->logbuf[w->loglen + (size_t)n - 1] = '\n';
	}
	w->loglen += (size_t)n;
	if (w->log_open && !uv_is_active((uv_handle_t *)&w->log_flush))
		uv_prepare_start(&w->log_flush, on_log_flush);
	if (!w->log_open)
		relay_log_flush(w);
}

/* session_end - log once, then close every handle; @reset is RESET_* bits. */
static void session_end(struct session *s, const char *result, int reset)
{
	if (s->closing)
		return;
	s->closing = true;
	atomic_store(&s->state, STATE_CLOSING);
	s->result = result;
	log_session(s);
	close_side(&s->client, reset & RESET_CLIENT);
	close_side(&s->upstream, reset & RESET_UPSTREAM);
	if (s->timer_open) {
		s->timer_open = false;
		uv_close((uv_handle_t *)&s->timer, on_close);
	}
	/* Nothing was open: the session never got past allocation. */
	if (!s->handles)
		session_free(s);
}

/* session_fail - end with "<side>_<what>:<ERRNAME>", resetting the other side. */
static void session_fail(struct session *s, struct side *side, const char *what, int status)
{
	if (s->closing)
		return;
	s->what = what;
	s->status = status;
	session_end(s, side_name(side), side->is_client ? RESET_UPSTREAM : RESET_CLIENT);
}

static void maybe_finish(struct session *s)
{
	if (s->client.eof && s->upstream.eof && s->client.shut && s->upstream.shut)
		session_end(s, "ok", 0);
}

/*
 * libuv asks for a buffer only when the socket is readable, and on_read is
 * done with it before the next read on this loop: one buffer per worker
 * serves every connection, with no allocation and no page faults per read.
 */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = h->data;

	*buf = uv_buf_init(s->w->rbuf, CHUNK_SIZE);
}

static void read_resume(struct side *side)
{
	int ret;

	if (!side->throttled || side->eof || !side->open)
		return;
	side->throttled = false;
	ret = uv_read_start((uv_stream_t *)&side->tcp, on_alloc, on_read);
	if (ret)
		session_fail(side->s, side, "read", ret);
}

/* Bytes that reached the other side's socket. */
static void delivered(struct side *to, size_t len)
{
	struct session *s = to->s;
	struct side *from = peer_of(to);

	/* Only this thread writes it: no locked add, just no torn reads. */
	atomic_store_explicit(&from->bytes,
			      atomic_load_explicit(&from->bytes, memory_order_relaxed) + len,
			      memory_order_relaxed);
	tpin_metrics_bytes(s->w->m, s->port, side_dir(from), len);
}

static void on_write(uv_write_t *req, int status)
{
	struct chunk *c = container_of(req, struct chunk, req);
	struct side *to = container_of(req->handle, struct side, tcp);
	struct session *s = to->s;
	size_t len = c->len;

	free(c);
	to->writes--;
	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		session_fail(s, to, "write", status);
		return;
	}
	delivered(to, len);
	/* Half the limit: hysteresis, so a busy pair does not flap. */
	if (to->tcp.write_queue_size <= options(s)->queue_limit / 2)
		read_resume(peer_of(to));
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *side = container_of(req->handle, struct side, tcp);
	struct session *s = side->s;

	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		session_fail(s, side, "shutdown", status);
		return;
	}
	side->shut = true;
	maybe_finish(s);
}

static void relay_bytes(struct side *from, const char *data, size_t len)
{
	struct session *s = from->s;
	struct side *to = peer_of(from);
	struct worker *w = s->w;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	struct chunk *c;
	size_t queued;
	int ret = 0;

	s->last_active_ms = uv_now(&w->loop);
	/*
	 * Try the write before waiting for writability: mostly the socket takes
	 * it all, and nothing is copied or allocated. With bytes queued already
	 * the new ones must wait behind them.
	 */
	if (!to->tcp.write_queue_size) {
		ret = uv_try_write((uv_stream_t *)&to->tcp, &b, 1);
		if (ret > 0) {
			delivered(to, (size_t)ret);
			data += ret;
			len -= (size_t)ret;
			ret = 0;
		} else if (ret == UV_EAGAIN) {
			ret = 0;
		}
	}
	if (ret) {
		session_fail(s, to, "write", ret);
		return;
	}
	if (!len)
		return;
	c = malloc(sizeof(*c) + len);
	if (!c) {
		session_end(s, "out_of_memory", RESET_CLIENT | RESET_UPSTREAM);
		return;
	}
	c->len = len;
	memcpy(c->data, data, len);
	b = uv_buf_init(c->data, (unsigned)len);
	ret = uv_write(&c->req, (uv_stream_t *)&to->tcp, &b, 1, on_write);
	if (ret) {
		free(c);
		session_fail(s, to, "write", ret);
		return;
	}
	to->writes++;
	queued = to->tcp.write_queue_size;
	if (queued > atomic_load_explicit(&w->queue_peak, memory_order_relaxed))
		atomic_store_explicit(&w->queue_peak, queued, memory_order_relaxed);
	/*
	 * The other side is slower than this one: stop reading here until its
	 * queue drains, so memory per connection stays bounded and TCP flow
	 * control pushes back on the sender.
	 */
	if (queued > options(s)->queue_limit) {
		uv_read_stop((uv_stream_t *)&from->tcp);
		from->throttled = true;
	}
}

/* Whether @side's socket holds a reset not yet reported (it clears it). */
static bool side_was_reset(struct side *side)
{
	uv_os_fd_t fd;
	int err = 0;
	socklen_t len = sizeof(err);

	return !uv_fileno((uv_handle_t *)&side->tcp, &fd) &&
	       !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) && err == ECONNRESET;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct side *from = container_of(stream, struct side, tcp);
	struct session *s = from->s;
	int ret;

	if (nread > 0) {
		relay_bytes(from, buf->base, (size_t)nread);
		/* A full buffer: bulk data, worth the move to splice(2). */
		if ((size_t)nread == CHUNK_SIZE && !s->closing)
			splice_start(s, from);
		return;
	}
	if (nread == 0)
		return;
	/*
	 * libuv reports a hang-up after a short read as EOF without reading
	 * on, so a reset can arrive here: the socket's pending error tells.
	 */
	if (nread == UV_EOF && side_was_reset(from))
		nread = UV_ECONNRESET;
	if (nread == UV_EOF) {
		/* Carry the FIN across; uv_shutdown waits for queued writes. */
		from->eof = true;
		uv_read_stop(stream);
		atomic_store(&s->state, STATE_HALF_CLOSED);
		ret = uv_shutdown(shutdown_req(peer_of(from)), (uv_stream_t *)&peer_of(from)->tcp,
				  on_shutdown);
		if (ret)
			session_fail(s, peer_of(from), "shutdown", ret);
		return;
	}
	if (nread == UV_ENOBUFS) {
		session_end(s, "out_of_memory", RESET_CLIENT | RESET_UPSTREAM);
		return;
	}
	if (nread == UV_ECONNRESET) {
		session_end(s, from == &s->client ? "client_reset" : "upstream_reset",
			    from == &s->client ? RESET_UPSTREAM : RESET_CLIENT);
		return;
	}
	session_fail(s, from, "read", (int)nread);
}

static void start_reading(struct side *side)
{
	int ret = uv_read_start((uv_stream_t *)&side->tcp, on_alloc, on_read);

	if (ret)
		session_fail(side->s, side, "read", ret);
}

/* ---- the splice path ---------------------------------------------------- */

static struct side *side_at(struct session *s, int i)
{
	return i ? &s->upstream : &s->client;
}

static void note_queued(struct worker *w, size_t queued)
{
	if (queued > atomic_load_explicit(&w->queue_peak, memory_order_relaxed))
		atomic_store_explicit(&w->queue_peak, queued, memory_order_relaxed);
}

/*
 * A pipe from the worker's pool, or a new one big enough to be the queue:
 * what the copy path would queue (the limit and one read) must fit, else the
 * session stays on the copy path. Returns 0 or -errno.
 */
static int pipe_get(struct worker *w, int p[2])
{
	size_t want = w->p->opt.queue_limit + CHUNK_SIZE;
	int ret;

	if (w->n_pipes) {
		w->n_pipes--;
		p[0] = w->pipes[w->n_pipes][0];
		p[1] = w->pipes[w->n_pipes][1];
		return 0;
	}
	if (want > INT32_MAX || pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return want > INT32_MAX ? -EINVAL : -errno;
	ret = fcntl(p[1], F_SETPIPE_SZ, (int)want);
	if (ret < 0 || (size_t)ret < want) {
		ret = ret < 0 ? -errno : -ENOSPC;
		close(p[0]);
		close(p[1]);
		p[0] = p[1] = -1;
		return ret;
	}
	return 0;
}

/* An empty pipe goes back to the pool; one with bytes left is closed. */
static void pipe_put(struct worker *w, int p[2], bool empty)
{
	if (p[0] < 0)
		return;
	if (empty && !w->ending && w->n_pipes < RELAY_PIPE_POOL) {
		w->pipes[w->n_pipes][0] = p[0];
		w->pipes[w->n_pipes][1] = p[1];
		w->n_pipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

void relay_free_pipes(struct worker *w)
{
	while (w->n_pipes) {
		w->n_pipes--;
		close(w->pipes[w->n_pipes][0]);
		close(w->pipes[w->n_pipes][1]);
	}
}

static void splice_free(struct session *s)
{
	struct spliced *sp = s->sp;
	int i;

	if (!sp)
		return;
	for (i = 0; i < 2; i++) {
		pipe_put(s->w, sp->pipe[i], sp->n[i] == 0);
		if (sp->fd[i] >= 0)
			close(sp->fd[i]);
	}
	free(sp);
	s->sp = NULL;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Wait for what each side can do next; epoll is told only of changes. */
static void splice_update(struct session *s)
{
	struct spliced *sp = s->sp;
	size_t limit = options(s)->queue_limit;
	int i, want;

	for (i = 0; i < 2; i++) {
		if (!sp->poll_open[i])
			continue;
		want = 0;
		if (!side_at(s, i)->eof && sp->n[i] <= limit && !sp->stalled[i])
			want |= UV_READABLE;
		if (sp->n[1 - i])
			want |= UV_WRITABLE;
		if (want == sp->events[i])
			continue;
		sp->events[i] = want;
		if (want)
			uv_poll_start(&sp->poll[i], want, on_poll);
		else
			uv_poll_stop(&sp->poll[i]);
	}
}

/*
 * Pipe d into the other side until it is empty or the socket is full; then
 * carry side d's FIN across. Returns false when the session ended.
 */
static bool splice_pump(struct session *s, int d)
{
	struct spliced *sp = s->sp;
	struct side *from = side_at(s, d), *to = side_at(s, 1 - d);
	ssize_t r;

	while (sp->n[d]) {
		r = splice(sp->pipe[d][0], NULL, sp->fd[1 - d], NULL, sp->n[d],
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (r > 0) {
			sp->n[d] -= (size_t)r;
			sp->stalled[d] = false;
			s->last_active_ms = uv_now(&s->w->loop);
			delivered(to, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return true;
		session_fail(s, to, "write", r < 0 ? uv_translate_sys_error(errno) : UV_EPIPE);
		return false;
	}
	if (from->eof && !to->shut) {
		if (shutdown(sp->fd[1 - d], SHUT_WR) < 0) {
			session_fail(s, to, "shutdown", uv_translate_sys_error(errno));
			return false;
		}
		to->shut = true;
		maybe_finish(s);
	}
	return !s->closing;
}

/*
 * splice(2) from a TCP socket stops at the urgent mark (MSG_OOB) and says
 * EAGAIN there for as long as the mark stands, while epoll keeps reporting
 * the bytes past it: without this the connection would spin and stall. A
 * plain recv() steps over the mark; like the copy path's read() it drops
 * the urgent byte (no SO_OOBINLINE) and returns what follows. Those bytes go
 * into the pipe with write(2): only into an empty pipe, whose size (at least
 * one read, see pipe_get()) takes a whole read in free page slots. With
 * bytes still in the pipe the side waits until the other side took them.
 * Returns like splice(2).
 */
static ssize_t splice_urgent(struct session *s, int d)
{
	struct spliced *sp = s->sp;
	int mark = 0;
	ssize_t r, w;

	if (ioctl(sp->fd[d], SIOCATMARK, &mark) < 0 || !mark) {
		errno = EAGAIN;
		return -1;
	}
	if (sp->n[d]) {
		sp->stalled[d] = true;
		errno = EAGAIN;
		return -1;
	}
	r = recv(sp->fd[d], s->w->rbuf, CHUNK_SIZE, MSG_DONTWAIT);
	if (r <= 0)
		return r;
	w = write(sp->pipe[d][1], s->w->rbuf, (size_t)r);
	if (w == r)
		return r;
	/* Cannot happen with an empty pipe of this size; never lose bytes quietly. */
	errno = w < 0 ? errno : EIO;
	return -1;
}

/* Read side d into its pipe while the pipe is under the limit, passing it on. */
static void splice_fill(struct session *s, int d)
{
	struct spliced *sp = s->sp;
	struct side *from = side_at(s, d);
	size_t limit = options(s)->queue_limit;
	unsigned rounds = 0;
	ssize_t r;

	/* Bounded, so one busy connection cannot starve the loop's others. */
	while (!from->eof && sp->n[d] <= limit && rounds++ < 16) {
		r = splice(sp->fd[d], NULL, sp->pipe[d][1], NULL, CHUNK_SIZE,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (r == -1 && errno == EAGAIN && rounds == 1)
			r = splice_urgent(s, d);
		if (r > 0) {
			sp->n[d] += (size_t)r;
			s->last_active_ms = uv_now(&s->w->loop);
			note_queued(s->w, sp->n[d]);
			if (!splice_pump(s, d))
				return;
			continue;
		}
		if (r == 0) {
			from->eof = true;
			atomic_store(&s->state, STATE_HALF_CLOSED);
			splice_pump(s, d);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/*
			 * Readable, yet nothing moved: the pipe is out of page
			 * slots (small segments use a slot each). Wait until
			 * the other side takes some.
			 */
			if (rounds == 1 && sp->n[d])
				sp->stalled[d] = true;
			return;
		}
		if (errno == ECONNRESET) {
			session_end(s, d ? "upstream_reset" : "client_reset",
				    d ? RESET_CLIENT : RESET_UPSTREAM);
			return;
		}
		session_fail(s, from, "read", uv_translate_sys_error(errno));
		return;
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct session *s = h->data;
	struct spliced *sp = s->sp;
	int i = h == &sp->poll[0] ? 0 : 1, err = 0;
	socklen_t len = sizeof(err);

	if (s->closing)
		return;
	if (status < 0) {
		/* libuv says EBADF for any socket error; the socket knows which. */
		sp->events[i] = 0;
		getsockopt(sp->fd[i], SOL_SOCKET, SO_ERROR, &err, &len);
		if (err == ECONNRESET)
			session_end(s, i ? "upstream_reset" : "client_reset",
				    i ? RESET_CLIENT : RESET_UPSTREAM);
		else
			session_fail(s, side_at(s, i), "read",
				     err ? uv_translate_sys_error(err) : status);
		return;
	}
	/* Only moved bytes count as activity: see splice_urgent(). */
	if ((events & UV_WRITABLE) && !splice_pump(s, 1 - i))
		return;
	if (events & UV_READABLE) {
		splice_fill(s, i);
		if (s->closing)
			return;
	}
	splice_update(s);
}

/*
 * Move @s to the splice path, if it can go: nothing queued or in flight on
 * the copy path, no FIN seen, and a first splice from @from's socket works.
 * That probe decides before anything changed: a socket that cannot splice
 * (EINVAL and the like), no pipes or no descriptor (EMFILE) leave the session
 * copying as before. Returns whether the session moved.
 */
static bool splice_start(struct session *s, struct side *from)
{
	struct worker *w = s->w;
	struct spliced *sp;
	uv_os_fd_t fd;
	int d = from->is_client ? 0 : 1, i, ret, err = 0;
	ssize_t r = 0;

	if (s->no_splice || s->sp || !s->connected || s->closing || s->header_pending ||
	    s->client.eof || s->upstream.eof || s->client.writes || s->upstream.writes ||
	    s->client.throttled || s->upstream.throttled)
		return false;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return false;
	for (i = 0; i < 2; i++)
		sp->fd[i] = sp->pipe[i][0] = sp->pipe[i][1] = -1;
	/*
	 * Both pipes now, though only one direction is busy: once committed
	 * there is no way back to the copy path, and a pipe refused later
	 * (EMFILE, or the per-user pipe budget for an unprivileged proxy)
	 * would cost an established connection.
	 */
	if (pipe_get(w, sp->pipe[0]) || pipe_get(w, sp->pipe[1]))
		goto fail;
	for (i = 0; i < 2; i++) {
		uv_fileno((uv_handle_t *)&side_at(s, i)->tcp, &fd);
		sp->fd[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (sp->fd[i] < 0)
			goto fail;
	}
	r = splice(sp->fd[d], NULL, sp->pipe[d][1], NULL, CHUNK_SIZE,
		   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	/*
	 * An EOF is read again by the copy path, which handles it; an error is
	 * not: splice consumed it (sk_err), and the copy path would read a
	 * reset as a FIN. Only a socket that cannot splice goes back to copying.
	 */
	if (r < 0 && errno != EAGAIN && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP &&
	    errno != ESPIPE && errno != EINTR)
		err = errno;
	if (r == 0 || (r < 0 && errno != EAGAIN))
		goto fail;
	if (r > 0) {
		sp->n[d] = (size_t)r;
		note_queued(w, sp->n[d]);
	}

	/* Committed: from here on the dups own the sockets. */
	s->sp = sp;
	for (i = 0; i < 2; i++) {
		struct side *side = side_at(s, i);

		uv_read_stop((uv_stream_t *)&side->tcp);
		side->open = false;
		uv_close((uv_handle_t *)&side->tcp, on_close);
	}
	for (i = 0; i < 2; i++) {
		ret = uv_poll_init_socket(&w->loop, &sp->poll[i], sp->fd[i]);
		if (ret) {
			session_fail(s, side_at(s, i), "poll", ret);
			return true;
		}
		sp->poll[i].data = s;
		sp->poll_open[i] = true;
		s->handles++;
	}
	s->last_active_ms = uv_now(&w->loop);
	if (splice_pump(s, d))
		splice_update(s);
	return true;
fail:
	s->no_splice = r < 0 || sp->fd[1] < 0 || sp->pipe[1][0] < 0;
	for (i = 0; i < 2; i++) {
		pipe_put(w, sp->pipe[i], true);
		if (sp->fd[i] >= 0)
			close(sp->fd[i]);
	}
	free(sp);
	if (err == ECONNRESET || err == EPIPE)
		session_end(s, d ? "upstream_reset" : "client_reset",
			    d ? RESET_CLIENT : RESET_UPSTREAM);
	else if (err)
		session_fail(s, from, "read", uv_translate_sys_error(err));
	return false;
}

static void on_timer(uv_timer_t *t)
{
	struct session *s = container_of(t, struct session, timer);
	uint64_t idle = options(s)->idle_timeout_ms, quiet;

	if (!s->connected) {
		tpin_metrics_connect_failed(s->w->m, s->port);
		session_end(s, "connect_timeout", RESET_CLIENT);
		return;
	}
	/* The timer is not pushed back on every read; it checks when it fires. */
	quiet = uv_now(&s->w->loop) - s->last_active_ms;
	if (quiet >= idle) {
		session_end(s, "idle_timeout", pending_resets(s));
		return;
	}
	uv_timer_start(t, on_timer, idle - quiet, 0);
}

/* The PROXY protocol v2 header: the client's address and the original destination. */
static size_t proxy_header(struct session *s, uint8_t *h)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	uint8_t *a = h + 16;
	uint16_t alen;

	memcpy(h, sig, sizeof(sig));
	h[12] = 0x21; /* version 2, command PROXY */
	if (s->peer.sa.sa_family == AF_INET) {
		const struct sockaddr_in *src = &s->peer.sin, *dst = &s->orig.sin;

		h[13] = 0x11; /* TCP over IPv4 */
		alen = 12;
		memcpy(a, &src->sin_addr, 4);
		memcpy(a + 4, &dst->sin_addr, 4);
		memcpy(a + 8, &src->sin_port, 2);
		memcpy(a + 10, &dst->sin_port, 2);
	} else {
		const struct sockaddr_in6 *src = &s->peer.sin6, *dst = &s->orig.sin6;

		h[13] = 0x21; /* TCP over IPv6 */
		alen = 36;
		memcpy(a, &src->sin6_addr, 16);
		memcpy(a + 16, &dst->sin6_addr, 16);
		memcpy(a + 32, &src->sin6_port, 2);
		memcpy(a + 34, &dst->sin6_port, 2);
	}
	h[14] = (uint8_t)(alen >> 8);
	h[15] = (uint8_t)alen;
	return 16 + alen;
}

/* The header travels with its write request, not in every session. */
struct header_req {
	uv_write_t req;
	uint8_t h[52];
};

static void on_header_written(uv_write_t *req, int status)
{
	struct session *s = req->data;

	free(container_of(req, struct header_req, req));
	s->header_pending = false;
	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0)
		session_fail(s, &s->upstream, "write", status);
}

static int send_proxy_header(struct session *s)
{
	struct header_req *hr = malloc(sizeof(*hr));
	uv_buf_t b;
	int ret;

	if (!hr)
		return UV_ENOMEM;
	b = uv_buf_init((char *)hr->h, (unsigned)proxy_header(s, hr->h));
	hr->req.data = s;
	ret = uv_write(&hr->req, (uv_stream_t *)&s->upstream.tcp, &b, 1, on_header_written);
	if (ret)
		free(hr);
	else
		s->header_pending = true;
	return ret;
}

static void on_retry_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	s->handles--;
	if (s->closing) {
		if (!s->handles)
			session_free(s);
		return;
	}
	upstream_connect(s);
}

/*
 * With --preserve-source the kernel picks the upstream port, and it may pick
 * the client's own: the upstream connection then has the very 4-tuple of the
 * accepted one and the two cannot both exist in the pod. Seen from here it
 * shows as a local address equal to the client's.
 */
static bool same_four_tuple(struct session *s)
{
	struct sockaddr_storage local;
	union inaddr up;
	int len = sizeof(local);

	if (!options(s)->preserve_source)
		return false;
	if (uv_tcp_getsockname(&s->upstream.tcp, (struct sockaddr *)&local, &len))
		return false;
	if (!tpin_sockaddr_equal((struct sockaddr *)&local, &s->peer.sa))
		return false;
	/* Rare: only now is the accepted socket's own address worth a syscall. */
	len = sizeof(local);
	if (uv_tcp_getsockname(&s->client.tcp, (struct sockaddr *)&local, &len))
		return false;
	upstream_addr(s, &up);
	return tpin_sockaddr_equal(&up.sa, (struct sockaddr *)&local);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct session *s = container_of(req, struct session, req.connect);
	const struct tpin_proxy_options *opt = options(s);
	int ret;

	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		/* Reset, not FIN: the client learns at once, as if the port were closed. */
		tpin_metrics_connect_failed(s->w->m, s->port);
		session_fail(s, &s->upstream, "connect", status);
		return;
	}
	if (same_four_tuple(s) && s->attempts < PRESERVE_RETRIES) {
		s->upstream.open = false;
		uv_close((uv_handle_t *)&s->upstream.tcp, on_retry_closed);
		return;
	}
	s->connected = true;
	atomic_store(&s->state, STATE_RELAYING);
	s->last_active_ms = uv_now(&s->w->loop);
	if (opt->proxy_protocol) {
		ret = send_proxy_header(s);
		if (ret) {
			session_fail(s, &s->upstream, "write", ret);
			return;
		}
	}
	uv_timer_stop(&s->timer);
	if (opt->idle_timeout_ms)
		uv_timer_start(&s->timer, on_timer, opt->idle_timeout_ms, 0);
	start_reading(&s->client);
	if (!s->closing)
		start_reading(&s->upstream);
}

/* The source address of the upstream connection, or NULL to let the kernel choose. */
static const struct sockaddr *upstream_source(struct session *s, union inaddr *ss)
{
	const struct tpin_proxy_options *opt = options(s);

	if (opt->preserve_source) {
		*ss = s->peer;
		if (ss->sa.sa_family == AF_INET)
			ss->sin.sin_port = 0;
		else
			ss->sin6.sin6_port = 0;
		return &ss->sa;
	}
	if (s->orig.sa.sa_family == AF_INET && opt->passthrough4.sin_family)
		return (const struct sockaddr *)&opt->passthrough4;
	if (s->orig.sa.sa_family == AF_INET6 && opt->passthrough6.sin6_family)
		return (const struct sockaddr *)&opt->passthrough6;
	return NULL;
}

static void upstream_connect(struct session *s)
{
	const struct sockaddr *src;
	union inaddr ss, up;
	uv_os_fd_t fd;
	int ret;

	s->attempts++;
	/* EMFILE or ENOMEM here costs this connection only. */
	ret = uv_tcp_init_ex(&s->w->loop, &s->upstream.tcp, s->orig.sa.sa_family);
	if (ret) {
		tpin_metrics_connect_failed(s->w->m, s->port);
		session_fail(s, &s->upstream, "socket", ret);
		return;
	}
	s->upstream.tcp.data = s;
	s->upstream.open = true;
	s->handles++;
	src = upstream_source(s, &ss);
	if (src) {
		uv_fileno((uv_handle_t *)&s->upstream.tcp, &fd);
		/* Binding the client's address needs a transparent socket. */
		ret = options(s)->preserve_source ? tpin_sock_set_transparent(fd, src->sa_family)
						  : 0;
		/* Leave the port to connect(), so one source serves every destination. */
		if (!ret)
			ret = tpin_sock_set_bind_no_port(fd);
		if (!ret)
			ret = uv_tcp_bind(&s->upstream.tcp, src, 0);
		if (ret) {
			tpin_metrics_connect_failed(s->w->m, s->port);
			session_fail(s, &s->upstream, "bind", ret);
			return;
		}
	}
	upstream_addr(s, &up);
	ret = uv_tcp_connect(&s->req.connect, &s->upstream.tcp, &up.sa, on_connect);
	if (ret) {
		tpin_metrics_connect_failed(s->w->m, s->port);
		session_fail(s, &s->upstream, "connect", ret);
	}
}

static void reject_closed(uv_handle_t *h)
{
	struct worker *w = h->data;
	uv_stream_t *waiting[2] = { w->reject_waiting[0], w->reject_waiting[1] };
	int i;

	w->reject_busy = false;
	w->reject_waiting[0] = w->reject_waiting[1] = NULL;
	/* Each one: a listener not resumed here would never accept again. */
	for (i = 0; i < 2; i++)
		if (waiting[i] && !w->ending)
			relay_accept(w, waiting[i]);
}

/*
 * No memory for a session: accept into the worker's spare handle and reset,
 * so the client hears at once and the listener is not left holding the
 * connection. While the spare is busy the connection waits in libuv, which
 * stops the listener until it is accepted.
 */
static void reject(struct worker *w, uv_stream_t *server)
{
	if (w->reject_busy) {
		/* At most one listener per family: two places are enough. */
		if (w->reject_waiting[0] != server && w->reject_waiting[1] != server)
			w->reject_waiting[w->reject_waiting[0] ? 1 : 0] = server;
		return;
	}
	uv_tcp_init(&w->loop, &w->reject);
	w->reject.data = w;
	w->reject_busy = true;
	if (uv_accept(server, (uv_stream_t *)&w->reject) ||
	    uv_tcp_close_reset(&w->reject, reject_closed))
		uv_close((uv_handle_t *)&w->reject, reject_closed);
	tpin_log_event(w->p->opt.log, "out of memory: connection reset");
}

static void refuse(struct session *s, enum tpin_refusal why, const char *result)
{
	tpin_metrics_refused(s->w->m, why);
	session_end(s, result, RESET_CLIENT);
}

void relay_accept(struct worker *w, uv_stream_t *server)
{
	const struct tpin_proxy_options *opt = &w->p->opt;
	struct session *s = session_alloc(w);
	struct sockaddr_storage ss;
	uv_os_fd_t fd;
	int len, ret;
	uint32_t max = opt->max_connections;

	if (!s) {
		reject(w, server);
		return;
	}
	s->w = w;
	w->n_sessions++;
	tpin_metrics_accepted(w->m);
	s->started_ms = uv_now(&w->loop);
	s->client.s = s;
	s->client.is_client = true;
	s->upstream.s = s;

	uv_tcp_init(&w->loop, &s->client.tcp);
	s->client.tcp.data = s;
	s->client.open = true;
	s->handles++;
	uv_timer_init(&w->loop, &s->timer);
	s->timer.data = s;
	s->timer_open = true;
	s->handles++;

	ret = uv_accept(server, (uv_stream_t *)&s->client.tcp);
	if (ret) {
		session_fail(s, &s->client, "accept", ret);
		return;
	}
	/*
	 * The peer's address is read now: once the client resets, the kernel
	 * no longer tells. The local address is the original destination in
	 * TPROXY mode, so tpin_sock_original_dst() asks for it once.
	 */
	len = sizeof(ss);
	if (!uv_tcp_getpeername(&s->client.tcp, (struct sockaddr *)&ss, &len) &&
	    (size_t)len <= sizeof(s->peer))
		memcpy(&s->peer, &ss, (size_t)len);

	if (opt->original_dst.ss_family) {
		memcpy(&s->orig, &opt->original_dst, sizeof(s->orig));
	} else {
		uv_fileno((uv_handle_t *)&s->client.tcp, &fd);
		ret = tpin_sock_original_dst(fd, opt->mode, &ss);
		if (ret) {
			session_fail(s, &s->client, "original_dst", uv_translate_sys_error(-ret));
			return;
		}
		memcpy(&s->orig, &ss, sizeof(s->orig));
	}
	s->port = tpin_sockaddr_port(&s->orig.sa);

	/* Counted only when added: session_free takes back what was added. */
	if (max) {
		s->counted = true;
		if (atomic_fetch_add(&w->p->live, 1) >= max) {
			refuse(s, TPIN_REFUSED_LIMIT, "refused_limit");
			return;
		}
	}
	/* A connection to the proxy's own ports would come straight back here. */
	if (s->port == w->p->port || s->port == opt->admin_port) {
		refuse(s, TPIN_REFUSED_LOOP, "refused_loop");
		return;
	}
	/* Set before the admin thread can see the session: it reads it. */
	s->chosen = true;

	uv_mutex_lock(&w->lock);
	s->next = w->sessions;
	if (s->next)
		s->next->prev = s;
	w->sessions = s;
	s->listed = true;
	uv_mutex_unlock(&w->lock);

	uv_timer_start(&s->timer, on_timer, opt->connect_timeout_ms, 0);
	upstream_connect(s);
}

void relay_close_all(struct worker *w, const char *why)
{
	struct session *s, *next;

	for (s = w->sessions; s; s = next) {
		next = s->next;
		session_end(s, why, pending_resets(s));
	}
}

void relay_describe(struct worker *w, struct tpin_strbuf *sb)
{
	/* uv_now() belongs to the worker's thread; its clock is the same one. */
	uint64_t now = uv_hrtime() / 1000000;
	struct session *s;

	uv_mutex_lock(&w->lock);
	for (s = w->sessions; s; s = s->next) {
		uint64_t age = now > s->started_ms ? now - s->started_ms : 0;
		char peer[TPIN_SOCKADDR_STRLEN], orig[TPIN_SOCKADDR_STRLEN];
		char up[TPIN_SOCKADDR_STRLEN];

		/* Both addresses are set before the session is listed. */
		session_addrs(s, peer, orig, up);
		tpin_strbuf_printf(sb,
				   "client=%s original_dst=%s upstream=%s state=%s bytes_up=%llu "
				   "bytes_down=%llu age_ms=%llu\n",
				   peer, orig, up, state_names[atomic_load(&s->state)],
				   (unsigned long long)atomic_load_explicit(&s->client.bytes,
									    memory_order_relaxed),
				   (unsigned long long)atomic_load_explicit(&s->upstream.bytes,
									    memory_order_relaxed),
				   (unsigned long long)age);
	}
	uv_mutex_unlock(&w->lock);
}
