/* SPDX-License-Identifier: MIT */
#ifndef TPIN_ERR_H
#define TPIN_ERR_H

/*
 * How a function tells what went wrong. Every function returns 0 or a
 * negative errno (a few return a count or a state, which their contract
 * says); those that can say more fill a struct tpin_err the caller owns: a
 * one-line message for the operator that names the bad value, and the same
 * -errno. A caller adds context around err->msg, never parses it.
 */

#define TPIN_ERR_MAX 1024

struct tpin_err {
	int code;		/* -errno, 0 until something is set */
	char msg[TPIN_ERR_MAX]; /* one line, no newline; "" until set */
};

/*
 * tpin_err_set - store @code and the message @fmt formats in @err (which may
 * be NULL: the caller wants the code only), cut to TPIN_ERR_MAX - 1 bytes.
 * Returns @code, so that a failure path reads
 *	return tpin_err_set(err, -EINVAL, "\"%s\" is not a port number", text);
 */
int tpin_err_set(struct tpin_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
