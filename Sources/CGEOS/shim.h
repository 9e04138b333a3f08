// GEOS's C API, thread-safe (re-entrant) functions only. Debian: libgeos-dev.
#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
