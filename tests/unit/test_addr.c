// SPDX-License-Identifier: MIT
/* Table-driven tests of port, range and CIDR parsing, the bad inputs first. */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "tpin/addr.h"
#include "tpin/config.h"

struct ports_case {
	const char *in;
	int ret;
	const char *out;     /* formatted result when ret == 0 */
	const char *err_has; /* substring of the message when ret != 0 */
};

static const struct ports_case ports_cases[] = {
	{ "*", 0, "*", NULL },
	{ "", 0, "", NULL },
	{ "80", 0, "80", NULL },
	{ "80,443", 0, "80,443", NULL },
	{ "443,80", 0, "80,443", NULL },
	{ "8000-8080,8080-8090", 0, "8000-8090", NULL },
	{ "1-10,11-20", 0, "1-20", NULL },
	{ "5,3,4", 0, "3-5", NULL },
	{ "1-65535", 0, "1-65535", NULL },
	{ "100-200,150", 0, "100-200", NULL },
	{ "9,1-3,7", 0, "1-3,7,9", NULL },
	{ "70000", -EINVAL, NULL, "70000" },
	{ "10-5", -EINVAL, NULL, "10-5" },
	{ "0", -EINVAL, NULL, "port 0" },
	{ "80,", -EINVAL, NULL, "empty" },
	{ ",80", -EINVAL, NULL, "empty" },
	{ "abc", -EINVAL, NULL, "abc" },
	{ "-5", -EINVAL, NULL, "\"-5\" is not a port range" },
	{ "5-", -EINVAL, NULL, "\"5-\" is not a port range" },
	{ "+80", -EINVAL, NULL, "+80" },
	{ "80 ", -EINVAL, NULL, "80 " },
	{ "80,*", -EINVAL, NULL, "*" },
	{ "99999999999999999999", -EINVAL, NULL, "99999999999999999999" },
};

START_TEST(test_ports_table)
{
	const struct ports_case *c = &ports_cases[_i];
	struct tpin_ports p;
	struct tpin_err err = { 0 };
	char out[256];
	int ret = tpin_ports_parse(&p, c->in, &err);

	ck_assert_msg(ret == c->ret, "\"%s\": got %d want %d (%s)", c->in, ret, c->ret, err.msg);
	if (!ret) {
		tpin_ports_format(&p, out, sizeof(out));
		ck_assert_str_eq(out, c->out);
	} else {
		ck_assert_msg(strstr(err.msg, c->err_has), "\"%s\": message \"%s\" lacks \"%s\"",
			      c->in, err.msg, c->err_has);
	}
}
END_TEST

START_TEST(test_ports_contains_and_limit)
{
	struct tpin_ports p;
	struct tpin_err err;
	char big[8 * (TPIN_PORTS_MAX + 2)];
	size_t i, off = 0;

	ck_assert_int_eq(tpin_ports_parse(&p, "80,8000-8080", &err), 0);
	ck_assert(tpin_ports_contains(&p, 80));
	ck_assert(tpin_ports_contains(&p, 8000));
	ck_assert(tpin_ports_contains(&p, 8080));
	ck_assert(!tpin_ports_contains(&p, 81));
	ck_assert(!tpin_ports_contains(&p, 8081));

	/* One more disjoint entry than fits is refused, not truncated. */
	for (i = 0; i <= TPIN_PORTS_MAX; i++)
		off += (size_t)snprintf(big + off, sizeof(big) - off, "%s%zu", i ? "," : "",
					1 + 2 * i);
	ck_assert_int_eq(tpin_ports_parse(&p, big, &err), -E2BIG);
	big[strlen(big) - 4] = '\0'; /* drop the last entry ",513" */
	ck_assert_int_eq(tpin_ports_parse(&p, big, &err), 0);
	ck_assert_uint_eq(p.n, TPIN_PORTS_MAX);
}
END_TEST

struct cidr_case {
	const char *in;
	int ret;
	const char *out;
};

static const struct cidr_case cidr_cases[] = {
	{ "10.0.0.0/8", 0, "10.0.0.0/8" },
	{ "203.0.113.7/24", 0, "203.0.113.0/24" },
	{ "203.0.113.7", 0, "203.0.113.7/32" },
	{ "0.0.0.0/0", 0, "0.0.0.0/0" },
	{ "198.51.100.129/25", 0, "198.51.100.128/25" },
	{ "2001:db8::1/32", 0, "2001:db8::/32" },
	{ "2001:db8::1", 0, "2001:db8::1/128" },
	{ "::/0", 0, "::/0" },
	{ "2001:db8:ffff::/47", 0, "2001:db8:fffe::/47" },
	{ "10.0.0.0/33", -EINVAL, NULL },
	{ "2001:db8::/129", -EINVAL, NULL },
	{ "10.0.0/8", -EINVAL, NULL },
	{ "10.0.0.0/", -EINVAL, NULL },
	{ "10.0.0.0/-1", -EINVAL, NULL },
	{ "10.0.0.0/8x", -EINVAL, NULL },
	{ "host.example", -EINVAL, NULL },
	{ "", -EINVAL, NULL },
};

