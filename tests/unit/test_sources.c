// SPDX-License-Identifier: MIT
/*
 * The per-source tables (src/proxy/sources.c, included whole to reach its
 * hash and buckets): the keys come from the network, so the hash must be
 * one a client cannot aim at a bucket.
 */

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/proxy/sources.c"

/* The hash the tables used before: unkeyed FNV-1a, over the same bytes. */
static uint32_t fnv1a(const struct key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void client(struct sockaddr_in6 *sa, uint64_t iid, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1:2::", &sa->sin6_addr);
	memcpy(sa->sin6_addr.s6_addr + 8, &iid, 8);
	sa->sin6_port = htons(port);
}

/* The longest chain of entries in any bucket. */
static unsigned longest_chain(struct sources *s)
{
	unsigned i, b, n, most = 0;
	struct entry *e;

	for (i = 0; i < STRIPES; i++)
		for (b = 0; b < BUCKETS; b++) {
			for (n = 0, e = s->stripe[i].bucket[b]; e; e = e->next)
				n++;
			if (n > most)
				most = n;
		}
	return most;
}

#define CRAFTED 4000

/*
 * One client /64 with --preserve-source picks 4,000 addresses whose
 * 4-tuples all fall in one bucket under FNV-1a (what an attacker without
 * the key can compute). Taken into the tables they must spread: 4,000 keys
 * over 4,096 buckets leave chains of a few entries, never hundreds.
 */
START_TEST(test_crafted_keys_spread)
{
	struct sockaddr_in6 dst, *peers = calloc(CRAFTED, sizeof(*peers));
	struct sources *s;
	struct key k;
	uint32_t want = 0;
	uint64_t iid;
	unsigned found = 0, i, most;

	ck_assert_ptr_nonnull(peers);
	memset(&dst, 0, sizeof(dst));
	dst.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::10", &dst.sin6_addr);
	dst.sin6_port = htons(8080);
	for (iid = 1; found < CRAFTED; iid++) {
		client(&peers[found], iid, 40000);
		/* No ck_assert in this loop of millions: each one costs a write(2). */
		tuple_key((struct sockaddr *)&peers[found], (struct sockaddr *)&dst, &k);
		if (!found)
			want = fnv1a(&k) % (STRIPES * BUCKETS);
		if (fnv1a(&k) % (STRIPES * BUCKETS) == want)
			found++;
	}
	ck_assert_int_eq(sources_new(&s, 0, true), 0);
	for (i = 0; i < CRAFTED; i++)
		ck_assert_int_eq(
			sources_take(s, (struct sockaddr *)&peers[i], (struct sockaddr *)&dst), 0);
	most = longest_chain(s);
	ck_assert_msg(most < 32, "%u crafted keys: a chain of %u", CRAFTED, most);
	for (i = 0; i < CRAFTED; i++)
		ck_assert(sources_live(s, (struct sockaddr *)&peers[i], 40000,
				       (struct sockaddr *)&dst));
	for (i = 0; i < CRAFTED; i++)
		sources_give(s, (struct sockaddr *)&peers[i], (struct sockaddr *)&dst);
	ck_assert_uint_eq(longest_chain(s), 0);
	sources_free(s);
	free(peers);
}
END_TEST

/*
 * The tables use SipHash-1-3; the same code with 2 and 4 rounds must give
 * SipHash-2-4's published vectors (key 00..0f, message 00..len-1).
 */
START_TEST(test_siphash_vectors)
{
	static const struct {
		size_t len;
		uint64_t want;
	} v[] = {
		{ 0, 0x726fdb47dd0e0e31ull },
		{ 1, 0x74f839c593dc67fdull },
		{ 2, 0x0d6c8009d9a94f5aull },
		{ 63, 0x958a324ceb064572ull },
	};
	uint8_t kb[16], msg[64];
	uint64_t key[2];
	unsigned i;

	for (i = 0; i < 16; i++)
		kb[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	key[0] = le64(kb);
	key[1] = le64(kb + 8);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ck_assert_msg(siphash(key, msg, v[i].len, 2, 4) == v[i].want,
			      "%zu bytes: %016llx, not %016llx", v[i].len,
			      (unsigned long long)siphash(key, msg, v[i].len, 2, 4),
			      (unsigned long long)v[i].want);
}
END_TEST

static Suite *sources_suite(void)
{
	Suite *s = suite_create("sources");
	TCase *tc = tcase_create("hash");

	tcase_add_test(tc, test_siphash_vectors);
	tcase_add_test(tc, test_crafted_keys_spread);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sources_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
