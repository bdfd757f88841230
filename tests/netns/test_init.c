// SPDX-License-Identifier: MIT
/*
 * tpin-init driven through its CLI in throwaway network namespaces, with
 * nft and ip as independent witnesses of what the kernel really holds.
 * TPIN_INIT and TPIN_INIT_FAULTS (set by meson), or argv[1] and argv[2],
 * name the binary under test and its test build with fault points.
 *
 * About 1,500 lines: twenty-two cases of one program under one harness;
 * each case reads on its own, and a split would only copy the witnesses.
 */

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"
#include "tpin/nft_verify.h"

#define MARK	1337
#define CAPTURE 15006

static const char *tpin_init;
static const char *tpin_init_faults; /* the test build with fault points */
static char last_cmd[1024];

static void teardown(void)
{
	nh_cleanup();
}

/* Runs `tpin-init ARGS` from the host namespace; ARGS usually has --netns. */
__attribute__((format(printf, 3, 4))) static int tpin(char **out, char **err, const char *fmt, ...)
{
	char args[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(last_cmd, sizeof(last_cmd), "%s %s", tpin_init, args);
	return nh_sh(NULL, out, err, "%s", last_cmd);
}

/* Asserts that tpin-init ARGS exits 0, showing its stderr when not. */
#define TPIN_OK(...)                                                                      \
	do {                                                                              \
		char *e_ = NULL;                                                          \
		int r_ = tpin(NULL, &e_, __VA_ARGS__);                                    \
		ck_assert_msg(r_ == 0, "`%s` exited %d: %s", last_cmd, r_, e_ ? e_ : ""); \
		free(e_);                                                                 \
	} while (0)

#define NH_OK(call) ck_assert_msg((call) == 0, "%s: %s", #call, nh_err())

/* Output of a witness command that must succeed. */
__attribute__((format(printf, 2, 3))) static char *witness(const char *ns, const char *fmt, ...)
{
	char cmd[512], *out = NULL, *err = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = nh_sh(ns, &out, &err, "%s", cmd);
	ck_assert_msg(ret == 0, "witness `%s` exited %d: %s", cmd, ret, err ? err : nh_err());
	free(err);
	return out;
}

/* Everything tpin-init may touch, as text, to compare before and after. */
static char *snapshot(const char *ns)
{
	return witness(ns, "nft list ruleset; echo '-- ip -4 rule'; ip -4 rule; "
			   "echo '-- ip -6 rule'; ip -6 rule; "
			   "echo '-- ip -4 route'; ip -4 route show table all; "
			   "echo '-- ip -6 route'; ip -6 route show table all; "
			   "echo '-- lo'; ip addr show dev lo");
}

/*
 * Check's messages are bounded (a longer one kills the test runner), so
 * long texts are cut and the whole of them goes to stderr.
 */
#define MSG_MAX 2000

static const char *cut(char *s)
{
	if (s && strlen(s) > MSG_MAX)
		strcpy(s + MSG_MAX - 5, " ...");
	return s ? s : "";
}

/* `diff -u` of two texts, for a readable failure. */
static char *text_diff(const char *a, const char *b)
{
	char pa[64], pb[64], *out = NULL;
	FILE *f;

	snprintf(pa, sizeof(pa), "/tmp/tpin-test-%d.before", (int)getpid());
	snprintf(pb, sizeof(pb), "/tmp/tpin-test-%d.after", (int)getpid());
	if ((f = fopen(pa, "w"))) {
		fputs(a, f);
		fclose(f);
	}
	if ((f = fopen(pb, "w"))) {
		fputs(b, f);
		fclose(f);
	}
	nh_sh(NULL, &out, NULL, "diff -u %s %s", pa, pb);
	unlink(pa);
	unlink(pb);
	return out;
}

static void assert_same(const char *what, const char *before, const char *after)
{
	char *d;

	if (!strcmp(before, after))
		return;
	d = text_diff(before, after);
	fprintf(stderr, "%s changed the state.\n--- before:\n%s\n--- after:\n%s\n", what, before,
		after);
	ck_abort_msg("%s changed the state:\n%s", what, cut(d));
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void fresh(char *name, const char *tag, bool lo_up)
{
	NH_OK(nh_ns_new(name, tag));
	if (lo_up)
		NH_OK(nh_lo_up(name));
}

/* ---- the nft -j witness ---------------------------------------------- */

static json_t *ruleset(const char *ns)
{
	char *out = witness(ns, "nft -j list ruleset");
	json_error_t err;
	json_t *root = json_loads(out, 0, &err);

	ck_assert_msg(root, "%s (column %d) in: %s", err.text, err.column, out);
	free(out);
	ck_assert_msg(json_is_array(json_object_get(root, "nftables")), "no nftables array");
	return root;
}

/*
 * Compact text of v (free it), for substring checks in assertions: no
 * spaces, members in nft's order, so `"right":"tcp"` matches as printed.
 */
static char *dump(const json_t *v)
{
	char *d = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(none)");

	ck_assert_ptr_nonnull(d);
	return d;
}

/* The string at key of o, or NULL. */
static const char *str_at(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* True when v is an integer; its value into *out. */
static bool int_of(const json_t *v, long *out)
{
	if (!json_is_integer(v))
		return false;
	*out = (long)json_integer_value(v);
	return true;
}

/* The object of kind ("table", "chain", "set") named name in table. */
static json_t *find_obj(const json_t *root, const char *kind, const char *table, const char *name)
{
	json_t *list = json_object_get(root, "nftables");

	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *o = json_object_get(json_array_get(list, i), kind);
		const char *fam = str_at(o, "family");
		const char *t = str_at(o, strcmp(kind, "table") ? "table" : "name");
		const char *n = str_at(o, "name");

		if (o && fam && !strcmp(fam, "inet") && t && !strcmp(t, table) && n &&
		    !strcmp(n, name))
			return o;
	}
	return NULL;
}

/* Compact dumps of the expressions of each rule of a chain, in order. */
static int chain_rules(const json_t *root, const char *table, const char *chain, char **dumps,
		       int max)
{
	json_t *list = json_object_get(root, "nftables");
	int n = 0;

	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *r = json_object_get(json_array_get(list, i), "rule");
		const char *t = str_at(r, "table"), *c = str_at(r, "chain");

		if (!r || !t || strcmp(t, table) || !c || strcmp(c, chain))
			continue;
		ck_assert_int_lt(n, max);
		dumps[n++] = dump(json_object_get(r, "expr"));
	}
	return n;
}

static void free_dumps(char **d, int n)
{
	for (int i = 0; i < n; i++)
		free(d[i]);
}

static void assert_chain(const json_t *root, const char *table, const char *name, const char *type,
			 const char *hook, long prio)
{
	json_t *c = find_obj(root, "chain", table, name);
	char *d = dump(c);
	long p;

	ck_assert_msg(c, "no chain %s in table inet %s", name, table);
	ck_assert_msg(str_at(c, "type") && !strcmp(str_at(c, "type"), type) && str_at(c, "hook") &&
			      !strcmp(str_at(c, "hook"), hook) &&
			      int_of(json_object_get(c, "prio"), &p) && p == prio,
		      "chain %s: want type %s hook %s prio %ld, got %s", name, type, hook, prio, d);
	/* A drop policy would black-hole the pod; the chain only diverts. */
	ck_assert_msg(str_at(c, "policy") && !strcmp(str_at(c, "policy"), "accept"),
		      "chain %s policy: %s", name, d);
	free(d);
}

/*
 * Ports an interval set of inet_service covers, as a 65536-entry bitmap;
 * returns how many. Elements are numbers or {"range": [a, b]}.
 */
static int set_ports(const json_t *set, unsigned char *bits)
{
	json_t *elem = json_object_get(set, "elem");
	size_t n = !elem ? 0 : json_is_array(elem) ? json_array_size(elem) : 1;
	int count = 0;

	memset(bits, 0, 65536);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_is_array(elem) ? json_array_get(elem, i) : elem;
		json_t *r = json_object_get(e, "range");
		long a, b;

		if (int_of(e, &a)) {
			b = a;
		} else {
			ck_assert_msg(r && int_of(json_array_get(r, 0), &a) &&
					      int_of(json_array_get(r, 1), &b),
				      "odd port element");
		}
		ck_assert(a >= 0 && b <= 65535 && a <= b);
		for (long p = a; p <= b; p++)
			count += !bits[p]++;
	}
	return count;
}

