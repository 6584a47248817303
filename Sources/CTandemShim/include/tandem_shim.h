// One place for what Swift cannot import directly: C macros, variadic calls,
// and _GNU_SOURCE-only functions. Every name is prefixed `tandem_`.
#ifndef TANDEM_SHIM_H
#define TANDEM_SHIM_H

#include "tandem_process.h"
#include "tandem_net.h"
#include "tandem_tls.h"

#endif
