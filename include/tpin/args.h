/* SPDX-License-Identifier: MIT */
#ifndef TPIN_ARGS_H
#define TPIN_ARGS_H

#include "tpin/config.h"
#include "tpin/err.h"

/* tpin-init's command line, parsed apart from main() so it can be tested. */

enum tpin_action {
	TPIN_ACT_INSTALL,
	TPIN_ACT_DRY_RUN,
	TPIN_ACT_CHECK,
	TPIN_ACT_CLEANUP,
	TPIN_ACT_HELP,
	TPIN_ACT_VERSION,
};

struct tpin_args {
	enum tpin_action action;
	const char *netns; /* --netns (points into argv), or NULL: the current namespace */
	struct tpin_config cfg;
};

/*
 * tpin_args_parse - parse @argv into @args and finish the config
 * (tpin_config_finish). List flags (-b, -d, --exclude-sources) given more
 * than once add up; the first -b replaces the default "*". Returns 0, or
 * -EINVAL / -E2BIG for bad usage with @err naming the flag and the bad
 * value or the conflict, in one line; tpin-init exits 2 then. Reentrant:
 * it resets getopt's state first.
 */
int tpin_args_parse(struct tpin_args *args, int argc, char **argv, struct tpin_err *err);

#endif
