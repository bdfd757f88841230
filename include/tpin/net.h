/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NET_H
#define TPIN_NET_H

/* Facts of a pod's network that both programs rely on, defined once. */

/*
 * lo is interface 1 in every network namespace: the kernel registers it
 * first, with LOOPBACK_IFINDEX (include/net/flow.h).
 */
#define TPIN_LOOPBACK_IFINDEX 1

/*
 * The proxy's passthrough sources (Istio >= 1.10): it connects to the app
 * from these, so the app sees a local source that is not 127.0.0.1. lo holds
 * all of 127.0.0.0/8, but IPv6 loopback only ::1, so tpin-init adds ::6/128
 * to lo. TPIN_PASSTHROUGH4 is in host order, like INADDR_LOOPBACK;
 * TPIN_PASSTHROUGH6_INIT initializes a struct in6_addr, like
 * IN6ADDR_LOOPBACK_INIT.
 */
/* clang-format off: the formatter spreads the braces over nine lines. */
#define TPIN_PASSTHROUGH4 0x7f000006u
#define TPIN_PASSTHROUGH6_INIT                                                 \
	{                                                                      \
		{                                                              \
			{                                                      \
				0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6 \
			}                                                      \
		}                                                              \
	}
#define TPIN_PASSTHROUGH4_TEXT "127.0.0.6"
#define TPIN_PASSTHROUGH6_TEXT "::6"
/* clang-format on */

#endif
