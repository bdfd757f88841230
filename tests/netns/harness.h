/* SPDX-License-Identifier: MIT */
/*
 * Network-namespace harness for the root test suites (tpin-init's and the
 * proxy's). It makes uniquely named namespaces, joins a client and a pod
 * namespace with a veth, runs commands and functions inside a namespace,
 * creates sockets in one, reads and writes per-namespace sysctls, and cleans
 * up everything it made on every exit path.
 *
 * Cleanup is layered because Check runs each test in a forked child that may
 * fail an assertion (exit) or be killed on timeout (no cleanup at all):
 *  - each process deletes the namespaces it created (nh_cleanup(), also run
 *    from atexit), never those of its parent;
 *  - the main process sweeps every namespace under its own name prefix
 *    (tpt<main pid>-...) at exit, which catches killed children;
 *  - helper processes get PR_SET_PDEATHSIG so they die with their test.
 * Every function returns 0 (or a descriptor/pid) on success and a negative
 * errno on failure, with a message retrievable by nh_err().
 */
#ifndef TPIN_TESTS_HARNESS_H
#define TPIN_TESTS_HARNESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#define NH_NAME_MAX 64

/* Documentation addresses of the veth pair made by nh_pair_new(). */
#define NH_CLIENT4 "198.51.100.1"
#define NH_POD4	   "198.51.100.2"
#define NH_CLIENT6 "2001:db8:1::1"
#define NH_POD6	   "2001:db8:1::2"

/* Exit status that meson (and tools/test) count as a skipped test. */
#define NH_SKIP 77

struct nh_pair {
	char client[NH_NAME_MAX];
	char pod[NH_NAME_MAX];
};

/*
 * Call first in main(): exits NH_SKIP unless the process is root and can
 * create a named network namespace; sets up the exit-time sweep.
 */
void nh_init(void);

/* Message of the last failure in this process. */
const char *nh_err(void);

/*
 * New empty namespace, named tpt<main pid>-<pid>-<tag><n>; its lo is left
 * down, as a fresh namespace has it. name must hold NH_NAME_MAX bytes.
 */
int nh_ns_new(char *name, const char *tag);
/* Deletes a namespace made by nh_ns_new() and forgets it. */
int nh_ns_del(const char *name);
/* Path of a named namespace (/run/netns/NAME) into buf. */
const char *nh_ns_path(const char *name, char *buf, size_t len);
/* Brings lo up inside ns. */
int nh_lo_up(const char *ns);

/*
 * Client and pod namespaces joined by a veth (eth0 in both) with the NH_*
 * addresses (v6 with nodad, usable at once); lo up in both.
 */
int nh_pair_new(struct nh_pair *p, const char *tag);
void nh_pair_del(struct nh_pair *p);

/*
 * Runs `/bin/sh -c CMD` inside ns (NULL: the namespace the test started
 * in), waiting at most 60 s. Returns its exit status (0..255), 128 + signal
 * when killed, or a negative errno. *out and *err (either may be NULL) get
 * malloc'd NUL-terminated copies of stdout and stderr; free them.
 */
int nh_sh(const char *ns, char **out, char **err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Runs fn(arg) in a forked child inside ns; returns its exit status. */
int nh_call(const char *ns, int (*fn)(void *), void *arg);
/* Same without waiting: returns the child's pid. The child dies with us. */
pid_t nh_spawn(const char *ns, int (*fn)(void *), void *arg);
/* Sends sig (if non-zero) to pid, reaps it, returns its wait status. */
int nh_reap(pid_t pid, int sig);

/*
 * Moves the calling thread into ns (NULL: back to where the test started).
 * A socket belongs to the namespace it was created in, so one process can
 * hold sockets of both ends: enter, socket(), leave.
 */
int nh_enter(const char *ns);
int nh_socket(const char *ns, int domain, int type, int protocol);

/*
 * Sysctls of ns (NULL: the initial one), key in dotted or slash form
 * ("net.ipv4.ip_local_port_range"). Read trims the trailing newline.
 */
int nh_sysctl_read(const char *ns, const char *key, char *buf, size_t len);
int nh_sysctl_write(const char *ns, const char *key, const char *val);
/* Remembers the current value; nh_cleanup() writes it back. */
int nh_sysctl_save(const char *ns, const char *key);
/* Reads a sysctl as a number; -ENOENT when the file does not exist. */
int nh_sysctl_long(const char *ns, const char *key, long *val);

/* Restores saved sysctls, then deletes this process's namespaces. */
void nh_cleanup(void);

/* Socket helpers. Addresses are numeric; port in host order. */
int nh_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port);
/* "ip:port" / "[ip6]:port" of a socket address into buf. */
const char *nh_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/*
 * Listening TCP socket in ns on ip:port (SO_REUSEADDR, non-blocking, v6
 * sockets v6-only); transparent sets IP_TRANSPARENT/IPV6_TRANSPARENT before
 * bind, as a TPROXY listener must.
 */
