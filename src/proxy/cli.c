// SPDX-License-Identifier: MIT
/*
 * tpin-proxy's command line: the help text and the options, parsed into
 * struct cli_settings. Every bad value is refused here, with the option and
 * the value named, before anything is bound or changed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/config.h"
#include "tpin/err.h"
#include "cli.h"

static const char usage[] =
	"Usage: tpin-proxy [options]\n"
	"\n"
	"Accepts the TCP connections that tpin-init diverts to it and relays each on,\n"
	"with no conntrack anywhere on the path: inbound ones (to the pod) to the\n"
	"application, outbound ones (the application's own) to where they were going.\n"
	"\n"
	"Interception:\n"
	"  -z, --capture-port PORT     port the inbound connections arrive on (15006)\n"
	"  -p, --outbound-port PORT    port the app's outbound connections arrive on, as\n"
	"                              Envoy's virtualOutbound (15001; 0: none). They are\n"
	"                              relayed from the pod's own address with the proxy's\n"
	"                              mark 0x53a, which tpin-init never captures again\n"
	"  -m, --mode MODE             tproxy (default): the original destination is the\n"
	"                              accepted socket's own address; redirect: it is read\n"
	"                              from netfilter (SO_ORIGINAL_DST). Match tpin-init.\n"
	"      --outbound-mode MODE    the same for outbound connections (--mode's value);\n"
	"                              redirect matches Istio's TPROXY mode, whose\n"
	"                              outbound capture is NAT (tpin-init -m tproxy\n"
	"                              --outbound-mode redirect)\n"
	"\n"
	"Upstream (the connection to the application):\n"
	"      --upstream original     connect to the original destination (default, as\n"
	"                              Istio >= 1.10), from the passthrough source\n"
	"      --upstream localhost    connect to 127.0.0.1 or ::1 at the original port\n"
	"                              (Istio 1.5); the app must listen on loopback\n"
	"      --passthrough-source A  source address for upstream connections, once per\n"
	"                              family (127.0.0.6 and ::6); \"none\" lets the kernel\n"
	"                              choose. tpin-init adds ::6 to lo.\n"
	"      --preserve-source       connect from the client's own address, so the app\n"
	"                              sees it (needs tpin-init --preserve-source)\n"
	"      --preserve-source-ports A-B\n"
	"                              the ports such connections leave from (1024-32767):\n"
	"                              the proxy picks them itself, never one a live client\n"
	"                              connection uses, and by default below the ephemeral\n"
	"                              ports Linux clients pick from\n"
	"      --proxy-protocol        send the app a PROXY protocol v2 header first\n"
	"                              (inbound only: never on the app's own calls)\n"
	"      --upstream-buffer B     the app-facing socket's receive and send buffer\n"
	"                              (4K-64M, K and M are KiB and MiB, at most what\n"
	"                              net.core.rmem_max and wmem_max allow; 0, the\n"
	"                              default: the kernel autotunes it). 128K takes 30%\n"
	"                              off what a connection whose client stopped reading\n"
	"                              holds in the kernel, for 5-10% of bulk from the app\n"
	"      --upstream-mss N        the segment size the app may send toward the proxy\n"
	"                              (0: loopback's 64K; 536-32767, what TCP_MAXSEG takes)\n"
	"\n"
	"Limits and timeouts (durations: 500ms, 10s, 2m; a bare number is seconds):\n"
	"      --connect-timeout D     give up connecting to the app (10s); the client\n"
	"                              is reset\n"
	"      --idle-timeout D        close connections quiet this long (1h, as Envoy's TCP\n"
	"                              proxy; 0: never)\n"
	"      --keepalive T,I,N       TCP keepalive toward clients: the first probe after T\n"
	"                              quiet, then every I, N of them (60s,10s,6: a client\n"
	"                              that vanished is found within 2 minutes); off\n"
	"      --max-connections N     reset new connections beyond N live ones (auto: as\n"
	"                              many as the descriptor limit allows, two each; 0: no\n"
	"                              cap). Near the descriptor limit new connections are\n"
	"                              reset anyway, so established ones, the admin port and\n"
	"                              readiness keep working\n"
	"      --max-connections-per-source N\n"
	"                              of those, at most N from one IPv4 address or IPv6 /64\n"
	"                              (auto: a quarter of --max-connections; 0: no cap)\n"
	"      --drain-timeout D       on SIGTERM, let connections finish this long (45s)\n"
	"      --concurrency N         event loops, one listener each (number of CPUs)\n"
	"\n"
	"Operation:\n"
	"      --admin-port PORT       metrics, readiness, connections on 127.0.0.1 (15000);\n"
	"                              readiness is also on :15021/healthz/ready\n"
	"      --table-name NAME       the nftables table readiness checks for (tpin)\n"
	"      --log-format FMT        access log as plain (default) or json\n"
	"      --log-file PATH         access log file (standard output); SIGHUP reopens it\n"
	"      --user USER             after binding, run as USER keeping only CAP_NET_ADMIN\n"
	"  -h, --help                  show this help\n"
	"\n"
	"Signals: SIGTERM drains (stop accepting, finish or close at the deadline),\n"
	"SIGINT stops now, SIGHUP reopens the log file.\n"
	"\n"
	"Example (what the Kubernetes sidecar runs):\n"
	"  tpin-init && tpin-proxy --user 1337 --log-format json\n";

enum {
	OPT_UPSTREAM = 256,
	OPT_PASSTHROUGH,
	OPT_PRESERVE,
	OPT_PRESERVE_PORTS,
	OPT_PROXY_PROTOCOL,
	OPT_CONNECT_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_KEEPALIVE,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PER_SOURCE,
	OPT_DRAIN_TIMEOUT,
	OPT_CONCURRENCY,
	OPT_ADMIN_PORT,
	OPT_TABLE_NAME,
	OPT_LOG_FORMAT,
	OPT_LOG_FILE,
	OPT_USER,
	OPT_OUTBOUND_MODE,
	OPT_UPSTREAM_BUFFER,
	OPT_UPSTREAM_MSS,
};

static const struct option long_options[] = {
	{ "capture-port", required_argument, NULL, 'z' },
	{ "outbound-port", required_argument, NULL, 'p' },
	{ "mode", required_argument, NULL, 'm' },
	{ "outbound-mode", required_argument, NULL, OPT_OUTBOUND_MODE },
	{ "upstream", required_argument, NULL, OPT_UPSTREAM },
	{ "passthrough-source", required_argument, NULL, OPT_PASSTHROUGH },
	{ "preserve-source", no_argument, NULL, OPT_PRESERVE },
	{ "preserve-source-ports", required_argument, NULL, OPT_PRESERVE_PORTS },
	{ "proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL },
	{ "upstream-buffer", required_argument, NULL, OPT_UPSTREAM_BUFFER },
	{ "upstream-mss", required_argument, NULL, OPT_UPSTREAM_MSS },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "max-connections-per-source", required_argument, NULL, OPT_MAX_PER_SOURCE },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "admin-port", required_argument, NULL, OPT_ADMIN_PORT },
	{ "table-name", required_argument, NULL, OPT_TABLE_NAME },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "log-file", required_argument, NULL, OPT_LOG_FILE },
	{ "user", required_argument, NULL, OPT_USER },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* "500ms", "10s", "2m", "1h" or a bare number of seconds, into milliseconds. */
