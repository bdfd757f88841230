// SPDX-License-Identifier: MIT
/*
 * Network-namespace harness for the root test suites; see harness.h.
 *
 * About 950 lines, one file: every root suite links it, and its parts
 * (namespaces, processes, sockets, waiting) call one another; it is a
 * library read by the function, through harness.h.
 */

#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define NH_NETNS_DIR	 "/run/netns"
#define NH_MAX_NS	 64
#define NH_MAX_SYSCTL	 32
#define NH_SH_TIMEOUT_MS 60000

struct nh_ns_entry {
	char name[NH_NAME_MAX];
	pid_t owner; /* only the creating process deletes it */
};

struct nh_sysctl_entry {
	char ns[NH_NAME_MAX]; /* "" = the initial namespace */
	char key[128];
	char val[256];
	pid_t owner;
};

static pid_t nh_main_pid;
static int nh_home_fd = -1; /* the namespace the tests started in */
static unsigned int nh_counter;
static struct nh_ns_entry nh_ns_list[NH_MAX_NS];
static struct nh_sysctl_entry nh_sysctl_list[NH_MAX_SYSCTL];
static char nh_errbuf[512];

__attribute__((format(printf, 2, 3))) static int nh_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(nh_errbuf, sizeof(nh_errbuf), fmt, ap);
	va_end(ap);
	return err > 0 ? -err : (err ? err : -EIO);
}

const char *nh_err(void)
{
	return nh_errbuf;
}

long long nh_now_ms(void)
{
	return tu_now_ms();
}

void nh_sleep_ms(long ms)
{
	tu_sleep_ms(ms);
}

int nh_raise_nofile(void)
{
	int ret = tu_raise_nofile();

	return ret ? nh_fail(ret, "raising RLIMIT_NOFILE: %s", strerror(-ret)) : 0;
}

const char *nh_ns_path(const char *name, char *buf, size_t len)
{
	/* A name with a slash is already a path (e.g. /proc/PID/ns/net). */
	if (strchr(name, '/'))
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, NH_NETNS_DIR "/%s", name);
	return buf;
}

int nh_enter(const char *ns)
{
	char path[128];
	int fd, ret = 0;

	if (!ns)
		return setns(nh_home_fd, CLONE_NEWNET) ? nh_fail(errno, "setns home: %m") : 0;
	fd = open(nh_ns_path(ns, path, sizeof(path)), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nh_fail(errno, "open %s: %m", path);
	if (setns(fd, CLONE_NEWNET))
		ret = nh_fail(errno, "setns %s: %m", path);
	close(fd);
	return ret;
}

int nh_socket(const char *ns, int domain, int type, int protocol)
{
	int fd, err, ret = nh_enter(ns);

	if (ret)
		return ret;
	fd = socket(domain, type, protocol);
	err = errno;
	ret = nh_enter(NULL);
	if (fd < 0)
		return nh_fail(err, "socket in %s: %s", ns ? ns : "home", strerror(err));
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Child side of nh_sh/nh_call/nh_spawn: die with the parent, enter ns. */
static void nh_child_setup(const char *ns)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (nh_enter(ns)) {
		fprintf(stderr, "harness: %s\n", nh_errbuf);
		_exit(126);
	}
}

static int nh_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return -EIO;
}

struct nh_buf {
	char *s;
	size_t len, cap;
};

static int nh_buf_read(struct nh_buf *b, int fd)
{
	ssize_t n;

	if (b->cap - b->len < 4096) {
		size_t cap = b->cap ? b->cap * 2 : 8192;
		char *s = realloc(b->s, cap);

		if (!s)
			return -ENOMEM;
		b->s = s;
		b->cap = cap;
	}
	n = read(fd, b->s + b->len, b->cap - b->len - 1);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	b->len += (size_t)n;
	b->s[b->len] = '\0';
	return n > 0;
}