/* Asserts that set name in table covers exactly the ports listed. */
static void assert_port_set(const json_t *root, const char *table, const char *name,
			    const int *ports, int n)
{
	json_t *set = find_obj(root, "set", table, name);
	unsigned char *bits = malloc(65536);
	char *d = dump(set);

	ck_assert_msg(set, "no set %s in table inet %s", name, table);
	ck_assert_msg(set_ports(set, bits) == n, "set %s covers other ports than expected: %s",
		      name, d);
	for (int i = 0; i < n; i++)
		ck_assert_msg(bits[ports[i]], "set %s lacks port %d: %s", name, ports[i], d);
	free(bits);
	free(d);
}

/* True when a set of addresses holds addr/len (prefix, or plain address). */
static bool set_has_prefix(const json_t *set, const char *addr, long len)
{
	json_t *elem = json_object_get(set, "elem");
	size_t n = !elem ? 0 : json_is_array(elem) ? json_array_size(elem) : 1;
	bool host = len == 32 || len == 128;

	for (size_t i = 0; i < n; i++) {
		json_t *e = json_is_array(elem) ? json_array_get(elem, i) : elem;
		json_t *p = json_object_get(e, "prefix");
		long l;

		if (p && str_at(p, "addr") && !strcmp(str_at(p, "addr"), addr) &&
		    int_of(json_object_get(p, "len"), &l) && l == len)
			return true;
		if (host && json_string_value(e) && !strcmp(json_string_value(e), addr))
			return true;
	}
	return false;
}

struct want {
	const char *table;
	bool inbound;	 /* -b given: rules match @inbound_ports */
	bool src4, src6; /* exclude_sources4/6 present */
	bool localhost;	 /* --upstream localhost: no reset for closed ports */
	long mark;
	long port;
};

#define WANT_DEFAULT                                           \
	{                                                      \
		.table = "tpin", .mark = MARK, .port = CAPTURE \
	}

static bool has(const char *rule, const char *s)
{
	return strstr(rule, s) != NULL;
}

static bool is_tcp_only(const char *rule)
{
	return (has(rule, "{\"meta\":{\"key\":\"l4proto\"}}") && has(rule, "\"right\":\"tcp\"")) ||
	       has(rule, "\"protocol\":\"tcp\"");
}

#define NOT_SYN \
	"\"op\":\"!=\",\"left\":{\"&\":[{\"payload\":{\"protocol\":\"tcp\",\"field\":\"flags\"}}"
#define SYN \
	"\"op\":\"==\",\"left\":{\"&\":[{\"payload\":{\"protocol\":\"tcp\",\"field\":\"flags\"}}"
#define IIF_LO "\"left\":{\"meta\":{\"key\":\"iif\"}},\"right\":\"lo\""

/* Whether rule @r matches TCP to the intercepted ports as @w says. */
static bool intercepted(const char *r, const struct want *w)
{
	return is_tcp_only(r) && has(r, "\"@inbound_ports\"") == w->inbound;
}

/* The TPROXY prerouting chain of the README, rule by rule. */
static void assert_tproxy_chain(const json_t *root, const struct want *w)
{
	char *r[24], mangle[96], tp4[64], tp6[64], port[32], *all;
	int n, i = 0, want_n = 12 + w->src4 + w->src6 - (w->localhost ? 2 : 0);

	snprintf(mangle, sizeof(mangle),
		 "\"mangle\":{\"key\":{\"meta\":{\"key\":\"mark\"}},\"value\":%ld}", w->mark);
	snprintf(tp4, sizeof(tp4), "\"tproxy\":{\"family\":\"ip\"");
	snprintf(tp6, sizeof(tp6), "\"tproxy\":{\"family\":\"ip6\"");
	snprintf(port, sizeof(port), "\"port\":%ld", w->port);
	ck_assert_msg(find_obj(root, "table", w->table, w->table), "no table inet %s", w->table);
	assert_chain(root, w->table, "prerouting", "filter", "prerouting", -150);
	n = chain_rules(root, w->table, "prerouting", r, 24);
	all = dump(root);
	ck_assert_msg(n == want_n, "prerouting has %d rules, want %d: %s", n, want_n, cut(all));
	/* Forged local sources from outside: loopback, 127.0.0.6, ::6, the pod's own. */
	ck_assert_msg(has(r[i], "\"op\":\"!=\"," IIF_LO) &&
			      has(r[i], "\"fib\":{\"result\":\"type\",\"flags\":[\"saddr\"]}") &&
			      has(r[i], "\"fib\":{\"result\":\"type\",\"flags\":[\"daddr\"]}") &&
			      has(r[i], "\"drop\":null"),
		      "rule %d is not the anti-spoofing drop: %s", i, r[i]);
	i++;
	/* Established flows of transparent sockets, never a new SYN (port reuse). */
	ck_assert_msg(has(r[i], NOT_SYN) && has(r[i], "\"socket\":{\"key\":\"transparent\"}") &&
			      has(r[i], mangle) && has(r[i], "\"accept\""),
		      "rule %d is not the socket divert: %s", i, r[i]);
	i++;
	ck_assert_msg(has(r[i], "\"op\":\"==\"," IIF_LO) && has(r[i], "\"return\""),
		      "rule %d is not `iif lo return`: %s", i, r[i]);
	i++;
	ck_assert_msg(has(r[i], "\"dport\"") && has(r[i], "\"@exclude_ports\"") &&
			      has(r[i], "\"return\""),
		      "rule %d is not the port exclusion: %s", i, r[i]);
	i++;
	if (w->src4) {
		ck_assert_msg(has(r[i], "\"protocol\":\"ip\",\"field\":\"saddr\"") &&
				      has(r[i], "\"@exclude_sources4\"") && has(r[i], "\"return\""),
			      "rule %d is not the v4 source exclusion: %s", i, r[i]);
		i++;
	}
	if (w->src6) {
		ck_assert_msg(has(r[i], "\"protocol\":\"ip6\",\"field\":\"saddr\"") &&
				      has(r[i], "\"@exclude_sources6\"") && has(r[i], "\"return\""),
			      "rule %d is not the v6 source exclusion: %s", i, r[i]);
		i++;
	}
	/* Only the pod's own addresses: the proxy is no relay to other hosts. */
	ck_assert_msg(has(r[i], "\"op\":\"!=\",\"left\":{\"fib\":{\"result\":\"type\",\"flags\":["
				"\"daddr\"]}},\"right\":\"local\"") &&
			      has(r[i], "\"return\""),
		      "rule %d is not the local-destination return: %s", i, r[i]);
	i++;
	if (!w->localhost) {
		/* A SYN that finds a socket is marked; one that does not is reset. */
		ck_assert_msg(intercepted(r[i], w) && has(r[i], SYN) &&
				      has(r[i], "\"op\":\"<=\",\"left\":{\"socket\":{\"key\":"
						"\"transparent\"}},\"right\":1") &&
				      has(r[i], mangle) && !has(r[i], "\"accept\""),
			      "rule %d is not the mark of a SYN with a socket: %s", i, r[i]);
		i++;
		ck_assert_msg(
			intercepted(r[i], w) && has(r[i], SYN) &&
				has(r[i], "\"op\":\"!=\",\"left\":{\"meta\":{\"key\":\"mark\"}}") &&
				has(r[i], "\"reject\":{\"type\":\"tcp reset\"}"),
			"rule %d is not the reset of a SYN to a closed port: %s", i, r[i]);
		i++;
	}
	for (int f = 0; f < 2; f++, i++) {
		/* TCP only: `meta l4proto tcp`, or implied by `tcp dport @inbound_ports`. */
		ck_assert_msg(has(r[i], f ? tp6 : tp4) && has(r[i], port) && has(r[i], mangle) &&
				      has(r[i], "\"accept\"") && intercepted(r[i], w),
			      "rule %d is not the %s tproxy to %ld: %s", i, f ? "ip6" : "ip",
			      w->port, r[i]);
	}
	/* What tproxy declined: a wildcard listener is dropped, the pod's own return. */
	ck_assert_msg(intercepted(r[i], w) && has(r[i], NOT_SYN) &&
			      has(r[i], "{\"socket\":{\"key\":\"wildcard\"}},\"right\":1") &&
			      has(r[i], "\"drop\":null"),
		      "rule %d is not the drop for a listener tproxy declined: %s", i, r[i]);
	i++;
	ck_assert_msg(intercepted(r[i], w) && has(r[i], NOT_SYN) &&
			      has(r[i], "{\"socket\":{\"key\":\"transparent\"}},\"right\":0") &&
			      has(r[i], "\"return\"") && !has(r[i], mangle),
		      "rule %d is not the pass for the pod's own sockets: %s", i, r[i]);
	i++;
	/* nft's tproxy falls through without a listener: the last rule fails closed. */
	ck_assert_msg(has(r[i], "\"drop\":null") && intercepted(r[i], w) && !has(r[i], "socket"),
		      "last rule is not the fail-closed drop: %s", r[i]);
	/* No conntrack in TPROXY mode: nf_conntrack_count must stay 0. */
	ck_assert_msg(!strstr(all, "\"ct\":"), "ct expression in TPROXY ruleset: %s", cut(all));
	free(all);
	free_dumps(r, n);
}

