// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for every parser of command-line values: port lists,
 * CIDR lists, modes, numbers, table names and owner (uid, gid) lists. The
 * input's first byte picks the parser; the rest is the text. Parsed values
 * are formatted back and re-parsed, which must give the same value; owner
 * lists must come out sorted and without duplicates.
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/addr.h"
#include "tpin/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tpin_ports ports, again;
	static struct tpin_cidrs cidrs;
	static struct tpin_ids ids;
	char text[1024], out[8192];
	struct tpin_err err;
	struct tpin_cidr c, c2;
	enum tpin_mode mode;
	uint32_t v;
	uint16_t port;

	if (size < 1 || size > sizeof(text))
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 7) {
	case 0:
		if (!tpin_ports_parse(&ports, text, &err)) {
			tpin_ports_format(&ports, out, sizeof(out));
			assert(!tpin_ports_parse(&again, out, &err));
			assert(again.all == ports.all && again.n == ports.n);
			assert(!memcmp(again.r, ports.r, ports.n * sizeof(ports.r[0])));
		}
		break;
	case 1:
		if (!tpin_cidr_parse(&c, text, &err)) {
			tpin_cidr_format(&c, out, sizeof(out));
			assert(!tpin_cidr_parse(&c2, out, &err));
			assert(!memcmp(&c, &c2, sizeof(c)));
		}
		break;
	case 2:
		tpin_cidrs_parse(&cidrs, text, &err);
		break;
	case 3:
		tpin_mode_parse(&mode, text, &err);
		break;
	case 4:
		tpin_u32_parse(&v, text, 1, UINT32_MAX, &err);
		tpin_port_parse(&port, text, &err);
		break;
	case 5:
		tpin_table_name_parse(out, text, &err);
		break;
	default:
		/* Owner lists add up: sorted, no duplicate, never (uid_t)-1. */
		ids.n = 0;
		if (!tpin_ids_parse(&ids, text, &err)) {
			assert(ids.n >= 1 && ids.n <= TPIN_IDS_MAX);
			for (size_t i = 0; i < ids.n; i++)
				assert(ids.v[i] != UINT32_MAX && (!i || ids.v[i - 1] < ids.v[i]));
		}
	}
	return 0;
}