int nh_sh(const char *ns, char **out, char **err, const char *fmt, ...)
{
	struct nh_buf bufs[2] = { 0 };
	int pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, ws, ret;
	long long deadline = nh_now_ms() + NH_SH_TIMEOUT_MS;
	bool open_[2] = { true, true };
	char *cmd;
	va_list ap;
	pid_t pid;

	if (out)
		*out = NULL;
	if (err)
		*err = NULL;
	va_start(ap, fmt);
	ret = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return nh_fail(ENOMEM, "vasprintf");
	if (pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		ret = nh_fail(errno, "pipe: %m");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = nh_fail(errno, "fork: %m");
		goto out;
	}
	if (!pid) {
		nh_child_setup(ns);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pout[1]);
	close(perr[1]);
	pout[1] = perr[1] = -1;
	while (open_[0] || open_[1]) {
		struct pollfd pfd[2] = { { .fd = open_[0] ? pout[0] : -1, .events = POLLIN },
					 { .fd = open_[1] ? perr[0] : -1, .events = POLLIN } };
		long long left = deadline - nh_now_ms();

		if (left <= 0) {
			/* A hung witness must not hang the suite: kill it by pid. */
			kill(pid, SIGKILL);
			break;
		}
		if (poll(pfd, 2, (int)left) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (pfd[i].revents && nh_buf_read(&bufs[i], i ? perr[0] : pout[0]) <= 0)
				open_[i] = false;
		}
	}
	if (waitpid(pid, &ws, 0) < 0) {
		ret = nh_fail(errno, "waitpid: %m");
		goto out;
	}
	ret = nh_status(ws);
	for (int i = 0; i < 2; i++) {
		char **dst = i ? err : out;

		if (!bufs[i].s)
			bufs[i].s = strdup("");
		if (dst) {
			*dst = bufs[i].s;
			bufs[i].s = NULL;
		}
	}
out:
	free(bufs[0].s);
	free(bufs[1].s);
	for (int i = 0; i < 2; i++) {
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	free(cmd);
	return ret;
}

pid_t nh_spawn(const char *ns, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid < 0)
		return nh_fail(errno, "fork: %m");
	if (!pid) {
		nh_child_setup(ns);
		_exit(fn(arg) & 0xff);
	}
	return pid;
}

int nh_reap(pid_t pid, int sig)
{
	int ws;

	if (pid <= 0)
		return -EINVAL;
	if (sig)
		kill(pid, sig);
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR)
			return nh_fail(errno, "waitpid %d: %m", (int)pid);
	}
	return ws;
}

int nh_call(const char *ns, int (*fn)(void *), void *arg)
{
	pid_t pid = nh_spawn(ns, fn, arg);
	int ws;

	if (pid < 0)
		return pid;
	ws = nh_reap(pid, 0);
	return ws < 0 ? ws : nh_status(ws);
}