/* `ip -F route show table T`; a table that does not exist reads as empty. */
static char *routes(const char *ns, int family, int table)
{
	char *out = NULL, *err = NULL;
	int ret = nh_sh(ns, &out, &err, "ip -%d route show table %d", family, table);

	ck_assert_msg(ret == 0 || (err && strstr(err, "does not exist")),
		      "ip -%d route show table %d exited %d: %s", family, table, ret, err);
	if (ret)
		*out = '\0';
	free(err);
	return out;
}

/* ip rules, routes and ::6 of TPROXY mode. */
static void assert_routing(const char *ns, const char *mark, int table, bool present)
{
	char rule[64], *s;
	int want = present ? 1 : 0;

	snprintf(rule, sizeof(rule), "fwmark %s lookup %d", mark, table);
	s = witness(ns, "ip -4 rule");
	ck_assert_msg(nh_count(s, rule) == want, "ip -4 rule: want %d x `%s`:\n%s", want, rule, s);
	free(s);
	s = witness(ns, "ip -6 rule");
	ck_assert_msg(nh_count(s, rule) == want, "ip -6 rule: want %d x `%s`:\n%s", want, rule, s);
	free(s);
	s = routes(ns, 4, table);
	ck_assert_msg(present ? !strcmp(s, "local default dev lo proto 116 scope host \n") &&
					count_lines(s) == 1
			      : !*s,
		      "ip -4 route show table %d:\n%s", table, s);
	free(s);
	s = routes(ns, 6, table);
	ck_assert_msg(present ? !strncmp(s, "local default dev lo ", 21) && count_lines(s) == 1
			      : !*s,
		      "ip -6 route show table %d:\n%s", table, s);
	free(s);
}

static void assert_addr6(const char *ns, bool present)
{
	char *s = witness(ns, "ip -6 addr show dev lo");

	ck_assert_msg(has(s, "inet6 ::6/128 ") == present, "::6 on lo (want %s):\n%s",
		      present ? "present" : "absent", s);
	free(s);
}

static void assert_nothing(const char *ns)
{
	char *s = witness(ns, "nft list ruleset");

	ck_assert_msg(!*s, "ruleset left behind:\n%s", s);
	free(s);
	assert_routing(ns, "0x539", 133, false);
	assert_addr6(ns, false);
}

static const int default_excluded[] = { 15000, 15006, 15020, 15021, 15090 };

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_install_tproxy)
{
	struct want w = WANT_DEFAULT;
	char ns[NH_NAME_MAX], *s;
	json_t *root;

	/* lo down, as in a new pod: tpin-init must bring it up for the local routes. */
	fresh(ns, "ins", false);
	TPIN_OK("--netns %s", ns);
	s = witness(ns, "ip -o link show lo");
	ck_assert_msg(has(s, ",UP"), "lo still down: %s", s);
	free(s);
	root = ruleset(ns);
	assert_tproxy_chain(root, &w);
	assert_port_set(root, "tpin", "exclude_ports", default_excluded, 5);
	ck_assert_msg(!find_obj(root, "set", "tpin", "inbound_ports"), "inbound_ports with '*'");
	/* The table carries the digest readiness checks (nft -j leaves comments out). */
	s = witness(ns, "nft list table inet tpin");
	ck_assert_msg(has(s, "\tcomment \"tpin-init digest fnv1a64:"), "no digest:\n%s", s);
	free(s);
	ck_assert_msg(!find_obj(root, "chain", "tpin", "output"),
		      "output chain without --preserve-source");
	json_decref(root);
	assert_routing(ns, "0x539", 133, true);
	assert_addr6(ns, true);
}
END_TEST

START_TEST(test_rerun_same_flags)
{
	char ns[NH_NAME_MAX], *a, *b, *r1, *r2;

	fresh(ns, "same", true);
	TPIN_OK("--netns %s -b 9080,9443 --exclude-sources 203.0.113.0/24", ns);
	a = snapshot(ns);
	r1 = witness(ns, "nft list ruleset");
	TPIN_OK("--netns %s -b 9080,9443 --exclude-sources 203.0.113.0/24", ns);
	b = snapshot(ns);
	r2 = witness(ns, "nft list ruleset");
	ck_assert_str_eq(r1, r2);
	/* Also no second ip rule, route or address. */
	assert_same("a second identical run", a, b);
	assert_routing(ns, "0x539", 133, true);
	free(a);
	free(b);
	free(r1);
	free(r2);
}
END_TEST

START_TEST(test_rerun_other_flags)
{
	static const int excl[] = { 8081, 15000, 15006, 15020, 15021, 15090 };
	static const int inb[] = { 9080, 9443 };
	struct want w = WANT_DEFAULT;
	char ns[NH_NAME_MAX];
	json_t *root, *s4, *s6;

	fresh(ns, "oth", true);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s -b 9080,9443 -d 8081 --exclude-sources 203.0.113.0/24,2001:db8:2::/48",
		ns);
	root = ruleset(ns);
	w.inbound = w.src4 = w.src6 = true;
	assert_tproxy_chain(root, &w);
	assert_port_set(root, "tpin", "exclude_ports", excl, 6);
	assert_port_set(root, "tpin", "inbound_ports", inb, 2);
	s4 = find_obj(root, "set", "tpin", "exclude_sources4");
	s6 = find_obj(root, "set", "tpin", "exclude_sources6");
	ck_assert_msg(s4 && set_has_prefix(s4, "203.0.113.0", 24), "exclude_sources4");
	ck_assert_msg(s6 && set_has_prefix(s6, "2001:db8:2::", 48), "exclude_sources6");
	json_decref(root);

	/* Back to the defaults: replaced whole, the old sets and elements gone. */
	TPIN_OK("--netns %s", ns);
	root = ruleset(ns);
	w.inbound = w.src4 = w.src6 = false;
	assert_tproxy_chain(root, &w);
	assert_port_set(root, "tpin", "exclude_ports", default_excluded, 5);
	ck_assert(!find_obj(root, "set", "tpin", "inbound_ports"));
	ck_assert(!find_obj(root, "set", "tpin", "exclude_sources4"));
	ck_assert(!find_obj(root, "set", "tpin", "exclude_sources6"));
	json_decref(root);
	assert_routing(ns, "0x539", 133, true);
}
END_TEST