int nh_listen(const char *ns, const char *ip, uint16_t port, bool transparent);
/*
 * Connects from ns to ip:port, waiting at most timeout_ms. Returns the
 * connected (blocking) socket, -ETIMEDOUT, or the connect error.
 */
int nh_connect(const char *ns, const char *ip, uint16_t port, int timeout_ms);
/* Starts a non-blocking connect and returns the socket at once. */
int nh_connect_start(const char *ns, const char *ip, uint16_t port);
/* Waits for a started connect: 0, -ETIMEDOUT or the connect error. */
int nh_connect_wait(int fd, int timeout_ms);
/* Accepts one connection within timeout_ms (blocking socket) or -ETIMEDOUT. */
int nh_accept(int lfd, int timeout_ms);
/* Number of connections waiting in a listener's queue (drained and closed). */
int nh_drain(int lfd);

/*
 * nh_raise_nofile - lift the soft RLIMIT_NOFILE to the hard limit, for a
 * suite that opens many sockets (its children inherit it). Returns 0 or
 * -errno; a failure leaves the limit as it was.
 */
int nh_raise_nofile(void);

/* Monotonic milliseconds. */
long long nh_now_ms(void);
/* Sleeps @ms milliseconds, through signals. */
void nh_sleep_ms(long ms);

/*
 * nh_read_eof - read @fd until EOF within @timeout_ms. Returns the bytes
 * read (kept in @buf up to @cap - 1, NUL-terminated), -ETIMEDOUT without
 * EOF, or -errno on a reset.
 */
ssize_t nh_read_eof(int fd, char *buf, size_t cap, int timeout_ms);

/* nh_count - how many times @needle occurs in @hay, not overlapping. */
int nh_count(const char *hay, const char *needle);

/*
 * nh_slurp - the whole file at @path, read to EOF (procfs files too),
 * NUL-terminated (free it); NULL when it cannot be opened or read.
 */
char *nh_slurp(const char *path);

/*
 * nh_send_all - send all @len bytes of @buf on the socket @fd, waiting at
 * most @timeout_ms (-1: without limit) each time the send buffer is full; a
 * blocking or a non-blocking socket alike, never raising SIGPIPE. Returns 0,
 * -ETIMEDOUT, or the -errno of the failed send.
 */
int nh_send_all(int fd, const void *buf, size_t len, int timeout_ms);

/*
 * nh_read_full - read exactly @len bytes within @timeout_ms. Returns the
 * bytes read (fewer on EOF or timeout), or -errno when a reset came before
 * any byte.
 */
ssize_t nh_read_full(int fd, void *buf, size_t len, int timeout_ms);

/*
 * nh_log_accept - the test applications' record of whom they saw: appends
 * "peer=P local=L\n" for the accepted socket @fd to @log (opened O_APPEND)
 * in one write, so lines of concurrent writers never interleave. @peer_sa is
 * the address accept() gave: a peer that has already reset has none left to
 * ask for. @peer (NULL: not wanted) gets P, @len bytes at most. Returns 0 or
 * -errno.
 */
int nh_log_accept(int log, int fd, const struct sockaddr *peer_sa, char *peer, size_t len);

/* Arguments of nh_exec_logged(). */
struct nh_exec {
	const char *out;      /* stdout and stderr are appended here */
	rlim_t nofile;	      /* RLIMIT_NOFILE of the program; 0: inherited */
	const char *argv[48]; /* argv[0] is the program's path; NULL-terminated */
};

/*
 * nh_exec_logged - for nh_spawn(): runs the program a struct nh_exec names.
 * Returns (as the child's exit status) 126 when the output file cannot be
 * opened, 125 when the limit cannot be set, 127 when the exec fails.
 */
int nh_exec_logged(void *arg);

/*
 * A registry of started processes, a file of "pid start-time" lines, for a
 * process that may outlive its test: one that changed user has lost
 * PR_SET_PDEATHSIG. nh_registry_add() appends @pid (0 or -errno);
 * nh_registry_sweep(), run by the main process at its end, kills every
 * registered process still alive with the start time it was registered
 * with, so a later process that got the same pid is left alone.
 */
int nh_registry_add(const char *path, pid_t pid);
void nh_registry_sweep(const char *path);

#endif
