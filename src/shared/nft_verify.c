// SPDX-License-Identifier: MIT
/*
 * Is the live table still what tpin-init installed? tpin-init puts a digest
 * of the table's canonical rendering in its comment (nft_build.c); this
 * renders the live table the same way (nft_read.c) and compares.
 */

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>

#include "tpin/nft_read.h"
#include "tpin/nft_verify.h"
#include "tpin/nl.h"

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV64_PRIME;
	}
	return h;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int tpin_nft_digest(const struct tpin_nft_lines *lines, char *out, size_t len)
{
	char **sorted;
	uint64_t h = FNV64_OFFSET;
	size_t i;

	if (len < TPIN_NFT_DIGEST_MAX)
		return -ENOSPC;
	/* Sorted, so the order objects are dumped in does not matter. */
	sorted = malloc((lines->n ? lines->n : 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	if (lines->n)
		memcpy(sorted, lines->v, lines->n * sizeof(*sorted));
	qsort(sorted, lines->n, sizeof(*sorted), line_cmp);
	for (i = 0; i < lines->n; i++) {
		h = fnv1a(h, sorted[i], strlen(sorted[i]));
		h = fnv1a(h, "\n", 1);
	}
	free(sorted);
	snprintf(out, len, "%s%016llx", TPIN_NFT_DIGEST_PREFIX, (unsigned long long)h);
	return 0;
}

int tpin_nft_verify(const char *table)
{
	struct tpin_nft_lines live = { 0 };
	char comment[256], digest[TPIN_NFT_DIGEST_MAX];
	int ret;

	ret = tpin_nft_read_table(table, &live, comment, sizeof(comment));
	if (!ret)
		ret = tpin_nft_digest(&live, digest, sizeof(digest));
	/* A table with no digest of tpin's, or another, is not tpin's table as installed. */
	if (!ret && strcmp(comment, digest))
		ret = -ENODATA;
	tpin_nft_lines_free(&live);
	return ret;
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen = nftnl_gen_alloc();

	if (!gen)
		return MNL_CB_ERROR;
	if (nftnl_gen_nlmsg_parse(nlh, gen) >= 0 && nftnl_gen_is_set(gen, NFTNL_GEN_ID))
		*(int64_t *)data = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return MNL_CB_OK;
}

int tpin_nft_generation(uint32_t *gen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *nlh;
	int64_t id = -1;
	int ret;

	ret = tpin_nl_open(NETLINK_NETFILTER, &nl);
	if (ret)
		return ret;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK,
				    (uint32_t)time(NULL));
	ret = tpin_nl_talk(nl, nlh, buf, sizeof(buf), gen_cb, &id);
	mnl_socket_close(nl);
	if (!ret && id < 0)
		ret = -EBADMSG;
	if (!ret)
		*gen = (uint32_t)id;
	return ret;
}