START_TEST(test_cleanup_twice)
{
	char ns[NH_NAME_MAX], *pristine, *after;

	fresh(ns, "cln", true);
	pristine = snapshot(ns);
	/* Nothing installed yet: still a success. */
	TPIN_OK("--netns %s --cleanup", ns);
	TPIN_OK("--netns %s --exclude-sources 203.0.113.0/24,2001:db8:2::/48", ns);
	TPIN_OK("--netns %s --cleanup", ns);
	assert_nothing(ns);
	after = snapshot(ns);
	assert_same("install + cleanup", pristine, after);
	free(after);
	TPIN_OK("--netns %s --cleanup", ns);
	after = snapshot(ns);
	assert_same("a second cleanup", pristine, after);
	free(after);
	free(pristine);
}
END_TEST

/* --check exits 1 and its output names the drift; it changes nothing. */
static void assert_drift(const char *ns, const char *flags, const char *what,
			 const char *const *names)
{
	char *out = NULL, *err = NULL, *before = snapshot(ns), *after, *both;
	int ret = tpin(&out, &err, "--netns %s %s --check", ns, flags);
	bool named = false;

	ck_assert_msg(ret == 1, "--check after %s exited %d (want 1): %s%s", what, ret, cut(out),
		      cut(err));
	ck_assert_int_ge(asprintf(&both, "%s%s", out, err), 0);
	for (const char *const *n = names; *n && !named; n++)
		named = strcasestr(both, *n) != NULL;
	ck_assert_msg(named, "--check after %s does not name it (want one of \"%s\"...): %s", what,
		      names[0], cut(both));
	after = snapshot(ns);
	assert_same("--check", before, after);
	free(before);
	free(after);
	free(both);
	free(out);
	free(err);
}

START_TEST(test_check)
{
	static const char *const rule_names[] = { "rule", NULL };
	static const char *const iprule_names[] = { "fwmark", "0x539", "1337", "ip rule", NULL };
	static const char *const route_names[] = { "route", NULL };
	static const char *const addr_names[] = { "::6", NULL };
	static const char *const elem_names[] = { "15090", "exclude_ports", NULL };
	static const char *const table_names[] = { "table", "tpin", NULL };
	static const char *const ports_names[] = { "inbound_ports", "9080", NULL };
	char ns[NH_NAME_MAX], *out = NULL, *err = NULL;
	int ret;

	fresh(ns, "chk", true);
	assert_drift(ns, "", "no install", table_names);
	TPIN_OK("--netns %s", ns);
	ret = tpin(&out, &err, "--netns %s --check", ns);
	ck_assert_msg(ret == 0, "--check right after install exited %d: %s%s", ret, cut(out),
		      cut(err));
	free(out);
	free(err);

	free(witness(ns, "nft flush table inet tpin"));
	assert_drift(ns, "", "nft flush table inet tpin", rule_names);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);

	free(witness(ns, "ip -4 rule del fwmark 0x539 lookup 133"));
	assert_drift(ns, "", "deleting the v4 ip rule", iprule_names);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);

	free(witness(ns, "ip -6 rule del fwmark 0x539 lookup 133"));
	assert_drift(ns, "", "deleting the v6 ip rule", iprule_names);
	TPIN_OK("--netns %s", ns);

	free(witness(ns, "ip -4 route del local 0.0.0.0/0 dev lo table 133"));
	assert_drift(ns, "", "deleting the v4 local route", route_names);
	TPIN_OK("--netns %s", ns);

	free(witness(ns, "ip -6 addr del ::6/128 dev lo"));
	assert_drift(ns, "", "deleting ::6 from lo", addr_names);
	TPIN_OK("--netns %s", ns);

	free(witness(ns, "nft delete element inet tpin exclude_ports '{ 15090 }'"));
	assert_drift(ns, "", "deleting port 15090 from exclude_ports", elem_names);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);

	/* The live state is right, but for other flags. */
	assert_drift(ns, "-b 9080", "asking for -b 9080 over a '*' install", ports_names);
}
END_TEST

/*
 * Outbound capture is in the same table, the same digest and the same
 * --check: a deleted owner exemption or a flushed outbound chain is drift,
 * and so is an install without it, asked for with it (and the other way).
 */
START_TEST(test_check_outbound)
{
	static const char *const owner_names[] = { "skuid", "outbound", NULL };
	static const char *const chain_names[] = { "outbound", "output", NULL };
	char ns[NH_NAME_MAX], *before;

	fresh(ns, "cko", true);
	TPIN_OK("--netns %s --outbound", ns);
	TPIN_OK("--netns %s --outbound --check", ns);
	/* The proxy's readiness reads the same digest. */
	assert_drift(ns, "", "asking without --outbound", chain_names);
	assert_drift(ns, "-u 1000", "asking for another owner", owner_names);

	free(witness(ns, "nft delete rule inet tpin outbound handle $(nft -a list chain inet tpin "
			 "outbound | awk '/skuid/ {print $NF; exit}')"));
	assert_drift(ns, "--outbound", "deleting the uid exemption", owner_names);
	TPIN_OK("--netns %s --outbound", ns);
	TPIN_OK("--netns %s --outbound --check", ns);

	free(witness(ns, "nft flush chain inet tpin outbound"));
	assert_drift(ns, "--outbound", "flushing the outbound chain", chain_names);
	TPIN_OK("--netns %s --outbound", ns);
	/* Back to inbound only: the output chain goes with the rest of the table. */
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);
	assert_drift(ns, "--outbound", "asking for --outbound over an inbound install",
		     chain_names);
	/* --notrack moves the chains to raw priority and adds its rules: drift either way. */
	TPIN_OK("--netns %s --outbound --notrack", ns);
	TPIN_OK("--netns %s --outbound --notrack --check", ns);
	assert_drift(ns, "--outbound", "asking without --notrack", chain_names);
	TPIN_OK("--netns %s --cleanup", ns);
	/* Cleanup takes the outbound chains with the table, and the routing with it. */
	before = snapshot(ns);
	ck_assert_msg(!has(before, "table inet tpin") && !has(before, "0x539"),
		      "left after --cleanup:\n%s", cut(before));
	free(before);
}
END_TEST

/*
 * Istio's TPROXY mode, -m tproxy --outbound-mode redirect: the preflight
 * probes redir beside TPROXY's expressions, the install is TPROXY's
 * prerouting and policy routing with redirect mode's nat output chain,
 * --check tells it from both neighbours, and --cleanup leaves nothing.
 */
