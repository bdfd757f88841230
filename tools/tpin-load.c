// SPDX-License-Identifier: MIT
/*
 * tpin-load: a load generator of short TCP connections, on libuv.
 *
 * Each connection connects, sends a small request, reads the answer until
 * EOF (with --http, until the HTTP answer is complete) and closes.
 * Connections start at a fixed rate (--rate) or keep a fixed number in
 * flight (--concurrency); every outcome is counted (ok, refused, reset,
 * timed out, closed without an answer, other errors by name), and the
 * latency of the good ones goes into a log-linear histogram, so percentiles
 * cost constant memory however long the run. A run is always bounded, by
 * --count, --duration or both; errors such as EMFILE are counted, never fatal.
 *
 * About 1,000 lines, one file: one program whose parts (options, the
 * connection state machine, the histogram, the report) serve nothing else.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "tpin/macros.h"
#include "util.h"

#define MAX_COUNT	 1000000000ULL
#define MAX_DURATION_MS	 (24ULL * 3600 * 1000)
#define MAX_TIMEOUT_MS	 (600ULL * 1000)
#define MAX_RATE	 1000000.0
#define MAX_CONCURRENCY	 1000000UL
#define MAX_BINDS	 65536UL
#define MAX_PAYLOAD	 65536
#define MAX_ERROR_NAMES	 16
#define DEFAULT_TIMEOUT	 5000
#define DEFAULT_INTERVAL 1000
#define DEFAULT_PAYLOAD	 "GET / HTTP/1.0\r\n\r\n"
#define READ_BUF	 4096

/*
 * Log-linear histogram of microseconds: values below 16 have a bucket each;
 * above, every power of two is split into 16 equal buckets, so a bucket is at
 * most 1/16 (6.25 %) wider than its lower bound.
 */
#define HIST_SUB      16
#define HIST_SUB_BITS 4
#define HIST_MAX_EXP  40
#define HIST_BUCKETS  (HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t n;
	uint64_t sum;
	uint64_t max;
	uint64_t bucket[HIST_BUCKETS];
};

enum outcome { OK, REFUSED, RESET, TIMEOUT, EMPTY, ERROR };

struct counters {
	uint64_t attempted; /* started + skipped */
	uint64_t started;
	uint64_t ok, refused, reset, timeout, empty, error;
	uint64_t skipped; /* rate mode: the concurrency cap was full */
	uint64_t inflight, peak_inflight;
	uint64_t bytes_in, bytes_out;
};

struct error_name {
	int code;
	uint64_t n;
};

struct opts {
	struct sockaddr_storage target;
	char target_str[INET6_ADDRSTRLEN + 8];
	double rate;
	unsigned long concurrency;
	uint64_t count;	      /* 0: no count bound */
	uint64_t duration_ms; /* 0: no time bound */
	uint64_t timeout_ms;
	uint64_t interval_ms;
	bool progress;
	bool json;
	bool http;
	const char *label;
	char *payload;
	size_t payload_len;
	/* Source addresses, tried in turn: a range of consecutive addresses. */
	unsigned char bind_first[16];
	unsigned long nbinds;
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	uv_write_t write;
	uint64_t t0;
	uint64_t got;
	/* --http: the answer's length once its headers are in, 0 until then or without one. */
	uint64_t want;
	bool headers_done;
	int open_handles;
	bool done;
	/* --http: the answer from its first byte until its headers are complete. */
	char buf[READ_BUF];
};

