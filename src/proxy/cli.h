/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_CLI_H
#define TPIN_PROXY_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tpin/config.h"
#include "tpin/log.h"
#include "tpin/proxy-options.h"

struct tpin_err;

/* What the command line asks for: the proxy's options and the process's own. */
struct cli_settings {
	struct tpin_proxy_options proxy;
	enum tpin_log_format log_format;
	const char *log_file;
	const char *user;
	uid_t uid;
	gid_t gid;
	char table_name[TPIN_TABLE_NAME_MAX];
	uint32_t drain_ms;
	bool max_auto, per_source_auto; /* derived from the descriptor limit at start */
	bool outbound_mode_set;		/* else outbound follows --mode */
	uint32_t route_table;
	uint32_t mark;
};

/*
 * cli_parse() - read tpin-proxy's arguments into @st, whose defaults the
 * caller has set. --help prints the help and exits 0.
 *
 * Return: 0, or -EINVAL with @err naming the option and the bad value.
 */
int cli_parse(struct cli_settings *st, int argc, char **argv, struct tpin_err *err);

#endif
