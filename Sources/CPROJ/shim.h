// PROJ's geodesic routines (Karney's algorithms). Debian: libproj-dev.
#include <geodesic.h>