static struct opts o;
static struct counters cnt;
static struct hist lat;
static struct error_name errnames[MAX_ERROR_NAMES];
static uv_loop_t *loop;
static uv_timer_t tick, kick, progress;
static uv_signal_t sigint, sigterm;
static uint64_t t_start; /* uv_hrtime() at the start, ns */
static uint64_t bind_next;
static bool stopping, interrupted;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tpin-load [OPTION]... ADDR:PORT\n"
		"\n"
		"Opens many short TCP connections to ADDR:PORT (IPv4, or [IPv6]:PORT). Each\n"
		"one connects, sends a small request, reads the answer until the server\n"
		"closes, and is counted as one of:\n"
		"  ok       answer received, then EOF (--http: the whole answer)\n"
		"  refused  connection refused (RST to the SYN: nothing listens)\n"
		"  reset    reset after connecting (or a broken pipe)\n"
		"  timeout  not finished within --timeout (a dropped SYN ends up here)\n"
		"  empty    closed by the server without a byte of answer\n"
		"  error    anything else, by name (EMFILE, EADDRNOTAVAIL, ...)\n"
		"The latency of ok connections (connect to EOF, or to the answer's last\n"
		"byte with --http) goes into a histogram.\n"
		"\n"
		"Load shape (one of them, or both):\n"
		"  -r, --rate N[/s]         start N connections per second, whatever the\n"
		"                           answers do (an open loop, as real clients are)\n"
		"  -c, --concurrency N      keep N connections in flight (a closed loop);\n"
		"                           with --rate, a cap: starts beyond it are skipped\n"
		"Bounds (at least one; the run ends at the first reached, then waits for\n"
		"the connections in flight, at most --timeout):\n"
		"  -n, --count N            start at most N connections (at most 1e9)\n"
		"  -d, --duration D         start connections for D (at most 24h)\n"
		"Connections:\n"
		"  -t, --timeout D          give up on a connection after D (default 5s)\n"
		"  -p, --payload STR        request to send, with \\r \\n \\t \\\\ escapes\n"
		"                           (default \"GET / HTTP/1.0\\r\\n\\r\\n\")\n"
		"      --http               the answer is HTTP/1.x: close as soon as it is\n"
		"                           complete (headers and Content-Length bytes), as\n"
		"                           ab and wrk do, without waiting for the server's\n"
		"                           FIN (an answer without Content-Length ends at EOF)\n"
		"  -b, --bind ADDR          connect from this source address\n"
		"      --bind-range A-B     connect from the addresses A..B in turn (at most\n"
		"                           65536), to spread connections over source addresses\n"
		"Output:\n"
		"  -j, --json               print the result as one JSON object\n"
		"      --progress           print one JSON line of running totals per interval\n"
		"  -i, --interval MS        the interval of --progress (default 1000)\n"
		"  -l, --label NAME         name this run in JSON output\n"
		"  -h, --help               this help\n"
		"\n"
		"Durations: 250ms, 10s, 2m; a bare number is seconds.\n"
		"SIGINT or SIGTERM stops starting connections; the result is printed as usual.\n"
		"Exit status: 0 the run completed (failed connections are results, not\n"
		"errors), 1 it could not run, 2 bad usage (the message names the value).\n"
		"\n"
		"Examples:\n"
		"  tpin-load --rate 200/s --duration 20s --timeout 2s 198.51.100.2:8080\n"
		"  tpin-load -c 64 -n 100000 --json [2001:db8:1::2]:8080\n"
		"  tpin-load -r 500 -d 10s --progress -i 250 --json 203.0.113.2:8080\n");
}

static void bad(const char *what, const char *val, const char *why)
{
	fprintf(stderr, "tpin-load: bad %s \"%s\": %s (see --help)\n", what, val, why);
	exit(2);
}

/* True when @s is UTF-8, as a JSON string must be. */
static bool utf8_ok(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

/* "250ms", "10s", "2m", "1h" or bare seconds, into milliseconds. */
static int parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1000 } };
	double v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || !isfinite(v))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (!strcmp(end, units[i].suffix)) {
			v *= units[i].mult;
			if (v > (double)MAX_DURATION_MS)
				return -ERANGE;
			*ms = (uint64_t)llround(v);
			return 0;
		}
	}
	return -EINVAL;
}

/* One numeric address of the target's family into 16 bytes (IPv4: the first 4). */
static int parse_ip(const char *s, int family, unsigned char out[16])
{
	memset(out, 0, 16);
	return uv_inet_pton(family, s, out) ? -EINVAL : 0;
}

static size_t addr_bytes(void)
{
	return o.target.ss_family == AF_INET6 ? 16 : 4;
}

/* last - first + 1 for big-endian addresses; 0 when last < first or too many. */
static unsigned long range_size(const unsigned char *first, const unsigned char *last)
{
	size_t n = addr_bytes();
	uint64_t diff = 0;
	int borrow = 0;

	/* The difference must fit in the low 4 bytes: anything above is too wide. */
	for (size_t i = n; i-- > 0;) {
		int d = (int)last[i] - (int)first[i] - borrow;

		borrow = d < 0;
		if (borrow)
			d += 256;
		if (n - 1 - i < 4)
			diff |= (uint64_t)d << (8 * (n - 1 - i));
		else if (d)
			return 0;
	}
	if (borrow || diff >= MAX_BINDS)
		return 0;
	return (unsigned long)diff + 1;
}

