// SPDX-License-Identifier: MIT
/*
 * tpin-init --check's nftables half: the live table, read back by
 * nft_read.c, against what an install batch would create, rendered by the
 * same code. Every line of either side that the other lacks is a
 * difference.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/nft_batch.h"
#include "tpin/nft_diff.h"
#include "tpin/nft_read.h"
#include "tpin/nft_verify.h"
#include "tpin/out.h"

int tpin_nft_diff(const struct tpin_nft_batch *expected, const char *table,
		  const struct tpin_out *out)
{
	struct tpin_nft_lines want = { 0 }, live = { 0 };
	char comment[256], digest[TPIN_NFT_DIGEST_MAX];
	const char **desc = NULL; /* the nft command behind each wanted line */
	bool *want_matched = NULL, *live_matched = NULL;
	size_t i, j, n = tpin_nft_batch_count(expected);
	int ret = -ENOMEM, diffs = 0;

	desc = calloc(n ? n : 1, sizeof(*desc));
	if (!desc)
		goto out;
	for (i = 0, ret = 0; !ret && i < n; i++) {
		size_t before = want.n;

		ret = tpin_nft_lines_add(&want, tpin_nft_batch_msg(expected, i));
		if (want.n > before)
			desc[want.n - 1] = tpin_nft_batch_command(expected, i);
	}
	if (ret)
		goto out;
	ret = tpin_nft_read_table(table, &live, comment, sizeof(comment));
	if (ret == -ENOENT) {
		tpin_out_error(out, "table inet %s is missing", table);
		ret = 1;
		goto out;
	}
	if (ret)
		goto out;
	ret = -ENOMEM;
	want_matched = calloc(want.n + 1, sizeof(bool));
	live_matched = calloc(live.n + 1, sizeof(bool));
	if (!want_matched || !live_matched)
		goto out;
	/* The table message itself renders to nothing unless it is dormant. */
	for (i = 0; i < want.n; i++) {
		for (j = 0; j < live.n; j++) {
			if (!live_matched[j] && !strcmp(want.v[i], live.v[j])) {
				live_matched[j] = want_matched[i] = true;
				break;
			}
		}
		if (!want_matched[i]) {
			tpin_out_error(out, "missing or changed: %s", desc[i]);
			diffs++;
		}
	}
	for (j = 0; j < live.n; j++) {
		if (!live_matched[j]) {
			tpin_out_error(out, "unexpected in the kernel: %s", live.v[j]);
			diffs++;
		}
	}
	/*
	 * The comment carries the digest readiness compares with: a table
	 * whose rules match but whose comment does not would fail readiness.
	 */
	ret = tpin_nft_digest(&want, digest, sizeof(digest));
	if (ret)
		goto out;
	if (strcmp(comment, digest)) {
		tpin_out_error(out, "the table's comment is \"%s\", not the digest \"%s\"", comment,
			       digest);
		diffs++;
	}
	ret = diffs;
out:
	free(desc);
	free(want_matched);
	free(live_matched);
	tpin_nft_lines_free(&want);
	tpin_nft_lines_free(&live);
	return ret;
}