START_TEST(test_check_istio_tproxy)
{
	static const char *const chain_names[] = { "nat_output", "output", "outbound", NULL };
	char ns[NH_NAME_MAX], *out = NULL, *err = NULL, *s;
	int ret;

	fresh(ns, "cki", true);
	ret = tpin(&out, &err, "--netns %s --outbound-mode redirect", ns);
	ck_assert_msg(ret == 0, "`%s` exited %d: %s", last_cmd, ret, cut(err));
	ck_assert_msg(strstr(out, "nft redir expression: ok") &&
			      strstr(out, "nft tproxy expression (IPv4): ok") &&
			      strstr(out, "outbound in redirect mode"),
		      "preflight and result: %s", cut(out));
	free(out);
	free(err);
	s = witness(ns, "nft list table inet tpin");
	ck_assert_msg(strstr(s, "type filter hook prerouting priority mangle") &&
			      strstr(s, "tproxy ip to :15006") &&
			      strstr(s, "type nat hook output priority -100") &&
			      strstr(s, "redirect to :15001") &&
			      !strstr(s, "tproxy ip to :15001") &&
			      !strstr(s, "type route hook output"),
		      "inbound TPROXY, outbound NAT:\n%s", cut(s));
	free(s);
	assert_routing(ns, "0x539", 133, true);
	TPIN_OK("--netns %s --outbound-mode redirect --check", ns);
	assert_drift(ns, "--outbound", "asking for TPROXY outbound", chain_names);
	assert_drift(ns, "-m redirect --outbound", "asking for REDIRECT both ways", chain_names);
	free(witness(ns, "nft flush chain inet tpin nat_output"));
	assert_drift(ns, "--outbound-mode redirect", "flushing the nat output chain", chain_names);
	TPIN_OK("--netns %s --outbound-mode redirect", ns);
	TPIN_OK("--netns %s --outbound-mode redirect --check", ns);
	TPIN_OK("--netns %s --cleanup", ns);
	s = snapshot(ns);
	ck_assert_msg(!has(s, "table inet tpin") && !has(s, "0x539"), "left after --cleanup:\n%s",
		      cut(s));
	free(s);
}
END_TEST

/* The handle of the first rule of inet @table @chain whose text has @what. */
static long rule_handle(const char *ns, const char *table, const char *chain, const char *what)
{
	char *s = witness(ns, "nft -a list chain inet %s %s", table, chain), *line, *save = NULL;
	long handle = -1;

	for (line = strtok_r(s, "\n", &save); line && handle < 0;
	     line = strtok_r(NULL, "\n", &save))
		if (strstr(line, what) && strstr(line, "# handle "))
			handle = strtol(strstr(line, "# handle ") + 9, NULL, 10);
	free(s);
	ck_assert_msg(handle >= 0, "no rule with \"%s\" in inet %s %s", what, table, chain);
	return handle;
}

/* One family's tproxy rule deleted: --check names it. */
START_TEST(test_check_v6_tproxy_deleted)
{
	static const char *const names[] = { "tproxy ip6", NULL };
	char ns[NH_NAME_MAX];

	fresh(ns, "ck6", true);
	TPIN_OK("--netns %s", ns);
	free(witness(ns, "nft delete rule inet tpin prerouting handle %ld",
		     rule_handle(ns, "tpin", "prerouting", "tproxy ip6")));
	assert_drift(ns, "", "deleting the IPv6 tproxy rule", names);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);
}
END_TEST

/* What the digest reader and the generation say, read inside a namespace. */
struct verify_result {
	int verify, gen_ret;
	uint32_t gen;
};

static struct verify_result *verified; /* shared with the child nh_call forks */

static int verify_in_ns(void *table)
{
	verified->gen_ret = tpin_nft_generation(&verified->gen);
	verified->verify = tpin_nft_verify(table);
	return 0;
}

static struct verify_result verify(const char *ns, const char *table)
{
	if (!verified) {
		verified = mmap(NULL, sizeof(*verified), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		ck_assert(verified != MAP_FAILED);
	}
	memset(verified, 0, sizeof(*verified));
	verified->verify = verified->gen_ret = 1;
	ck_assert_int_eq(nh_call(ns, verify_in_ns, (void *)table), 0);
	ck_assert_msg(verified->gen_ret == 0, "tpin_nft_generation: %s",
		      strerror(-verified->gen_ret));
	return *verified;
}

#define ASSERT_VERIFY(ns, table, want, what)                                                     \
	do {                                                                                     \
		struct verify_result v_ = verify(ns, table);                                     \
		ck_assert_msg(v_.verify == (want), "%s: tpin_nft_verify %d (%s), want %d", what, \
			      v_.verify, strerror(-v_.verify), want);                            \
	} while (0)

/*
 * The proxy's readiness reader: 0 for the table as installed, -ENOENT when
 * it is gone, -ENODATA for every kind of drift, among them one family's
 * tproxy rule deleted; and the generation moves with every transaction.
 */
START_TEST(test_digest_reader)
{
	char ns[NH_NAME_MAX];
	struct verify_result a, b;

	fresh(ns, "dig", true);
	ASSERT_VERIFY(ns, "tpin", -ENOENT, "no table");
	TPIN_OK("--netns %s", ns);
	a = verify(ns, "tpin");
	ck_assert_msg(a.verify == 0, "as installed: %d", a.verify);
	b = verify(ns, "tpin");
	ck_assert_msg(b.gen == a.gen, "no transaction, yet the generation moved");

	free(witness(ns, "nft delete rule inet tpin prerouting handle %ld",
		     rule_handle(ns, "tpin", "prerouting", "tproxy ip6")));
	b = verify(ns, "tpin");
	ck_assert_msg(b.verify == -ENODATA, "v6 tproxy rule deleted: %d", b.verify);
	ck_assert_msg(b.gen != a.gen, "a rule deleted, the generation did not move");

	TPIN_OK("--netns %s", ns);
	ASSERT_VERIFY(ns, "tpin", 0, "installed again");
	free(witness(ns, "nft flush chain inet tpin prerouting"));
	ASSERT_VERIFY(ns, "tpin", -ENODATA, "chain flushed");
	TPIN_OK("--netns %s", ns);
	free(witness(ns, "nft add table inet tpin '{ flags dormant; }'"));
	ASSERT_VERIFY(ns, "tpin", -ENODATA, "table dormant");
	TPIN_OK("--netns %s", ns);
	free(witness(ns, "nft add element inet tpin exclude_ports '{ 9080 }'"));
	ASSERT_VERIFY(ns, "tpin", -ENODATA, "element added");
	/* A table of the same name that tpin did not make: no digest, not ready. */
	TPIN_OK("--netns %s --cleanup", ns);
	free(witness(ns, "nft add table inet tpin && nft add chain inet tpin c"));
	ASSERT_VERIFY(ns, "tpin", -ENODATA, "someone else's table");
	free(witness(ns, "nft delete table inet tpin"));
	/* The other modes and options carry a matching digest too. */
	TPIN_OK("--netns %s -m redirect -b 9080 --exclude-sources 203.0.113.0/24", ns);
	ASSERT_VERIFY(ns, "tpin", 0, "redirect");
	TPIN_OK("--netns %s -b 9080 --preserve-source --exclude-sources 2001:db8::/32", ns);
	ASSERT_VERIFY(ns, "tpin", 0, "preserve-source");
	TPIN_OK("--netns %s --table-name tpx --upstream localhost --no-ipv6", ns);
	ASSERT_VERIFY(ns, "tpx", 0, "localhost, IPv4 only, another table");
}
END_TEST

static const char *const fail_steps[] = { "rule4", "route4", "rule6", "route6", "addr6", "nft" };

/*
 * A failure injected before each install step leaves the state exactly as
 * it was. Over an earlier install with another mark, table and ports, this
 * run must remove the rules and routes it added but not the earlier ones,
 * nor ::6 which it found there.
 */
START_TEST(test_fail_injection_over_install)
{
	const char *step = fail_steps[_i];
	char ns[NH_NAME_MAX], *before, *after, *err = NULL;
	int ret;

	fresh(ns, "fi", true);
	TPIN_OK("--netns %s -t 0x100 -r 200 -b 9080", ns);
	before = snapshot(ns);
	ret = nh_sh(NULL, NULL, &err, "TPIN_INIT_FAIL_AT=%s %s --netns %s", step, tpin_init_faults,
		    ns);
	ck_assert_msg(ret == 1, "TPIN_INIT_FAIL_AT=%s over an install exited %d: %s", step, ret,
		      cut(err));
	free(err);
	after = snapshot(ns);
	assert_same(step, before, after);
	free(before);
	free(after);
}
END_TEST

/* In a clean namespace everything the failed run added goes again. */
START_TEST(test_fail_injection_clean)
{
	const char *step = fail_steps[_i];
	char ns[NH_NAME_MAX], *before, *after, *err = NULL;
	int ret;

	fresh(ns, "fc", true);
	before = snapshot(ns);
	ret = nh_sh(NULL, NULL, &err, "TPIN_INIT_FAIL_AT=%s %s --netns %s", step, tpin_init_faults,
		    ns);
	ck_assert_msg(ret == 1, "TPIN_INIT_FAIL_AT=%s on a clean netns exited %d: %s", step, ret,
		      cut(err));
	free(err);
	after = snapshot(ns);
	assert_same(step, before, after);
	free(before);
	free(after);
	/* And nothing stale stops the next real install. */
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);
}
END_TEST