/* Bind address number i (of the range) into ss, port 0. */
static void bind_addr(uint64_t i, struct sockaddr_storage *ss)
{
	unsigned char a[16];
	size_t n = addr_bytes();
	uint64_t carry = i % o.nbinds;

	memcpy(a, o.bind_first, sizeof(a));
	for (size_t k = n; k-- > 0 && carry;) {
		carry += a[k];
		a[k] = (unsigned char)(carry & 0xff);
		carry >>= 8;
	}
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = o.target.ss_family;
	if (n == 16)
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, a, 16);
	else
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, a, 4);
}

static void parse_bind(const char *arg, bool range)
{
	char first[INET6_ADDRSTRLEN], last[INET6_ADDRSTRLEN];
	unsigned char lb[16];
	const char *dash = range ? strchr(arg, '-') : NULL;
	int family = o.target.ss_family;

	if (range && !dash)
		bad("--bind-range", arg, "want FIRST-LAST, e.g. 198.51.100.10-198.51.100.20");
	if (!range) {
		snprintf(first, sizeof(first), "%s", arg);
		snprintf(last, sizeof(last), "%s", arg);
	} else {
		if ((size_t)(dash - arg) >= sizeof(first) || strlen(dash + 1) >= sizeof(last))
			bad("--bind-range", arg, "not two addresses");
		memcpy(first, arg, (size_t)(dash - arg));
		first[dash - arg] = '\0';
		snprintf(last, sizeof(last), "%s", dash + 1);
	}
	if (parse_ip(first, family, o.bind_first) || parse_ip(last, family, lb))
		bad(range ? "--bind-range" : "--bind", arg,
		    family == AF_INET6 ? "not IPv6 addresses, as the target is"
				       : "not IPv4 addresses, as the target is");
	o.nbinds = range_size(o.bind_first, lb);
	if (!o.nbinds)
		bad("--bind-range", arg, "empty, reversed, or more than 65536 addresses");
}

/* Unescapes \r \n \t \\ \0 in place; -EINVAL on any other escape. */
static int unescape(char *s, size_t *len)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r != '\\') {
			*w++ = *r;
			continue;
		}
		switch (*++r) {
		case 'r':
			*w++ = '\r';
			break;
		case 'n':
			*w++ = '\n';
			break;
		case 't':
			*w++ = '\t';
			break;
		case '\\':
			*w++ = '\\';
			break;
		case '0':
			*w++ = '\0';
			break;
		default:
			return -EINVAL;
		}
	}
	*len = (size_t)(w - s);
	return 0;
}

