// SPDX-License-Identifier: MIT
/* One worker's edge-triggered epoll set, polled by libuv; see evset.h. */

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "evset.h"

/* Events taken from the set per libuv callback: enough to amortize the call. */
#define BATCH 256

static void run_tasks(struct evset *set)
{
	unsigned n = set->ntasks;
	struct task *t;

	/* One round: what the tasks queue again waits for the next one. */
	while (n-- && (t = set->tasks)) {
		set->tasks = t->next;
		if (!set->tasks)
			set->tasks_tail = &set->tasks;
		set->ntasks--;
		t->next = NULL;
		t->queued = false;
		t->run(t);
	}
	if (!set->tasks && set->open)
		uv_idle_stop(&set->idle);
}

static void on_idle(uv_idle_t *h)
{
	run_tasks(h->data);
}

static void on_ready(uv_poll_t *h, int status, int events)
{
	struct evset *set = h->data;
	struct epoll_event ev[BATCH];
	int i, n;

	n = epoll_wait(set->epfd, ev, BATCH, 0);
	for (i = 0; i < n; i++) {
		struct io *io = ev[i].data.ptr;

		io->cb(io, ev[i].events);
	}
	if (set->tasks)
		run_tasks(set);
}

int evset_init(struct evset *set, uv_loop_t *loop)
{
	int ret;

	set->tasks = NULL;
	set->tasks_tail = &set->tasks;
	set->ntasks = 0;
	set->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (set->epfd < 0)
		return -errno;
	/* An epoll descriptor is readable while it has events to report. */
	ret = uv_poll_init(loop, &set->poll, set->epfd);
	if (ret) {
		close(set->epfd);
		set->epfd = -1;
		return ret;
	}
	set->poll.data = set;
	uv_idle_init(loop, &set->idle);
	set->idle.data = set;
	uv_poll_start(&set->poll, UV_READABLE, on_ready);
	set->open = true;
	return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
	struct evset *set = h->data;

	close(set->epfd);
	set->epfd = -1;
}

void evset_close(struct evset *set)
{
	if (!set->open)
		return;
	set->open = false;
	set->tasks = NULL;
	set->tasks_tail = &set->tasks;
	set->ntasks = 0;
	uv_close((uv_handle_t *)&set->idle, NULL);
	uv_close((uv_handle_t *)&set->poll, on_poll_closed);
}

int evset_add(struct evset *set, struct io *io, bool level)
{
	struct epoll_event ev = {
		.events = level ? EPOLLIN : EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
		.data.ptr = io,
	};

	return epoll_ctl(set->epfd, EPOLL_CTL_ADD, io->fd, &ev) ? -errno : 0;
}

void evset_remove(struct evset *set, struct io *io)
{
	struct epoll_event ev = { 0 };

	epoll_ctl(set->epfd, EPOLL_CTL_DEL, io->fd, &ev);
}

void evset_defer(struct evset *set, struct task *t)
{
	if (t->queued || !set->open)
		return;
	t->queued = true;
	t->next = NULL;
	*set->tasks_tail = t;
	set->tasks_tail = &t->next;
	set->ntasks++;
	uv_idle_start(&set->idle, on_idle);
}

void evset_cancel(struct evset *set, struct task *t)
{
	struct task **p;

	if (!t->queued)
		return;
	for (p = &set->tasks; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			if (set->tasks_tail == &t->next)
				set->tasks_tail = p;
			set->ntasks--;
			break;
		}
	}
	t->next = NULL;
	t->queued = false;
}
