// SPDX-License-Identifier: MIT
/*
 * tpin-load against servers written here, on loopback, with no privilege:
 * every connection answered is counted ok, a port where nothing listens
 * counts refused, a listener that never answers counts timeouts, a server
 * that closes without a byte counts empty, and bad usage exits 2 naming the
 * value. TPIN_LOAD (set by meson) or argv[1] names the binary under test.
 */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "result.h"

static const char *tpin_load;

/*
 * ANSWER_HOLD writes the answer in two parts (headers, then body) and keeps
 * the connection open until the client closes (at most a second).
 */
enum serve_mode { ANSWER, CLOSE_EMPTY, ANSWER_HOLD };

struct server {
	int fd;
	uint16_t port;
	enum serve_mode mode;
	volatile bool stop;
	pthread_t thread;
	int served;
	/* Distinct client addresses seen (IPv4, for --bind-range). */
	uint32_t peers[8];
	int npeers;
};

/* A listening TCP socket on loopback (v4 or v6), port chosen by the kernel. */
static int listen_loopback(int family, uint16_t *port, bool do_listen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || (do_listen && listen(fd, 64)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					 : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void note_peer(struct server *s, const struct sockaddr_storage *peer)
{
	uint32_t a;

	if (peer->ss_family != AF_INET)
		return;
	a = ((const struct sockaddr_in *)peer)->sin_addr.s_addr;
	for (int i = 0; i < s->npeers; i++)
		if (s->peers[i] == a)
			return;
	if (s->npeers < 8)
		s->peers[s->npeers++] = a;
}

/* Serves one connection at a time until told to stop; polls so it can stop. */
static void *serve(void *arg)
{
	static const char answer[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
	static const size_t body = 3;
	struct server *s = arg;

	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct timeval tv = { .tv_sec = 1 };
		char buf[512];
		size_t got = 0;
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(s->fd, (struct sockaddr *)&peer, &plen);
		if (c < 0)
			continue;
		note_peer(s, &peer);
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (got < sizeof(buf) - 1) {
			ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		if (s->mode == ANSWER && write(c, answer, sizeof(answer) - 1) < 0)
			perror("write");
		if (s->mode == ANSWER_HOLD) {
			/* Headers alone must not count as the whole answer. */
			if (write(c, answer, sizeof(answer) - 1 - body) < 0)
				perror("write");
			usleep(20000);
			if (write(c, answer + sizeof(answer) - 1 - body, body) < 0)
				perror("write");
			while (read(c, buf, sizeof(buf)) > 0)
				;
		}
		s->served++;
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, int family, enum serve_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->fd = listen_loopback(family, &s->port, true);
	ck_assert_msg(s->fd >= 0, "listen: %s", strerror(-s->fd));
	ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* Runs tpin-load with args; returns its exit status, output in *out (malloc'd). */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
	char args[1024], cmd[1400];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	va_list ap;
	FILE *p;
	int st;

	ck_assert_ptr_nonnull(buf);
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", tpin_load, args);
	p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "popen %s", cmd);
	for (;;) {
		size_t n;

		if (len + 1024 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, p);
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	st = pclose(p);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The last line of output, parsed as the result object. */
static json_t *result_of(const char *out)
{
	const char *last = out, *nl;
	json_t *v;

	while ((nl = strchr(last, '\n')) && nl[1])
		last = nl + 1;
	v = result_parse(last);
	ck_assert_str_eq(result_str(v, "type"), "result");
	return v;
}

START_TEST(test_ok_counts_every_answer)
{
	struct server s;
	json_t *v, *lat;
	char *out;

	server_start(&s, AF_INET, ANSWER);
	ck_assert_int_eq(run(&out, "-c 4 -n 50 --json 127.0.0.1:%u", s.port), 0);
	server_stop(&s);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "ok"), 50);
	ck_assert_int_eq(result_num(v, "failed"), 0);
	ck_assert_int_eq(result_num(v, "started"), 50);
	ck_assert_int_eq(result_num(v, "inflight"), 0);
	ck_assert_int_le(result_num(v, "peak_inflight"), 4);
	ck_assert_int_eq(s.served, 50);
	lat = json_object_get(v, "latency_ms");
	ck_assert_int_eq(result_num(lat, "n"), 50);
	/* Percentiles are ordered and never above the maximum. */
	ck_assert(json_number_value(json_object_get(lat, "p50")) <=
		  json_number_value(json_object_get(lat, "p99")));
	ck_assert(json_number_value(json_object_get(lat, "p99")) <=
		  json_number_value(json_object_get(lat, "max")));
	json_decref(v);
	free(out);
}
END_TEST

START_TEST(test_ipv6)
{
	struct server s;
	json_t *v;
	char *out;
	uint16_t port;
	int fd = listen_loopback(AF_INET6, &port, true);

	if (fd < 0)
		return; /* no IPv6 loopback here: nothing to test */
	close(fd);
	server_start(&s, AF_INET6, ANSWER);
	ck_assert_int_eq(run(&out, "-c 2 -n 10 --json '[::1]:%u'", s.port), 0);
	server_stop(&s);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "ok"), 10);
	json_decref(v);
	free(out);
}
END_TEST

START_TEST(test_refused)
{
	json_t *v;
	uint16_t port;
	char *out;
	/* Bound but not listening: the port stays ours and every SYN gets a RST. */
	int fd = listen_loopback(AF_INET, &port, false);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(run(&out, "-c 2 -n 10 --json 127.0.0.1:%u", port), 0);
	close(fd);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "refused"), 10);
	ck_assert_int_eq(result_num(v, "failed"), 10);
	ck_assert_int_eq(result_num(v, "ok"), 0);
	json_decref(v);
	free(out);
}
END_TEST