static void parse_args(int argc, char **argv)
{
	enum { OPT_PROGRESS = 256, OPT_BIND_RANGE, OPT_HTTP };
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ "payload", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "bind-range", required_argument, NULL, OPT_BIND_RANGE },
		{ "http", no_argument, NULL, OPT_HTTP },
		{ "json", no_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "interval", required_argument, NULL, 'i' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bind_arg = NULL;
	bool bind_range = false, have_interval = false;
	uint64_t v;
	char *end;
	int opt;

	o.timeout_ms = DEFAULT_TIMEOUT;
	o.interval_ms = DEFAULT_INTERVAL;
	while ((opt = getopt_long(argc, argv, "r:c:n:d:t:p:b:ji:l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			errno = 0;
			o.rate = strtod(optarg, &end);
			if (*optarg < '0' || *optarg > '9' || errno || (*end && strcmp(end, "/s")))
				bad("--rate", optarg,
				    "want connections per second, e.g. 200 or 200/s");
			if (!(o.rate > 0) || o.rate > MAX_RATE)
				bad("--rate", optarg, "must be above 0 and at most 1000000/s");
			break;
		case 'c':
			if (tu_parse_num(optarg, 1, MAX_CONCURRENCY, &v))
				bad("--concurrency", optarg, "want 1 to 1000000");
			o.concurrency = (unsigned long)v;
			break;
		case 'n':
			if (tu_parse_num(optarg, 1, MAX_COUNT, &o.count))
				bad("--count", optarg, "want 1 to 1000000000");
			break;
		case 'd':
			if (parse_duration(optarg, &o.duration_ms) || o.duration_ms == 0)
				bad("--duration", optarg,
				    "want a duration above 0 and at most 24h");
			break;
		case 't':
			if (parse_duration(optarg, &o.timeout_ms) || o.timeout_ms == 0 ||
			    o.timeout_ms > MAX_TIMEOUT_MS)
				bad("--timeout", optarg, "want a duration above 0 and at most 10m");
			break;
		case 'p':
			free(o.payload);
			o.payload = strdup(optarg);
			if (!o.payload || unescape(o.payload, &o.payload_len))
				bad("--payload", optarg,
				    "unknown escape; use \\r \\n \\t \\\\ \\0");
			if (o.payload_len > MAX_PAYLOAD)
				bad("--payload", optarg, "longer than 64 KiB");
			break;
		case 'b':
		case OPT_BIND_RANGE:
			bind_arg = optarg;
			bind_range = opt == OPT_BIND_RANGE;
			break;
		case 'j':
			o.json = true;
			break;
		case OPT_PROGRESS:
			o.progress = true;
			break;
		case OPT_HTTP:
			o.http = true;
			break;
		case 'i':
			if (tu_parse_num(optarg, 10, 3600000, &o.interval_ms))
				bad("--interval", optarg, "want milliseconds, 10 to 3600000");
			have_interval = true;
			break;
		case 'l':
			if (!utf8_ok(optarg))
				bad("--label", optarg, "not UTF-8");
			o.label = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "tpin-load: give exactly one target ADDR:PORT (see --help)\n");
		exit(2);
	}
	if (tu_parse_hostport(argv[optind], &o.target))
		bad("target", argv[optind], "want IPv4:PORT or [IPv6]:PORT, numeric");
	snprintf(o.target_str, sizeof(o.target_str), "%s", argv[optind]);
	if (bind_arg)
		parse_bind(bind_arg, bind_range);
	if (o.rate == 0 && o.concurrency == 0) {
		fprintf(stderr, "tpin-load: give --rate or --concurrency (see --help)\n");
		exit(2);
	}
	if (o.count == 0 && o.duration_ms == 0) {
		fprintf(stderr, "tpin-load: refusing an unbounded run: give --count or --duration "
				"(see --help)\n");
		exit(2);
	}
	if (have_interval && !o.progress) {
		fprintf(stderr, "tpin-load: --interval sets the period of --progress; give both\n");
		exit(2);
	}
	if (!o.payload) {
		o.payload = strdup(DEFAULT_PAYLOAD);
		if (!o.payload) {
			fprintf(stderr, "tpin-load: out of memory\n");
			exit(1);
		}
		o.payload_len = strlen(o.payload);
	}
}

static uint64_t now_ms(void)
{
	return (uv_hrtime() - t_start) / 1000000;
}

static unsigned hist_index(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	if (e > HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	return HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB +
	       (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* Highest value bucket i holds. */
static uint64_t hist_upper(unsigned i)
{
	unsigned e, sub;

	if (i < HIST_SUB)
		return i;
	e = (i - HIST_SUB) / HIST_SUB + HIST_SUB_BITS;
	sub = (i - HIST_SUB) % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (e - HIST_SUB_BITS)) - 1;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

/*
 * The value below which a fraction q of the samples lie, as the upper bound
 * of its bucket (never above the largest sample): an overestimate by at most
 * one bucket width, never an underestimate.
 */
static uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->n)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			return hist_upper(i) < h->max ? hist_upper(i) : h->max;
	}
	return h->max;
}

static const char *error_name(int code)
{
	const char *n = uv_err_name(code);

	return n ? n : "UNKNOWN";
}

static void count_error(int code)
{
	for (int i = 0; i < MAX_ERROR_NAMES; i++) {
		if (errnames[i].n == 0)
			errnames[i].code = code;
		if (errnames[i].code == code) {
			errnames[i].n++;
			return;
		}
	}
	/* More distinct errors than slots: the last one collects the rest. */
	errnames[MAX_ERROR_NAMES - 1].n++;
}

static void maybe_finish_run(void);
static void refill(uv_timer_t *t);

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->open_handles == 0) {
		free(c);
		maybe_finish_run();
	}
}

