// SPDX-License-Identifier: MIT
/*
 * tpin-init-faults' fault points (see tpin/fault.h): TPIN_INIT_FAIL_AT=STEP
 * fails the install just before STEP with -ECANCELED, so a test can stop it
 * at each step and check that the rollback leaves nothing behind. Linked
 * only into the test build, never into the installed tpin-init.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/fault.h"

int tpin_fault(const char *step)
{
	const char *at = getenv("TPIN_INIT_FAIL_AT");

	return at && !strcmp(at, step) ? -ECANCELED : 0;
}