static int parse_duration(uint32_t *ms, const char *text, const char *flag, struct tpin_err *err)
{
	unsigned long long v, scale = 1000;
	char *end;

	errno = 0;
	if (text[0] < '0' || text[0] > '9')
		goto bad;
	v = strtoull(text, &end, 10);
	if (errno)
		goto bad;
	if (!strcmp(end, "ms"))
		scale = 1;
	else if (!strcmp(end, "m"))
		scale = 60000;
	else if (!strcmp(end, "h"))
		scale = 3600000;
	else if (*end && strcmp(end, "s"))
		goto bad;
	if (v > UINT32_MAX / scale)
		goto bad;
	*ms = (uint32_t)(v * scale);
	return 0;
bad:
	tpin_err_set(err, -EINVAL, "%s \"%s\" is not a duration such as 500ms, 10s or 2m", flag,
		     text);
	return -EINVAL;
}

/* "T,I,N" (first probe after T quiet, then every I, N probes) or "off". */
static int parse_keepalive(struct tpin_keepalive *ka, const char *text, struct tpin_err *err)
{
	char idle[32], interval[32], extra;
	uint32_t t, i, n;
	int k;

	if (!strcmp(text, "off")) {
		*ka = (struct tpin_keepalive){ 0 };
		return 0;
	}
	k = sscanf(text, "%31[^,],%31[^,],%u%c", idle, interval, &n, &extra);
	if (k != 3 || parse_duration(&t, idle, "--keepalive", err) ||
	    parse_duration(&i, interval, "--keepalive", err) || t < 1000 || i < 1000 || t % 1000 ||
	    i % 1000 || n < 1 || n > 127 || t / 1000 > 32767 || i / 1000 > 32767) {
		tpin_err_set(
			err, -EINVAL,
			"--keepalive \"%s\" is not TIME,INTERVAL,COUNT (whole seconds of 1s to "
			"32767s, 1-127 probes, e.g. 60s,10s,6) or off",
			text);
		return -EINVAL;
	}
	*ka = (struct tpin_keepalive){ .idle_s = t / 1000, .interval_s = i / 1000, .count = n };
	return 0;
}