START_TEST(test_silent_listener_times_out)
{
	json_t *v;
	uint16_t port;
	char *out;
	/* Listening, never accepting: the handshake completes, no answer ever comes. */
	int fd = listen_loopback(AF_INET, &port, true);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(run(&out, "-c 3 -n 3 -t 300ms --json 127.0.0.1:%u", port), 0);
	close(fd);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "timeout"), 3);
	ck_assert_int_eq(result_num(v, "ok"), 0);
	/* Bounded by the timeout, not by anything longer. */
	ck_assert_int_lt(result_num(v, "elapsed_ms"), 3000);
	json_decref(v);
	free(out);
}
END_TEST

START_TEST(test_empty_answer)
{
	struct server s;
	json_t *v;
	char *out;

	server_start(&s, AF_INET, CLOSE_EMPTY);
	ck_assert_int_eq(run(&out, "-c 1 -n 5 --json 127.0.0.1:%u", s.port), 0);
	server_stop(&s);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "empty"), 5);
	ck_assert_int_eq(result_num(v, "ok"), 0);
	json_decref(v);
	free(out);
}
END_TEST

START_TEST(test_rate_and_progress)
{
	struct server s;
	json_t *v;
	char *out, *line;
	int progress = 0;

	server_start(&s, AF_INET, ANSWER);
	ck_assert_int_eq(
		run(&out, "-r 100/s -d 1s --progress -i 200 --json -l t 127.0.0.1:%u", s.port), 0);
	server_stop(&s);
	for (line = out; (line = strstr(line, "\"type\":\"progress\"")); line++)
		progress++;
	/* One line per 200 ms over a second, and a last one at the end. */
	ck_assert_int_ge(progress, 4);
	ck_assert_int_le(progress, 7);
	v = result_of(out);
	ck_assert_str_eq(result_str(v, "label"), "t");
	/* 100/s for 1 s: the clock decides how many, not the answers. */
	ck_assert_int_ge(result_num(v, "started"), 95);
	ck_assert_int_le(result_num(v, "started"), 101);
	ck_assert_int_eq(result_num(v, "ok"), result_num(v, "started"));
	json_decref(v);
	free(out);
}
END_TEST