START_TEST(test_cidr_table)
{
	const struct cidr_case *c = &cidr_cases[_i];
	struct tpin_cidr cidr;
	struct tpin_err err = { 0 };
	char out[64];
	int ret = tpin_cidr_parse(&cidr, c->in, &err);

	ck_assert_msg(ret == c->ret, "\"%s\": got %d want %d", c->in, ret, c->ret);
	if (!ret) {
		tpin_cidr_format(&cidr, out, sizeof(out));
		ck_assert_str_eq(out, c->out);
	} else {
		/* The message names the value the operator typed. */
		ck_assert_msg(
			*c->in == '\0' || strstr(err.msg, c->in) ||
				(strchr(c->in, '/') && strstr(err.msg, strchr(c->in, '/') + 1)),
			"\"%s\": message \"%s\"", c->in, err.msg);
	}
}
END_TEST

START_TEST(test_cidrs_list)
{
	struct tpin_cidrs l;
	struct tpin_err err;
	char out[64];
	uint8_t last[16];

	ck_assert_int_eq(tpin_cidrs_parse(&l,
					  "203.0.113.0/24,2001:db8::/32,203.0.113.64/26,"
					  "2001:db8:1::/48,198.51.100.1",
					  &err),
			 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_uint_eq(tpin_cidrs_count(&l, AF_INET), 2);
	ck_assert_uint_eq(tpin_cidrs_count(&l, AF_INET6), 1);
	tpin_cidr_format(&l.c[0], out, sizeof(out));
	ck_assert_str_eq(out, "198.51.100.1/32");
	tpin_cidr_format(&l.c[1], out, sizeof(out));
	ck_assert_str_eq(out, "203.0.113.0/24");
	tpin_cidr_last(&l.c[1], last);
	ck_assert_int_eq(last[3], 255);
	ck_assert_int_eq(last[2], 113);
	ck_assert_int_eq(tpin_cidrs_parse(&l, "10.0.0.0/8,10.0.0.0/33", &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "10.0.0.0/33"));
	ck_assert_int_eq(tpin_cidrs_parse(&l, "", &err), 0);
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

START_TEST(test_config)
{
	struct tpin_config cfg;
	enum tpin_mode m;
	struct tpin_err err;
	char name[TPIN_TABLE_NAME_MAX], out[128];
	uint32_t v;

	ck_assert_int_eq(tpin_mode_parse(&m, "redirect", &err), 0);
	ck_assert_int_eq(m, TPIN_MODE_REDIRECT);
	ck_assert_int_eq(tpin_mode_parse(&m, "nat", &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "\"nat\""));
	ck_assert_int_eq(tpin_u32_parse(&v, "0x539", 1, 0xffffffff, &err), 0);
	ck_assert_uint_eq(v, 1337);
	ck_assert_int_eq(tpin_u32_parse(&v, "-1", 1, 100, &err), -EINVAL);
	ck_assert_int_eq(tpin_u32_parse(&v, "101", 1, 100, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "101"));
	ck_assert_int_eq(tpin_table_name_parse(name, "tpin_2", &err), 0);
	ck_assert_int_eq(tpin_table_name_parse(name, "x y", &err), -EINVAL);
	ck_assert_int_eq(tpin_table_name_parse(name, "", &err), -EINVAL);

	tpin_config_init(&cfg);
	ck_assert_int_eq(tpin_config_finish(&cfg, &err), 0);
	tpin_ports_format(&cfg.excluded, out, sizeof(out));
	ck_assert_str_eq(out, "15000,15006,15020-15021,15090");

	tpin_config_init(&cfg);
	cfg.preserve_source = true;
	ck_assert_int_eq(tpin_config_finish(&cfg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "--inbound-ports"));
}
END_TEST

static Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_ports_table, 0, sizeof(ports_cases) / sizeof(ports_cases[0]));
	tcase_add_test(tc, test_ports_contains_and_limit);
	tcase_add_loop_test(tc, test_cidr_table, 0, sizeof(cidr_cases) / sizeof(cidr_cases[0]));
	tcase_add_test(tc, test_cidrs_list);
	tcase_add_test(tc, test_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