/* "A-B", two ports, A not above B. */
static int parse_port_range(struct tpin_proxy_options *opt, const char *text, struct tpin_err *err)
{
	struct tpin_ports ports;
	int ret = tpin_ports_parse(&ports, text, err);

	if (!ret && (ports.all || ports.n != 1))
		ret = tpin_err_set(err, -EINVAL,
				   "--preserve-source-ports \"%s\" is not one range A-B", text);
	if (ret)
		return ret;
	opt->preserve_port_first = ports.r[0].first;
	opt->preserve_port_last = ports.r[0].last;
	return 0;
}

static int parse_passthrough(struct tpin_proxy_options *opt, const char *text, struct tpin_err *err)
{
	if (!strcmp(text, "none")) {
		opt->passthrough4.sin_family = 0;
		opt->passthrough6.sin6_family = 0;
		return 0;
	}
	if (inet_pton(AF_INET, text, &opt->passthrough4.sin_addr) == 1) {
		opt->passthrough4.sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &opt->passthrough6.sin6_addr) == 1) {
		opt->passthrough6.sin6_family = AF_INET6;
		return 0;
	}
	tpin_err_set(err, -EINVAL, "--passthrough-source \"%s\" is not an IPv4 or IPv6 address",
		     text);
	return -EINVAL;
}

/*
 * --user: a user name, or a numeric uid with no name needed (as containers
 * run them), 0 to 4294967294 ((uid_t)-1 means "no change" to setuid() and
 * is never a user). Resolved while parsing, so a bad value costs nothing
 * but a message and exit status 2.
 */
static int parse_user(struct cli_settings *st, const char *text, struct tpin_err *err)
{
	struct passwd *pw = *text ? getpwnam(text) : NULL;
	unsigned long long v;
	char *end;

	if (pw) {
		st->uid = pw->pw_uid;
		st->gid = pw->pw_gid;
		return 0;
	}
	errno = 0;
	v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : ULLONG_MAX;
	if (errno || v == ULLONG_MAX || *end || v > (uid_t)-2) {
		tpin_err_set(err, -EINVAL,
			     "--user \"%s\" is neither a user name nor a uid in 0-4294967294",
			     text);
		return -EINVAL;
	}
	st->uid = (uid_t)v;
	st->gid = (gid_t)v;
	return 0;
}