/* Records the outcome once (status 0: EOF after the answer) and closes. */
static void finish(struct conn *c, int status)
{
	if (c->done)
		return;
	c->done = true;
	cnt.inflight--;
	if (status == 0 && c->got == 0) {
		cnt.empty++;
	} else if (status == 0) {
		cnt.ok++;
		hist_add(&lat, (uv_hrtime() - c->t0) / 1000);
	} else if (status == UV_ECONNREFUSED) {
		cnt.refused++;
	} else if (status == UV_ECONNRESET || status == UV_EPIPE || status == UV_ECONNABORTED) {
		cnt.reset++;
	} else if (status == UV_ETIMEDOUT) {
		cnt.timeout++;
	} else {
		cnt.error++;
		count_error(status);
	}
	cnt.bytes_in += c->got;
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	if (o.rate == 0 && !stopping)
		uv_timer_start(&kick, refill, 0, 0);
}

static void on_timeout(uv_timer_t *t)
{
	finish(t->data, UV_ETIMEDOUT);
}

/* --http: until the headers are in, each read appends to what came before. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;

	if (o.http && !c->headers_done)
		*b = uv_buf_init(c->buf + c->got, (unsigned int)(sizeof(c->buf) - c->got));
	else
		*b = uv_buf_init(c->buf, sizeof(c->buf));
}

/*
 * --http: once the headers of the answer are in c->buf, its whole length
 * (headers and Content-Length); 0 when it has none, so EOF ends it. Headers
 * that do not fit the buffer also leave it to EOF.
 */
static void http_headers(struct conn *c)
{
	static const char cl[] = "\r\ncontent-length:";
	const char *end = memmem(c->buf, c->got, "\r\n\r\n", 4);
	const char *p;
	uint64_t v = 0;
	size_t hlen, i;

	if (!end) {
		c->headers_done = c->got == sizeof(c->buf);
		return;
	}
	c->headers_done = true;
	hlen = (size_t)(end - c->buf) + 4;
	for (i = 0; i + sizeof(cl) - 1 < hlen; i++)
		if (!strncasecmp(c->buf + i, cl, sizeof(cl) - 1))
			break;
	if (i + sizeof(cl) - 1 >= hlen)
		return;
	for (p = c->buf + i + sizeof(cl) - 1; *p == ' ' || *p == '\t'; p++)
		;
	if (*p < '0' || *p > '9')
		return;
	while (*p >= '0' && *p <= '9' && v < MAX_COUNT)
		v = v * 10 + (uint64_t)(*p++ - '0');
	c->want = hlen + v;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (n > 0) {
		c->got += (uint64_t)n;
		if (o.http && !c->headers_done)
			http_headers(c);
		if (c->want && c->got >= c->want)
			finish(c, 0);
	} else if (n == UV_EOF)
		finish(c, 0);
	else if (n < 0)
		finish(c, (int)n);
}

static void on_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	if (status == 0)
		cnt.bytes_out += o.payload_len;
	else if (status != UV_ECANCELED)
		finish(c, status);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	uv_buf_t b = uv_buf_init(o.payload, (unsigned int)o.payload_len);
	int ret;

	if (c->done)
		return; /* timed out already; this is the cancellation */
	if (status) {
		finish(c, status);
		return;
	}
	c->write.data = c;
	ret = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (!ret && o.payload_len)
		ret = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (ret)
		finish(c, ret);
}

/* Starts one connection; returns its synchronous failure, if any. */
static int start_conn(void)
{
	struct sockaddr_storage src;
	struct conn *c;
	int ret;

	cnt.attempted++;
	cnt.started++;
	cnt.inflight++;
	if (cnt.inflight > cnt.peak_inflight)
		cnt.peak_inflight = cnt.inflight;
	c = calloc(1, sizeof(*c));
	if (!c) {
		cnt.inflight--;
		cnt.error++;
		count_error(UV_ENOMEM);
		return UV_ENOMEM;
	}
	c->t0 = uv_hrtime();
	c->tcp.data = c;
	c->timer.data = c;
	c->connect.data = c;
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	c->open_handles = 2;
	uv_timer_start(&c->timer, on_timeout, o.timeout_ms, 0);
	ret = 0;
	if (o.nbinds) {
		bind_addr(bind_next++, &src);
		ret = uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
	}
	if (!ret)
		ret = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&o.target,
				     on_connect);
	if (ret)
		finish(c, ret);
	return ret;
}

