/* SPDX-License-Identifier: MIT */
#ifndef TPIN_FAULT_H
#define TPIN_FAULT_H

/*
 * The installer's fault points, resolved at link time so that nothing
 * test-only is in the shipped binary. libtpin-init calls tpin_fault() before
 * each install step and does not define it: the installed tpin-init links
 * src/init/fault_none.c, which never fails; the test-only tpin-init-faults
 * links tests/fault_env.c, which fails the step named by the environment.
 */

/*
 * tpin_fault - whether the install must fail just before @step (rule4,
 * route4, rule6, route6, addr6, nft). Returns 0 to go on, or the -errno to
 * fail the step with.
 */
int tpin_fault(const char *step);

#endif