/*
 * The installed tpin-init has no fault points: the variable that fails the
 * test build changes nothing, and the binary does not even name it.
 */
START_TEST(test_no_fault_points_installed)
{
	char ns[NH_NAME_MAX], *out = NULL;
	int ret;

	fresh(ns, "nf", true);
	TPIN_OK("--netns %s", ns);
	ret = nh_sh(NULL, NULL, NULL, "TPIN_INIT_FAIL_AT=nft %s --netns %s -b 9080", tpin_init, ns);
	ck_assert_msg(ret == 0, "the installed tpin-init obeyed TPIN_INIT_FAIL_AT (exit %d)", ret);
	TPIN_OK("--netns %s -b 9080 --check", ns);
	ret = nh_sh(NULL, &out, NULL, "grep -c TPIN_INIT_FAIL_AT %s", tpin_init);
	ck_assert_msg(ret == 1 && !strcmp(out, "0\n"), "%s names TPIN_INIT_FAIL_AT (%d: %s)",
		      tpin_init, ret, out);
	free(out);
	ret = nh_sh(NULL, &out, NULL, "grep -c TPIN_INIT_FAIL_AT %s", tpin_init_faults);
	ck_assert_msg(ret == 0, "the test build lacks its fault points: %s", out);
	free(out);
}
END_TEST

START_TEST(test_unprivileged)
{
	/* Root without CAP_NET_ADMIN, targeting the namespace from outside. */
	static const char *const runs[] = { "", "--cleanup", "-b 9080" };
	char ns[NH_NAME_MAX], *before, *after, *err = NULL;
	int ret;

	fresh(ns, "unp", false);
	TPIN_OK("--netns %s -b 9443", ns);
	before = snapshot(ns);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd),
			 "setpriv --inh-caps=-net_admin --bounding-set=-net_admin %s --netns %s %s",
			 tpin_init, ns, runs[i]);
		ret = nh_sh(NULL, NULL, &err, "%s", cmd);
		ck_assert_msg(ret == 1, "`%s` exited %d (want 1): %s", cmd, ret, err);
		ck_assert_msg(has(err, "CAP_NET_ADMIN"), "`%s`: message lacks CAP_NET_ADMIN: %s",
			      cmd, err);
		free(err);
		after = snapshot(ns);
		assert_same(cmd, before, after);
		free(after);
	}
	/* As nobody, already inside the pod's namespace (no --netns). */
	ret = nh_sh(ns, NULL, &err,
		    "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		    "--bounding-set=-all %s --cleanup",
		    tpin_init);
	ck_assert_msg(ret == 1, "--cleanup as uid 65534 exited %d: %s", ret, err);
	ck_assert_msg(has(err, "CAP_NET_ADMIN"), "uid 65534: message lacks CAP_NET_ADMIN: %s", err);
	free(err);
	after = snapshot(ns);
	assert_same("uid 65534", before, after);
	free(after);
	free(before);
}
END_TEST

struct bad_case {
	const char *args;
	const char *value; /* the message must name it */
};

static const struct bad_case bad_cases[] = {
	{ "-b 70000", "70000" },
	{ "-b 10-5", "10-5" },
	{ "--exclude-sources 10.0.0.0/33", "10.0.0.0/33" },
	{ "--exclude-sources 2001:db8::/129", "2001:db8::/129" },
	{ "-m foo", "foo" },
	{ "-d 80,abc", "abc" },
	{ "--preserve-source", "inbound-ports" },
	/* Each of these exited 0 and lost traffic before (issue 9, item 5). */
	{ "-t 0x53a", "0x53a" },
	{ "-d 1-65535", "nothing would be intercepted" },
	{ "-b 9080 -d 9000-9100", "nothing would be intercepted" },
	{ "-z 15000", "admin port" },
	{ "-z 15021", "15021" },
	{ "--exclude-sources ''", "exclude-sources" },
	{ "-d ''", "exclude-ports" },
	/* Outbound capture (issue 10): conflicts that would lose traffic. */
	{ "-p 15006", "15006" },
	{ "--outbound -b 9080", "--inbound-ports" },
	{ "-q 80 -o 80", "nothing would be captured outbound" },
	{ "-u nobody", "nobody" },
	{ "-m redirect --notrack", "tproxy" },
	/* --outbound-mode: never TPROXY beside inbound NAT, never with --notrack. */
	{ "--outbound-mode nat", "nat" },
	{ "-m redirect --outbound-mode tproxy", "tproxy" },
	{ "--outbound-mode redirect --notrack", "--notrack" },
};

/*
 * tpin-init needs CAP_NET_ADMIN and nothing else: as uid 65534 holding only
 * that capability (ambient, so it survives the exec), inside the pod's
 * namespace, it installs, checks and cleans up.
 */
START_TEST(test_only_net_admin)
{
	static const char *const only =
		"setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,+net_admin "
		"--ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin";
	struct want w = WANT_DEFAULT;
	char ns[NH_NAME_MAX], *err = NULL;
	json_t *root;
	int ret;

	fresh(ns, "cap", true);
	ret = nh_sh(ns, NULL, &err, "%s %s", only, tpin_init);
	ck_assert_msg(ret == 0, "install with only CAP_NET_ADMIN exited %d: %s", ret, err);
	free(err);
	root = ruleset(ns);
	assert_tproxy_chain(root, &w);
	json_decref(root);
	assert_routing(ns, "0x539", 133, true);
	ret = nh_sh(ns, NULL, &err, "%s %s --check", only, tpin_init);
	ck_assert_msg(ret == 0, "--check with only CAP_NET_ADMIN exited %d: %s", ret, err);
	free(err);
	ret = nh_sh(ns, NULL, &err, "%s %s --cleanup", only, tpin_init);
	ck_assert_msg(ret == 0, "--cleanup with only CAP_NET_ADMIN exited %d: %s", ret, err);
	free(err);
	assert_nothing(ns);
}
END_TEST

START_TEST(test_bad_values)
{
	const struct bad_case *c = &bad_cases[_i];
	char ns[NH_NAME_MAX], *before, *after, *out = NULL, *err = NULL;
	int ret;

	fresh(ns, "bad", true);
	TPIN_OK("--netns %s", ns);
	before = snapshot(ns);
	ret = tpin(&out, &err, "--netns %s %s", ns, c->args);
	ck_assert_msg(ret == 2, "`%s` exited %d (want 2): %s", last_cmd, ret, err);
	ck_assert_msg(has(err, c->value), "`%s`: message does not name \"%s\": %s", last_cmd,
		      c->value, err);
	ck_assert_msg(count_lines(err) == 1, "`%s`: want one line on stderr, got: %s", last_cmd,
		      err);
	after = snapshot(ns);
	assert_same(last_cmd, before, after);
	free(before);
	free(after);
	free(out);
	free(err);
}
END_TEST