static int nh_ns_forget(const char *name)
{
	for (int i = 0; i < NH_MAX_NS; i++) {
		if (nh_ns_list[i].name[0] && !strcmp(nh_ns_list[i].name, name)) {
			nh_ns_list[i].name[0] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

/* What `ip netns del` does: detach the bind mount, remove the file. */
static int nh_ns_remove(const char *name)
{
	char path[128];

	nh_ns_path(name, path, sizeof(path));
	if (umount2(path, MNT_DETACH) && errno != EINVAL && errno != ENOENT)
		return nh_fail(errno, "umount %s: %m", path);
	if (unlink(path) && errno != ENOENT)
		return nh_fail(errno, "unlink %s: %m", path);
	return 0;
}

int nh_ns_new(char *name, const char *tag)
{
	int slot = -1, ret;
	char *err = NULL;

	for (int i = 0; i < NH_MAX_NS && slot < 0; i++)
		if (!nh_ns_list[i].name[0])
			slot = i;
	if (slot < 0)
		return nh_fail(ENOSPC, "too many namespaces");
	snprintf(name, NH_NAME_MAX, "tpt%d-%d-%s%u", (int)nh_main_pid, (int)getpid(), tag,
		 ++nh_counter);
	ret = nh_sh(NULL, NULL, &err, "ip netns add %s", name);
	if (ret) {
		ret = nh_fail(EIO, "ip netns add %s: status %d: %s", name, ret, err ? err : "");
		free(err);
		return ret;
	}
	free(err);
	snprintf(nh_ns_list[slot].name, NH_NAME_MAX, "%s", name);
	nh_ns_list[slot].owner = getpid();
	return 0;
}

int nh_ns_del(const char *name)
{
	nh_ns_forget(name);
	return nh_ns_remove(name);
}

int nh_lo_up(const char *ns)
{
	char *err = NULL;
	int ret = nh_sh(ns, NULL, &err, "ip link set lo up");

	if (ret)
		ret = nh_fail(EIO, "lo up in %s: %s", ns, err ? err : "");
	free(err);
	return ret;
}

int nh_pair_new(struct nh_pair *p, const char *tag)
{
	char ctag[32], ptag[32], *err = NULL;
	int ret;

	memset(p, 0, sizeof(*p));
	snprintf(ctag, sizeof(ctag), "%sc", tag);
	snprintf(ptag, sizeof(ptag), "%sp", tag);
	ret = nh_ns_new(p->client, ctag);
	if (!ret)
		ret = nh_ns_new(p->pod, ptag);
	if (ret)
		goto fail;
	/*
	 * nodad on the global addresses is not enough: while the link-local
	 * address is tentative the first neighbour exchange is lost and the
	 * first v6 SYN waits a full 1 s retransmit. No DAD at all on these links.
	 */
	for (int i = 0; i < 2 && !ret; i++)
		ret = nh_sh(i ? p->pod : p->client, NULL, NULL,
			    "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && "
			    "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad");
	if (ret) {
		ret = nh_fail(EIO, "accept_dad: status %d", ret);
		goto fail;
	}
	/*
	 * Created from inside the client so the names never meet in the host.
	 * Links go up before the addresses are added: a v6 address added on a
	 * down link costs the first SYN (a 1 s retransmit) for ~300 ms after up.
	 */
	ret = nh_sh(
		p->client, NULL, &err,
		"ip link set lo up && ip link add eth0 type veth peer name eth0 netns %s && "
		"ip link set eth0 up && ip -n %s link set lo up && ip -n %s link set eth0 up && "
		"ip addr add " NH_CLIENT4 "/24 dev eth0 && "
		"ip addr add " NH_CLIENT6 "/64 dev eth0 nodad && "
		"ip -n %s addr add " NH_POD4 "/24 dev eth0 && "
		"ip -n %s addr add " NH_POD6 "/64 dev eth0 nodad",
		p->pod, p->pod, p->pod, p->pod, p->pod);
	if (ret) {
		ret = nh_fail(EIO, "veth setup: status %d: %s", ret, err ? err : "");
		free(err);
		goto fail;
	}
	free(err);
	return 0;
fail:
	nh_pair_del(p);
	return ret;
}

void nh_pair_del(struct nh_pair *p)
{
	if (p->client[0])
		nh_ns_del(p->client);
	if (p->pod[0])
		nh_ns_del(p->pod);
	p->client[0] = p->pod[0] = '\0';
}

static void nh_sysctl_path(const char *key, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "/proc/sys/%s", key);

	if (strchr(key, '/'))
		return;
	for (size_t i = strlen("/proc/sys/"); i < n && i < len; i++)
		if (buf[i] == '.')
			buf[i] = '/';
}

/* /proc/sys/net resolves to the namespace of the opener: open it inside. */
static int nh_sysctl_open(const char *ns, const char *key, int flags)
{
	char path[192];
	int fd, err, ret = nh_enter(ns);

	if (ret)
		return ret;
	nh_sysctl_path(key, path, sizeof(path));
	fd = open(path, flags | O_CLOEXEC);
	err = errno;
	ret = nh_enter(NULL);
	if (fd < 0)
		return nh_fail(err, "open %s in %s: %s", path, ns ? ns : "home", strerror(err));
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int nh_sysctl_read(const char *ns, const char *key, char *buf, size_t len)
{
	int fd = nh_sysctl_open(ns, key, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return nh_fail(errno, "read %s: %m", key);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

int nh_sysctl_write(const char *ns, const char *key, const char *val)
{
	int fd = nh_sysctl_open(ns, key, O_WRONLY);
	size_t len = strlen(val);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = write(fd, val, len);
	close(fd);
	if (n != (ssize_t)len)
		return nh_fail(n < 0 ? errno : EIO, "write %s=%s: %m", key, val);
	return 0;
}

int nh_sysctl_long(const char *ns, const char *key, long *val)
{
	char buf[64], *end;
	int ret = nh_sysctl_read(ns, key, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*val = strtol(buf, &end, 10);
	if (errno || end == buf)
		return nh_fail(EINVAL, "%s: not a number: %s", key, buf);
	return 0;
}

int nh_sysctl_save(const char *ns, const char *key)
{
	for (int i = 0; i < NH_MAX_SYSCTL; i++) {
		struct nh_sysctl_entry *e = &nh_sysctl_list[i];
		int ret;

		if (e->key[0])
			continue;
		ret = nh_sysctl_read(ns, key, e->val, sizeof(e->val));
		if (ret)
			return ret;
		snprintf(e->ns, sizeof(e->ns), "%s", ns ? ns : "");
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->owner = getpid();
		return 0;
	}
	return nh_fail(ENOSPC, "too many saved sysctls");
}

void nh_cleanup(void)
{
	pid_t me = getpid();

	if (nh_home_fd >= 0)
		nh_enter(NULL);
	/* Newest first, so a key saved twice ends at its oldest value. */
	for (int i = NH_MAX_SYSCTL - 1; i >= 0; i--) {
		struct nh_sysctl_entry *e = &nh_sysctl_list[i];

		if (!e->key[0] || e->owner != me)
			continue;
		/* A namespace already gone took its per-netns value with it. */
		if (nh_sysctl_write(e->ns[0] ? e->ns : NULL, e->key, e->val))
			fprintf(stderr, "harness: restore %s: %s\n", e->key, nh_errbuf);
		e->key[0] = '\0';
	}
	for (int i = 0; i < NH_MAX_NS; i++) {
		if (!nh_ns_list[i].name[0] || nh_ns_list[i].owner != me)
			continue;
		nh_ns_remove(nh_ns_list[i].name);
		nh_ns_list[i].name[0] = '\0';
	}
}

/* The main process also sweeps namespaces its killed children left. */
static void nh_atexit(void)
{
	char prefix[32];
	DIR *d;
	struct dirent *de;

	nh_cleanup();
	if (getpid() != nh_main_pid)
		return;
	snprintf(prefix, sizeof(prefix), "tpt%d-", (int)nh_main_pid);
	d = opendir(NH_NETNS_DIR);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			nh_ns_remove(de->d_name);
	closedir(d);
}

void nh_init(void)
{
	char name[NH_NAME_MAX], *err = NULL;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		printf("skip: the netns tests need root\n");
		exit(NH_SKIP);
	}
	nh_main_pid = getpid();
	nh_home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (nh_home_fd < 0) {
		printf("skip: /proc/self/ns/net: %m\n");
		exit(NH_SKIP);
	}
	/* Stray children must not make the runner wait forever. */
	signal(SIGPIPE, SIG_IGN);
	/* ip netns add is unshare(CLONE_NEWNET) plus a bind mount: probe both. */
	snprintf(name, sizeof(name), "tpt%d-probe", (int)nh_main_pid);
	ret = nh_sh(NULL, NULL, &err, "ip netns add %s", name);
	if (ret) {
		printf("skip: cannot make a network namespace (ip netns add: %d): %s\n", ret,
		       err ? err : "");
		free(err);
		exit(NH_SKIP);
	}
	free(err);
	nh_ns_remove(name);
	atexit(nh_atexit);
}

int nh_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return nh_fail(EINVAL, "not a numeric address: %s", ip);
}

const char *nh_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	return tu_addr_str(sa, buf, len);
}

int nh_listen(const char *ns, const char *ip, uint16_t port, bool transparent)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, ret = nh_sockaddr(&ss, &len, ip, port);

	if (ret)
		return ret;
	fd = nh_socket(ns, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto fail;
	/* Before bind: the kernel hands TPROXY'd packets only to transparent sockets. */
	if (transparent && ss.ss_family == AF_INET &&
	    setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)))
		goto fail;
	if (transparent && ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)))
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 4096))
		goto fail;
	return fd;
