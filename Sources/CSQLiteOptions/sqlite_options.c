#include "sqlite_options.h"

/* From SQLiteNIO's copy of SQLite (its symbols carry the sqlite_nio_ prefix). */
int sqlite_nio_sqlite3_db_config(void *db, int op, ...);

#define CITYTWIN_SQLITE_DBCONFIG_ENABLE_QPSG 1007

int citytwin_sqlite_keep_plans(void *db) {
    int enabled = 0;
    return sqlite_nio_sqlite3_db_config(db, CITYTWIN_SQLITE_DBCONFIG_ENABLE_QPSG, 1, &enabled);
}