/* True while the bounds allow another start. */
static bool may_start(void)
{
	if (stopping)
		return false;
	if (o.count && cnt.attempted >= o.count)
		return false;
	if (o.duration_ms && now_ms() >= o.duration_ms)
		return false;
	return true;
}

/* Sets the number @key of the JSON object @j. */
static void put(json_t *j, const char *key, uint64_t v)
{
	json_object_set_new(j, key, json_integer((json_int_t)v));
}

/* A JSON line of @type with the target, the label and the counters. */
static json_t *json_line(const char *type)
{
	json_t *j = json_object();
	const struct {
		const char *key;
		uint64_t v;
	} counts[] = {
		{ "attempted", cnt.attempted },
		{ "started", cnt.started },
		{ "ok", cnt.ok },
		{ "failed", cnt.refused + cnt.reset + cnt.timeout + cnt.empty + cnt.error },
		{ "refused", cnt.refused },
		{ "reset", cnt.reset },
		{ "timeout", cnt.timeout },
		{ "empty", cnt.empty },
		{ "error", cnt.error },
		{ "skipped", cnt.skipped },
		{ "inflight", cnt.inflight },
		{ "peak_inflight", cnt.peak_inflight },
		{ "bytes_in", cnt.bytes_in },
		{ "bytes_out", cnt.bytes_out },
	};

	json_object_set_new(j, "target", json_string(o.target_str));
	if (o.label)
		json_object_set_new(j, "label", json_string(o.label));
	json_object_set_new(j, "type", json_string(type));
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		put(j, counts[i].key, counts[i].v);
	return j;
}

/*
 * One line of compact JSON on stdout, which the demo and the benchmark read
 * line by line. Milliseconds keep their microseconds and no more.
 */
static void json_emit(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
	putchar('\n');
	fflush(stdout);
	json_decref(j);
}

static void on_progress(uv_timer_t *t)
{
	struct timespec ts;
	json_t *j = json_line("progress");

	clock_gettime(CLOCK_REALTIME, &ts);
	put(j, "t_ms", now_ms());
	put(j, "unix_ms", (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	json_emit(j);
}

static double us_to_ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static void print_result(void)
{
	double elapsed = (double)now_ms() / 1000.0;
	uint64_t failed = cnt.refused + cnt.reset + cnt.timeout + cnt.empty + cnt.error;

	if (o.json) {
		json_t *j = json_line("result"), *errors = json_object();

		json_object_set_new(j, "mode", json_string(o.rate > 0 ? "rate" : "concurrency"));
		json_object_set_new(j, "rate", json_real(o.rate));
		put(j, "concurrency", o.concurrency);
		put(j, "count", o.count);
		put(j, "duration_ms", o.duration_ms);
		put(j, "timeout_ms", o.timeout_ms);
		put(j, "elapsed_ms", now_ms());
		json_object_set_new(j, "interrupted", json_boolean(interrupted));
		json_object_set_new(
			j, "latency_ms",
			json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)lat.n, "p50",
				  us_to_ms(hist_quantile(&lat, 0.50)), "p90",
				  us_to_ms(hist_quantile(&lat, 0.90)), "p99",
				  us_to_ms(hist_quantile(&lat, 0.99)), "max", us_to_ms(lat.max),
				  "mean", lat.n ? us_to_ms(lat.sum / lat.n) : 0.0));
		for (int i = 0; i < MAX_ERROR_NAMES && errnames[i].n; i++)
			put(errors, error_name(errnames[i].code), errnames[i].n);
		json_object_set_new(j, "errors", errors);
		json_emit(j);
		return;
	}
	printf("tpin-load %s%s%s: %" PRIu64 " connections in %.1f s%s\n", o.target_str,
	       o.label ? " " : "", o.label ? o.label : "", cnt.started, elapsed,
	       interrupted ? " (interrupted)" : "");
	printf("  ok       %10" PRIu64 "\n", cnt.ok);
	printf("  failed   %10" PRIu64 "  (refused %" PRIu64 ", reset %" PRIu64 ", timeout %" PRIu64
	       ", empty %" PRIu64 ", error %" PRIu64 ")\n",
	       failed, cnt.refused, cnt.reset, cnt.timeout, cnt.empty, cnt.error);
	if (cnt.skipped)
		printf("  skipped  %10" PRIu64 "  (the concurrency cap was full)\n", cnt.skipped);
	for (int i = 0; i < MAX_ERROR_NAMES && errnames[i].n; i++)
		printf("  error %-12s %" PRIu64 "\n", error_name(errnames[i].code), errnames[i].n);
	printf("  peak in flight %" PRIu64 ", %.1f ok/s\n", cnt.peak_inflight,
	       elapsed > 0 ? (double)cnt.ok / elapsed : 0.0);
	if (lat.n)
		printf("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
		       us_to_ms(hist_quantile(&lat, 0.50)), us_to_ms(hist_quantile(&lat, 0.90)),
		       us_to_ms(hist_quantile(&lat, 0.99)), us_to_ms(lat.max));
	fflush(stdout);
}