fail:
	ret = nh_fail(errno, "listen %s port %u in %s: %m", ip, port, ns ? ns : "home");
	close(fd);
	return ret;
}

int nh_connect_start(const char *ns, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ret = nh_sockaddr(&ss, &len, ip, port);

	if (ret)
		return ret;
	fd = nh_socket(ns, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		ret = nh_fail(errno, "connect %s port %u: %m", ip, port);
		close(fd);
		return ret;
	}
	return fd;
}

int nh_connect_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	long long deadline = nh_now_ms() + timeout_ms;
	socklen_t len = sizeof(int);
	int soerr = 0, n;

	do {
		long long left = deadline - nh_now_ms();

		n = poll(&pfd, 1, left > 0 ? (int)left : 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return nh_fail(errno, "poll: %m");
	if (!n)
		return nh_fail(ETIMEDOUT, "connect timed out after %d ms", timeout_ms);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
		return nh_fail(errno, "SO_ERROR: %m");
	if (soerr)
		return nh_fail(soerr, "connect: %s", strerror(soerr));
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) ? nh_fail(errno, "fcntl: %m")
								    : 0;
}

int nh_connect(const char *ns, const char *ip, uint16_t port, int timeout_ms)
{
	int fd = nh_connect_start(ns, ip, port), ret;

	if (fd < 0)
		return fd;
	ret = nh_connect_wait(fd, timeout_ms);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int nh_accept(int lfd, int timeout_ms)
{
	long long deadline = nh_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		long long left = deadline - nh_now_ms();
		int fd;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return nh_fail(errno, "accept: %m");
		if (left <= 0)
			return nh_fail(ETIMEDOUT, "accept timed out after %d ms", timeout_ms);
		poll(&pfd, 1, (int)left);
	}
}

