// SPDX-License-Identifier: MIT
/* The shipped programs' test hooks: none. See tpin/proxy-hooks.h. */

#include <stddef.h>

#include "tpin/proxy-hooks.h"

struct tpin_proxy_hooks *tpin_proxy_hooks(void)
{
	return NULL;
}