START_TEST(test_bind_range)
{
	struct server s;
	json_t *v;
	char *out;

	server_start(&s, AF_INET, ANSWER);
	ck_assert_int_eq(
		run(&out, "-c 1 -n 6 --bind-range 127.0.0.2-127.0.0.4 --json 127.0.0.1:%u", s.port),
		0);
	server_stop(&s);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "ok"), 6);
	ck_assert_int_eq(s.npeers, 3);
	json_decref(v);
	free(out);
}
END_TEST

/*
 * --http closes once the answer is complete, as ab and wrk do, not when the
 * server closes: a server that holds the connection for a second after its
 * answer costs nothing. Without --http the same run waits out the hold.
 */
START_TEST(test_http_closes_after_the_answer)
{
	struct server s;
	json_t *v;
	char *out;

	server_start(&s, AF_INET, ANSWER_HOLD);
	ck_assert_int_eq(run(&out, "-c 1 -n 4 --http --json 127.0.0.1:%u", s.port), 0);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "ok"), 4);
	ck_assert_int_eq(result_num(v, "bytes_in"), 4 * 41);
	/* Four answers of 20 ms each, far from four holds of a second. */
	ck_assert_int_lt(result_num(v, "elapsed_ms"), 2000);
	json_decref(v);
	free(out);
	ck_assert_int_eq(run(&out, "-c 1 -n 1 --json 127.0.0.1:%u", s.port), 0);
	server_stop(&s);
	v = result_of(out);
	ck_assert_int_eq(result_num(v, "ok"), 1);
	ck_assert_int_ge(result_num(v, "elapsed_ms"), 900);
	json_decref(v);
	free(out);
}
END_TEST

/* Bad usage exits 2 and the message names the offending value. */
static void usage_fails(const char *args, const char *want)
{
	char *out;
	int rc = run(&out, "%s", args);

	ck_assert_msg(rc == 2, "tpin-load %s: exit %d, want 2: %s", args, rc, out);
	ck_assert_msg(strstr(out, want), "tpin-load %s: \"%s\" not in: %s", args, want, out);
	free(out);
}

START_TEST(test_usage)
{
	usage_fails("-c 1 127.0.0.1:9", "unbounded");
	usage_fails("-n 1 127.0.0.1:9", "--rate or --concurrency");
	usage_fails("-r fast -n 1 127.0.0.1:9", "\"fast\"");
	usage_fails("-r 0 -n 1 127.0.0.1:9", "\"0\"");
	usage_fails("-c 1 -d 3x 127.0.0.1:9", "\"3x\"");
	usage_fails("-c 1 -d 25h 127.0.0.1:9", "\"25h\"");
	usage_fails("-c 1 -n 1 ::1:80", "\"::1:80\"");
	usage_fails("-c 1 -n 1 127.0.0.1:0", "\"127.0.0.1:0\"");
	usage_fails("-c 1 -n 1 --bind ::1 127.0.0.1:9", "\"::1\"");
	usage_fails("-c 1 -n 1 --bind-range 127.0.0.9-127.0.0.1 127.0.0.1:9",
		    "127.0.0.9-127.0.0.1");
	usage_fails("-c 1 -n 1 -p 'a\\q' 127.0.0.1:9", "--payload");
	usage_fails("-c 1 -n 1 -i 100 127.0.0.1:9", "--progress");
}
END_TEST

START_TEST(test_help)
{
	char *out;

	ck_assert_int_eq(run(&out, "--help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "--rate"));
	ck_assert_ptr_nonnull(strstr(out, "timeout"));
	free(out);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("tpin-load");
	TCase *tc = tcase_create("load");
	SRunner *sr;
	int failed;

	tpin_load = argc > 1 ? argv[1] : getenv("TPIN_LOAD");
	if (!tpin_load) {
		fprintf(stderr, "test_load: set TPIN_LOAD or pass the tpin-load binary\n");
		return 1;
	}
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ok_counts_every_answer);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_silent_listener_times_out);
	tcase_add_test(tc, test_empty_answer);
	tcase_add_test(tc, test_rate_and_progress);
	tcase_add_test(tc, test_bind_range);
	tcase_add_test(tc, test_http_closes_after_the_answer);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_help);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
