// SPDX-License-Identifier: GPL-2.0
/*
 * kprim_kunit.ko - the KUnit suites of kprim. Each suite lives in its own
 * file beside this one and reaches the module's internals through the
 * EXPORTED_FOR_KUNIT_TESTING namespace.
 */
#include <linux/module.h>
#include "../compat.h"

MODULE_DESCRIPTION("KUnit tests for kprim");
MODULE_LICENSE("GPL");
KPRIM_IMPORT_KUNIT_NS();