/* --upstream-buffer: bytes, KiB (K) or MiB (M); 0 or 4 KiB to 64 MiB. */
static int parse_buffer(uint32_t *out, const char *text, struct tpin_err *err)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : ULLONG_MAX;
	if (!errno && v != ULLONG_MAX && (*end == 'K' || *end == 'M') && v <= 64 * 1024) {
		v <<= *end == 'K' ? 10 : 20;
		end++;
	}
	if (errno || v == ULLONG_MAX || *end || (v && (v < 4096 || v > 64u << 20))) {
		tpin_err_set(err, -EINVAL,
			     "--upstream-buffer \"%s\" is not 0 or a size of 4K to 64M", text);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Prefix @err's message with the long name of option @c. */
static void name_option(struct tpin_err *err, int c)
{
	const struct option *o;
	char msg[sizeof(err->msg)];

	for (o = long_options; o->name; o++) {
		if (o->val == c) {
			/* Cut to fit: the name and the value are short, the message is one line. */
			snprintf(msg, sizeof(msg), "%.960s", err->msg);
			tpin_err_set(err, err->code, "--%s: %s", o->name, msg);
			return;
		}
	}
}

int cli_parse(struct cli_settings *st, int argc, char **argv, struct tpin_err *err)
{
	struct tpin_proxy_options *opt = &st->proxy;
	uint32_t v;
	int c = 0, ret = 0;

	while (!ret && (c = getopt_long(argc, argv, "z:p:m:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'z':
			ret = tpin_port_parse(&opt->capture_port, optarg, err);
			break;
		case 'p':
			if (!strcmp(optarg, "0"))
				opt->outbound_port = 0;
			else
				ret = tpin_port_parse(&opt->outbound_port, optarg, err);
			break;
		case 'm':
			ret = tpin_mode_parse(&opt->mode, optarg, err);
			break;
		case OPT_OUTBOUND_MODE:
			ret = tpin_mode_parse(&opt->outbound_mode, optarg, err);
			st->outbound_mode_set = true;
			break;
		case OPT_UPSTREAM:
			if (!strcmp(optarg, "original")) {
				opt->upstream = TPIN_UPSTREAM_ORIGINAL;
			} else if (!strcmp(optarg, "localhost")) {
				opt->upstream = TPIN_UPSTREAM_LOCALHOST;
			} else {
				tpin_err_set(err, -EINVAL,
					     "--upstream \"%s\" is neither original nor localhost",
					     optarg);
				ret = -EINVAL;
			}
			break;
		case OPT_PASSTHROUGH:
			ret = parse_passthrough(opt, optarg, err);
			break;
		case OPT_PRESERVE:
			opt->preserve_source = true;
			break;
		case OPT_PRESERVE_PORTS:
			ret = parse_port_range(opt, optarg, err);
			break;
		case OPT_PROXY_PROTOCOL:
			opt->proxy_protocol = true;
			break;
		case OPT_UPSTREAM_BUFFER:
			ret = parse_buffer(&opt->upstream_buffer, optarg, err);
			break;
		case OPT_UPSTREAM_MSS:
			if (!strcmp(optarg, "0"))
				opt->upstream_mss = 0;
			else
				ret = tpin_u32_parse(&opt->upstream_mss, optarg, 536,
						     TPIN_UPSTREAM_MSS_MAX, err);
			break;
		case OPT_CONNECT_TIMEOUT:
			ret = parse_duration(&opt->connect_timeout_ms, optarg, "--connect-timeout",
					     err);
			if (!ret && !opt->connect_timeout_ms) {
				tpin_err_set(err, -EINVAL, "--connect-timeout must be above 0");
				ret = -EINVAL;
			}
			break;
		case OPT_IDLE_TIMEOUT:
			ret = parse_duration(&opt->idle_timeout_ms, optarg, "--idle-timeout", err);
			break;
		case OPT_DRAIN_TIMEOUT:
			ret = parse_duration(&st->drain_ms, optarg, "--drain-timeout", err);
			break;
		case OPT_KEEPALIVE:
			ret = parse_keepalive(&opt->keepalive, optarg, err);
			break;
		case OPT_MAX_CONNECTIONS:
			st->max_auto = !strcmp(optarg, "auto");
			if (!st->max_auto)
				ret = tpin_u32_parse(&opt->max_connections, optarg, 0, 100000000,
						     err);
			break;
		case OPT_MAX_PER_SOURCE:
			st->per_source_auto = !strcmp(optarg, "auto");
			if (!st->per_source_auto)
				ret = tpin_u32_parse(&opt->max_per_source, optarg, 0, 100000000,
						     err);
			break;
		case OPT_CONCURRENCY:
			ret = tpin_u32_parse(&v, optarg, 1, 1024, err);
			if (!ret)
				opt->concurrency = v;
			break;
		case OPT_ADMIN_PORT:
			ret = tpin_port_parse(&opt->admin_port, optarg, err);
			break;
		case OPT_TABLE_NAME:
			ret = tpin_table_name_parse(st->table_name, optarg, err);
			break;
		case OPT_LOG_FORMAT:
			ret = tpin_log_format_parse(&st->log_format, optarg, err);
			break;
		case OPT_LOG_FILE:
			st->log_file = optarg;
			break;
		case OPT_USER:
			st->user = optarg;
			ret = parse_user(st, optarg, err);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			/* getopt has named the bad option already. */
			tpin_err_set(err, -EINVAL, "see tpin-proxy --help");
			ret = -EINVAL;
		}
	}
	if (!st->outbound_mode_set)
		opt->outbound_mode = opt->mode;
	/* The shared parsers name the value; say which option it was given to. */
	if (ret && c != '?' && err->msg[0] != '-')
		name_option(err, c);
	if (!ret && optind < argc) {
		tpin_err_set(err, -EINVAL, "unexpected argument \"%s\"", argv[optind]);
		ret = -EINVAL;
	}
	if (!ret && opt->capture_port == opt->admin_port) {
		tpin_err_set(err, -EINVAL, "capture port and admin port are both %u",
			     opt->admin_port);
		ret = -EINVAL;
	}
	if (!ret && opt->outbound_port &&
	    (opt->outbound_port == opt->capture_port || opt->outbound_port == opt->admin_port)) {
		tpin_err_set(err, -EINVAL, "--outbound-port %u is the capture or the admin port",
			     opt->outbound_port);
		ret = -EINVAL;
	}
	if (!ret &&
	    (opt->capture_port == TPIN_HEALTH_PORT || opt->outbound_port == TPIN_HEALTH_PORT ||
	     opt->admin_port == TPIN_HEALTH_PORT)) {
		tpin_err_set(err, -EINVAL, "port %u is readiness's: pick another",
			     TPIN_HEALTH_PORT);
		ret = -EINVAL;
	}
	return ret;
}