static const char *const dry_flags[] = {
	"",
	"-b 9080,9443,10000-10010 -d 8081 --exclude-sources 203.0.113.0/24,2001:db8:2::/48",
	"-m redirect -b 9080 --exclude-sources 198.51.100.7",
	"-b 9080 --preserve-source",
	"-b 9080,15021 -d 9081 --preserve-source --exclude-sources 203.0.113.0/24,2001:db8::/32",
	"--upstream localhost --no-ipv6",
	/* Outbound capture (issue 10). */
	"--outbound",
	"-u 1000,1001 -g 5 -q 80,443 -o 8080 -i 203.0.113.0/24,2001:db8:2::/64 -x 203.0.113.9 "
	"-d 22",
	"--outbound --no-ipv6 -p 15101 --upstream localhost",
	"-m redirect -b 9080 -p 15101 -o 8080 -x 2001:db8:2::/64",
	/* --notrack, with and without outbound capture. */
	"--notrack",
	"--notrack -u 1000,1001 -q 80,443 -o 8080 -i 203.0.113.0/24,2001:db8:2::/64 -x 203.0.113.9",
	"--notrack -b 9080 --preserve-source --exclude-sources 203.0.113.0/24",
	"--notrack --outbound --no-ipv6 -p 15101 --upstream localhost",
	/* Istio's TPROXY mode, with the source kept and named ports as it allows. */
	"--outbound-mode redirect",
	"-b 9080 --preserve-source --outbound-mode redirect -o 8080 --no-ipv6",
};

/*
 * --dry-run prints the equivalent nft script and ip commands: replayed in a
 * second namespace they give what a real install gives. It needs no
 * privilege and touches nothing.
 */
