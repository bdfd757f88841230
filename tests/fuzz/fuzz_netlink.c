// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for what tpin-init reads back from the kernel for
 * --check and parses itself: a set elements message rendered to canonical
 * text (the input is its payload after the nfgenmsg header).
 *
 * Rules, chains and sets go through libnftnl's parsers, which exit() the
 * process on an attribute they cannot validate ("kernel ABI is broken"):
 * its policy for what only the kernel sends, so they are not fuzzed here.
 */

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/nft_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = NLMSG_HDRLEN + sizeof(struct nfgenmsg) + size;
	struct nlmsghdr *nlh;
	char out[8192];

	if (len > 65535)
		return 0;
	nlh = calloc(1, NLMSG_ALIGN(len));
	if (!nlh)
		return 0;
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
	memcpy((char *)NLMSG_DATA(nlh) + sizeof(struct nfgenmsg), data, size);
	tpin_nft_render(nlh, out, sizeof(out));
	free(nlh);
	return 0;
}