static void close_run_handles(void)
{
	uv_handle_t *hs[] = { (uv_handle_t *)&tick, (uv_handle_t *)&kick, (uv_handle_t *)&progress,
			      (uv_handle_t *)&sigint, (uv_handle_t *)&sigterm };

	for (size_t i = 0; i < ARRAY_SIZE(hs); i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], NULL);
}

/* The run is over when no start is allowed and nothing is in flight. */
static void maybe_finish_run(void)
{
	static bool finished;

	if (finished || cnt.inflight || may_start())
		return;
	finished = true;
	stopping = true;
	if (o.progress)
		on_progress(&progress);
	close_run_handles();
}

/* Rate mode: start as many as the clock says are due. */
static void on_tick(uv_timer_t *t)
{
	uint64_t due;

	while (may_start()) {
		due = (uint64_t)((double)(uv_hrtime() - t_start) / 1e9 * o.rate) + 1;
		if (cnt.attempted >= due)
			break;
		if (o.concurrency && cnt.inflight >= o.concurrency) {
			cnt.attempted++;
			cnt.skipped++;
			continue;
		}
		start_conn();
	}
	if (!may_start())
		uv_timer_stop(t);
	maybe_finish_run();
}

/*
 * Concurrency mode: top up to the target. A synchronous failure (EMFILE, say)
 * ends this round and retries 10 ms later, so a persistent error is counted
 * at a bounded pace instead of spinning.
 */
static void refill(uv_timer_t *t)
{
	while (may_start() && cnt.inflight < o.concurrency) {
		if (start_conn()) {
			if (may_start())
				uv_timer_start(&kick, refill, 10, 0);
			break;
		}
	}
	maybe_finish_run();
}

/* The end of --duration must be noticed even when nothing else happens. */
static void on_deadline(uv_timer_t *t)
{
	maybe_finish_run();
}

static void on_signal(uv_signal_t *s, int signum)
{
	interrupted = true;
	stopping = true;
	uv_timer_stop(&tick);
	uv_timer_stop(&kick);
	maybe_finish_run();
}

int main(int argc, char **argv)
{
	static uv_timer_t deadline;
	int rc = 0;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	/* Short connections need many descriptors: take what the hard limit allows. */
	tu_raise_nofile();
	loop = uv_default_loop();
	uv_timer_init(loop, &tick);
	uv_timer_init(loop, &kick);
	uv_timer_init(loop, &progress);
	uv_timer_init(loop, &deadline);
	uv_signal_init(loop, &sigint);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	t_start = uv_hrtime();
	if (o.duration_ms)
		uv_timer_start(&deadline, on_deadline, o.duration_ms, 0);
	uv_unref((uv_handle_t *)&deadline);
	if (o.progress)
		uv_timer_start(&progress, on_progress, o.interval_ms, o.interval_ms);
	if (o.rate > 0)
		uv_timer_start(&tick, on_tick, 0, 1);
	else
		uv_timer_start(&kick, refill, 0, 0);
	if (uv_run(loop, UV_RUN_DEFAULT) < 0)
		rc = 1;
	print_result();
	uv_close((uv_handle_t *)&deadline, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop))
		rc = 1;
	free(o.payload);
	return rc;
}
