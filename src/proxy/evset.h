/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_EVSET_H
#define TPIN_PROXY_EVSET_H

/*
 * One worker's sockets, watched by an edge-triggered epoll set of its own
 * that libuv polls through a single handle.
 *
 * Why not a libuv stream per socket: libuv adds, modifies and removes each
 * socket's registration as reading and writing start and stop (six
 * epoll_ctl calls for a short connection), reads a connect's result with
 * getsockopt, and cannot say that a read was followed by the peer's FIN
 * (EPOLLRDHUP), so a FIN cannot travel with the last data. Here a socket is
 * registered once, for input, output and the peer's FIN, edge-triggered, and
 * leaves the set when it is closed: one epoll_ctl per socket, none per state
 * change. The price is one more epoll_wait per loop turn, shared by every
 * event of that turn.
 *
 * Edge-triggered means an event says "something changed", once: whoever
 * stops reading before EAGAIN must remember that the socket is still
 * readable. Work that was left over on purpose (a busy socket yielding to
 * the others) goes on the task list and runs before the loop waits again.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct io;

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR...). */
typedef void (*io_cb)(struct io *io, uint32_t events);

/* A socket in the set; embedded in whatever owns the socket. */
struct io {
	int fd;
	io_cb cb;
};

/* Work to run once more soon, without an event: see evset_defer(). */
struct task {
	struct task *next;
	void (*run)(struct task *t);
	bool queued;
};

struct evset {
	uv_poll_t poll; /* libuv's watch on the epoll descriptor */
	uv_idle_t idle; /* keeps the loop from blocking while tasks wait */
	int epfd;
	struct task *tasks, **tasks_tail;
	unsigned ntasks;
	bool open;
};

/*
 * evset_init - an empty set on @loop. Returns 0 or -errno; on error nothing
 * is left to close.
 */
int evset_init(struct evset *set, uv_loop_t *loop);

/*
 * evset_close - stop watching; the epoll descriptor is closed once libuv
 * has closed the handles. Sockets still in the set are the caller's.
 */
void evset_close(struct evset *set);

/*
 * evset_add - watch @io->fd for input, output, the peer's FIN and errors,
 * edge-triggered (@level: level-triggered input only, for listeners).
 * Closing the descriptor removes it. Returns 0 or -errno.
 */
int evset_add(struct evset *set, struct io *io, bool level);

/* evset_remove - stop watching @io->fd before it is closed elsewhere. */
void evset_remove(struct evset *set, struct io *io);

/*
 * evset_defer - run @t->run once, soon, before the loop sleeps; queuing a
 * queued task again does nothing.
 */
void evset_defer(struct evset *set, struct task *t);

/* evset_cancel - take @t off the task list, if it is on it. */
void evset_cancel(struct evset *set, struct task *t);

#endif