START_TEST(test_dry_run)
{
	const char *flags = dry_flags[_i];
	char real[NH_NAME_MAX], dry[NH_NAME_MAX], path[96], *script = NULL, *err = NULL;
	char *a, *b, *before, *after, *nft_part, *ip_part;
	size_t nl = 0, il = 0;
	FILE *nf, *ipf;
	int ret;

	fresh(real, "dr", true);
	fresh(dry, "dd", true);
	TPIN_OK("--netns %s %s", real, flags);

	/* As nobody, without --netns: no privilege, no namespace needed. */
	before = snapshot(dry);
	ret = nh_sh(NULL, &script, &err,
		    "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		    "--bounding-set=-all %s --dry-run %s",
		    tpin_init, flags);
	ck_assert_msg(ret == 0, "--dry-run %s as nobody exited %d: %s", flags, ret, err);
	free(err);
	ck_assert_msg(has(script, "table inet tpin"), "no nft script in: %s", script);
	/* Root with --netns: still touches nothing. */
	ret = tpin(NULL, &err, "--netns %s --dry-run %s", dry, flags);
	ck_assert_msg(ret == 0, "--dry-run --netns exited %d: %s", ret, err);
	free(err);
	after = snapshot(dry);
	assert_same("--dry-run", before, after);
	free(before);
	free(after);

	/*
	 * Lines starting with `ip ` (or `# ip `, commented so that the whole
	 * output stays a valid nft script) are commands, the rest is nft's.
	 */
	nf = open_memstream(&nft_part, &nl);
	ipf = open_memstream(&ip_part, &il);
	ck_assert(nf && ipf);
	for (char *save = NULL, *line = strtok_r(script, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *t = line + strspn(line, " \t"), *c = t;

		if (*c == '#')
			c += 1 + strspn(c + 1, " \t");
		if (!strncmp(c, "ip ", 3))
			fprintf(ipf, "%s\n", c);
		if (strncmp(t, "ip ", 3))
			fprintf(nf, "%s\n", line);
	}
	fclose(nf);
	fclose(ipf);
	snprintf(path, sizeof(path), "/tmp/%s.nft", dry);
	nf = fopen(path, "w");
	ck_assert(nf);
	fputs(nft_part, nf);
	fclose(nf);
	ret = nh_sh(dry, NULL, &err, "nft -f %s", path);
	unlink(path);
	ck_assert_msg(ret == 0, "nft -f of the dry-run script failed (%d): %s\n%s", ret, err,
		      nft_part);
	free(err);
	ret = nh_sh(dry, NULL, &err, "set -e\n%s", ip_part);
	ck_assert_msg(ret == 0, "the dry-run ip commands failed (%d): %s\n%s", ret, err, ip_part);
	free(err);

	/*
	 * What nft made of the script is, message for message, what tpin-init
	 * sends: --check compares the kernel's own rendering of both.
	 */
	ret = tpin(NULL, &err, "--netns %s --check %s", dry, flags);
	if (ret)
		fprintf(stderr, "--dry-run %s: script:\n%s", flags, nft_part);
	ck_assert_msg(ret == 0, "--check of the replayed dry-run %s exited %d: %s", flags, ret,
		      cut(err));
	free(err);
	a = snapshot(real);
	b = snapshot(dry);
	if (strcmp(a, b)) {
		char *d = text_diff(a, b);

		fprintf(stderr, "--dry-run %s: script:\n%s%s", flags, nft_part, ip_part);
		ck_abort_msg("--dry-run %s replayed differs from the install:\n%s", flags, cut(d));
	}
	free(a);
	free(b);
	free(nft_part);
	free(ip_part);
	free(script);
}
END_TEST

START_TEST(test_redirect)
{
	char ns[NH_NAME_MAX], *r[16], *a, *b, *s;
	int n, lo = -1, excl = -1, redir = -1;
	json_t *root;

	fresh(ns, "red", false);
	TPIN_OK("--netns %s -m redirect", ns);
	root = ruleset(ns);
	ck_assert_msg(find_obj(root, "table", "tpin", "tpin"), "no table inet tpin");
	assert_chain(root, "tpin", "prerouting", "nat", "prerouting", -100);
	assert_port_set(root, "tpin", "exclude_ports", default_excluded, 5);
	n = chain_rules(root, "tpin", "prerouting", r, 16);
	for (int i = 0; i < n; i++) {
		if (has(r[i], "{\"meta\":{\"key\":\"iif\"}}") && has(r[i], "\"return\""))
			lo = i;
		if (has(r[i], "\"@exclude_ports\"") && has(r[i], "\"return\""))
			excl = i;
		if (has(r[i], "\"redirect\":{\"port\":15006}"))
			redir = i;
		ck_assert_msg(!has(r[i], "\"tproxy\"") && !has(r[i], "\"socket\""),
			      "TPROXY expression in redirect mode: %s", r[i]);
	}
	ck_assert_msg(lo >= 0 && excl > lo && redir > excl && redir == n - 1,
		      "redirect chain order: iif lo %d, exclusions %d, redirect %d of %d", lo, excl,
		      redir, n);
	free_dumps(r, n);
	json_decref(root);
	s = witness(ns, "ip -o link show lo");
	ck_assert_msg(has(s, ",UP"), "lo still down: %s", s);
	free(s);
	/* No policy routing in REDIRECT mode, but ::6 for the passthrough source. */
	assert_routing(ns, "0x539", 133, false);
	assert_addr6(ns, true);

	a = snapshot(ns);
	TPIN_OK("--netns %s -m redirect", ns);
	b = snapshot(ns);
	assert_same("a second redirect run", a, b);
	free(a);
	free(b);
	TPIN_OK("--netns %s -m redirect --check", ns);
	free(witness(ns, "nft flush table inet tpin"));
	assert_drift(ns, "-m redirect", "nft flush table inet tpin",
		     (const char *const[]){ "rule", NULL });
	TPIN_OK("--netns %s -m redirect --cleanup", ns);
	assert_nothing(ns);
	TPIN_OK("--netns %s -m redirect --cleanup", ns);
}
END_TEST

/* Switching modes replaces the table whole: no chain of the old mode survives. */
START_TEST(test_mode_switch)
{
	struct want w = WANT_DEFAULT;
	char ns[NH_NAME_MAX];
	json_t *root;

	fresh(ns, "sw", true);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s -m redirect", ns);
	root = ruleset(ns);
	assert_chain(root, "tpin", "prerouting", "nat", "prerouting", -100);
	json_decref(root);
	TPIN_OK("--netns %s -m redirect --check", ns);
	TPIN_OK("--netns %s", ns);
	root = ruleset(ns);
	assert_tproxy_chain(root, &w);
	json_decref(root);
	assert_routing(ns, "0x539", 133, true);
	TPIN_OK("--netns %s --check", ns);
	/* Back to redirect: TPROXY's rules and routes are not left behind. */
	TPIN_OK("--netns %s -m redirect", ns);
	assert_routing(ns, "0x539", 133, false);
}
END_TEST

/*
 * Other flags leave nothing of the earlier install behind, and --cleanup
 * removes tpin's pieces whatever flags installed them, but never an
 * identical rule someone else added.
 */
START_TEST(test_flags_changed_and_foreign_rule)
{
	char ns[NH_NAME_MAX], *s;

	fresh(ns, "chg", true);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s -t 0x600 -r 200", ns);
	assert_routing(ns, "0x539", 133, false);
	assert_routing(ns, "0x600", 200, true);
	TPIN_OK("--netns %s -t 0x600 -r 200 --no-ipv6", ns);
	s = witness(ns, "ip -6 rule");
	ck_assert_msg(!has(s, "fwmark"), "--no-ipv6 left an IPv6 rule:\n%s", s);
	free(s);
	assert_addr6(ns, false);
	TPIN_OK("--netns %s -t 0x600 -r 200", ns);
	/* Someone else's rule, the same as tpin's default but without its tag. */
	s = witness(ns, "ip -4 rule add fwmark 0x539 lookup 133");
	free(s);
	TPIN_OK("--netns %s --cleanup", ns);
	s = witness(
		ns,
		"ip -4 rule; ip -6 rule; ip -4 route show table 200; ip -6 route show table 200");
	ck_assert_msg(nh_count(s, "fwmark 0x539 lookup 133") == 1 && !has(s, "0x600") &&
			      !has(s, "proto 116") && !has(s, "local default"),
		      "after --cleanup:\n%s", s);
	free(s);
	assert_addr6(ns, false);
}
END_TEST

/* Every value flag, and --netns given as a path. */
START_TEST(test_custom_values)
{
	static const int excl[] = { 15001, 15007, 15020, 15021, 15090 };
	struct want w = { .table = "tpx", .mark = 0x100, .port = 15007 };
	char ns[NH_NAME_MAX], path[128];
	json_t *root;

	fresh(ns, "cus", true);
	nh_ns_path(ns, path, sizeof(path));
	TPIN_OK("--netns %s --table-name tpx -t 0x100 -r 200 -z 15007 --admin-port 15001", path);
	root = ruleset(ns);
	assert_tproxy_chain(root, &w);
	assert_port_set(root, "tpx", "exclude_ports", excl, 5);
	ck_assert(!find_obj(root, "table", "tpin", "tpin"));
	json_decref(root);
	assert_routing(ns, "0x100", 200, true);
	assert_routing(ns, "0x539", 133, false);
	assert_addr6(ns, true);
	TPIN_OK("--netns %s --table-name tpx --mark 0x100 --table 200 --capture-port 15007 "
		"--admin-port 15001 --check",
		path);
	TPIN_OK("--netns %s --table-name tpx -t 0x100 -r 200 -z 15007 --admin-port 15001 --cleanup",
		path);
	assert_nothing(ns);
	assert_routing(ns, "0x100", 200, false);
}
END_TEST

START_TEST(test_preserve_source)
{
	static const int inb[] = { 9080 };
	struct want w = WANT_DEFAULT;
	char ns[NH_NAME_MAX], *r[8];
	json_t *root;
	int n;

	fresh(ns, "pre", true);
	TPIN_OK("--netns %s -b 9080 --preserve-source", ns);
	root = ruleset(ns);
	w.inbound = true;
	assert_tproxy_chain(root, &w);
	assert_port_set(root, "tpin", "inbound_ports", inb, 1);
	assert_chain(root, "tpin", "output", "route", "output", -150);
	/* The app's replies go back to the proxy by mark, without conntrack. */
	n = chain_rules(root, "tpin", "output", r, 8);
	ck_assert_int_ge(n, 1);
	ck_assert_msg(
		has(r[n - 1], "\"fib\"") && has(r[n - 1], "\"sport\"") &&
			has(r[n - 1],
			    "\"mangle\":{\"key\":{\"meta\":{\"key\":\"mark\"}},\"value\":1337}"),
		"output rule: %s", r[n - 1]);
	free_dumps(r, n);
	json_decref(root);
	TPIN_OK("--netns %s -b 9080 --preserve-source --check", ns);
	TPIN_OK("--netns %s --cleanup", ns);
	assert_nothing(ns);
}
END_TEST

/* tpin owns its table, its rules and routes; it leaves everyone else's alone. */
START_TEST(test_foreign_state_untouched)
{
	char ns[NH_NAME_MAX], *before, *after;

	fresh(ns, "for", true);
	free(witness(
		ns,
		"nft add table inet other && "
		"nft add chain inet other pre '{ type filter hook prerouting priority 0; }' && "
		"nft add rule inet other pre tcp dport 22 accept && "
		"nft add table ip tpin && "
		"ip -4 rule add fwmark 0x99 lookup 99 && ip -6 rule add fwmark 0x99 lookup 99 && "
		"ip -4 route add local 203.0.113.0/24 dev lo table 99 && "
		"ip -6 addr add ::7/128 dev lo"));
	before = snapshot(ns);
	TPIN_OK("--netns %s", ns);
	TPIN_OK("--netns %s --check", ns);
	TPIN_OK("--netns %s --cleanup", ns);
	after = snapshot(ns);
	assert_same("install + cleanup beside foreign state", before, after);
	free(before);
	free(after);
}
END_TEST

static Suite *init_suite(void)
{
	Suite *s = suite_create("netns_init");
	TCase *tc = tcase_create("install");
	TCase *tf = tcase_create("failures");

	tpin_init = getenv("TPIN_INIT");
	tpin_init_faults = getenv("TPIN_INIT_FAULTS");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_install_tproxy);
	tcase_add_test(tc, test_rerun_same_flags);
	tcase_add_test(tc, test_rerun_other_flags);
	tcase_add_test(tc, test_cleanup_twice);
	tcase_add_test(tc, test_check);
	tcase_add_test(tc, test_check_v6_tproxy_deleted);
	tcase_add_test(tc, test_check_outbound);
	tcase_add_test(tc, test_check_istio_tproxy);
	tcase_add_test(tc, test_digest_reader);
	tcase_add_loop_test(tc, test_dry_run, 0, sizeof(dry_flags) / sizeof(dry_flags[0]));
	tcase_add_test(tc, test_redirect);
	tcase_add_test(tc, test_mode_switch);
	tcase_add_test(tc, test_flags_changed_and_foreign_rule);
	tcase_add_test(tc, test_custom_values);
	tcase_add_test(tc, test_preserve_source);
	tcase_add_test(tc, test_foreign_state_untouched);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tf, NULL, teardown);
	tcase_set_timeout(tf, 60);
	tcase_add_loop_test(tf, test_fail_injection_over_install, 0,
			    sizeof(fail_steps) / sizeof(fail_steps[0]));
	tcase_add_loop_test(tf, test_fail_injection_clean, 0,
			    sizeof(fail_steps) / sizeof(fail_steps[0]));
	tcase_add_test(tf, test_no_fault_points_installed);
	tcase_add_test(tf, test_unprivileged);
	tcase_add_test(tf, test_only_net_admin);
	tcase_add_loop_test(tf, test_bad_values, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	suite_add_tcase(s, tf);
	return s;
}

const struct nh_suite nh_suite = { .make = init_suite, .env = { "TPIN_INIT", "TPIN_INIT_FAULTS" } };