int nh_drain(int lfd)
{
	int n = 0, fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

ssize_t nh_read_eof(int fd, char *buf, size_t cap, int timeout_ms)
{
	long long deadline = nh_now_ms() + timeout_ms;
	size_t got = 0;
	char sink[4096];

	buf[0] = '\0';
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - nh_now_ms();
		size_t room = got < cap - 1 ? cap - 1 - got : 0;
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		if (room)
			n = recv(fd, buf + got, room, MSG_DONTWAIT);
		else
			n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0)
			return (ssize_t)got;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if (room) {
			got += (size_t)n;
			buf[got] = '\0';
		}
	}
}

int nh_count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

char *nh_slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 0;
	char *buf = NULL, *more;

	if (fd < 0)
		return NULL;
	/*
	 * Read to EOF, not to the size the file reports: a procfs file
	 * reports 0, and a log another process appends to may grow.
	 */
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			more = realloc(buf, cap);
			if (!more)
				goto fail;
			buf = more;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

int nh_send_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = poll(&pfd, 1, timeout_ms);
			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0)
			return -errno;
		/* send() of a non-empty buffer never returns 0; do not spin if it did. */
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t nh_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	long long deadline = nh_now_ms() + timeout_ms;
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - nh_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return got ? (ssize_t)got : -errno;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int nh_log_accept(int log, int fd, const struct sockaddr *peer_sa, char *peer, size_t len)
{
	struct sockaddr_storage ls;
	socklen_t ll = sizeof(ls);
	char p[80], local[80], line[200];

	if (getsockname(fd, (struct sockaddr *)&ls, &ll))
		return -errno;
	nh_addr_str(peer_sa, p, sizeof(p));
	nh_addr_str((struct sockaddr *)&ls, local, sizeof(local));
	if (peer)
		snprintf(peer, len, "%s", p);
	/* One write per line with O_APPEND: lines never interleave. */
	snprintf(line, sizeof(line), "peer=%s local=%s\n", p, local);
	if (write(log, line, strlen(line)) < 0)
		return -errno;
	return 0;
}

int nh_exec_logged(void *arg)
{
	const struct nh_exec *e = arg;
	int fd = open(e->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return 126;
	dup2(fd, 1);
	dup2(fd, 2);
	if (e->nofile) {
		struct rlimit rl = { e->nofile, e->nofile };

		if (setrlimit(RLIMIT_NOFILE, &rl))
			return 125;
	}
	execv(e->argv[0], (char *const *)e->argv);
	return 127;
}

/*
 * Field 22 of /proc/PID/stat, the start time in clock ticks since boot: it
 * tells a pid from a later reuse of it; 0 when the process is gone.
 */
static unsigned long long nh_start_time(pid_t pid)
{
	char path[64], *s, *p;
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = nh_slurp(path);
	if (!s)
		return 0;
	/* The command name in parentheses may hold spaces: count after the last ')'. */
	p = strrchr(s, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %*d %*d %*d %llu",
			 &v) != 1)
		v = 0;
	free(s);
	return v;
}

int nh_registry_add(const char *path, pid_t pid)
{
	FILE *reg = fopen(path, "ae");
	int ret = 0;

	if (!reg)
		return -errno;
	fprintf(reg, "%d %llu\n", (int)pid, nh_start_time(pid));
	if (fclose(reg))
		ret = -errno;
	return ret;
}

void nh_registry_sweep(const char *path)
{
	FILE *reg = fopen(path, "re");
	unsigned long long st;
	int pid;

	if (!reg)
		return;
	/* The same start time: the very process, not a later one given its pid. */
	while (fscanf(reg, "%d %llu", &pid, &st) == 2)
		if (pid > 0 && st && nh_start_time(pid) == st)
			kill(pid, SIGKILL);
	fclose(reg);
}
