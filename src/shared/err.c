// SPDX-License-Identifier: MIT
/* The one way an error message travels (see tpin/err.h). */

#include <stdarg.h>
#include <stdio.h>

#include "tpin/err.h"

int tpin_err_set(struct tpin_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code;
	return code;
}
