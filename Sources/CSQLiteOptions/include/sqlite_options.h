#ifndef CITYTWIN_SQLITE_OPTIONS_H
#define CITYTWIN_SQLITE_OPTIONS_H

/// Turns on SQLite's query planner stability guarantee for a connection (SQLITE_DBCONFIG_ENABLE_QPSG):
/// a kept prepared statement keeps its plan when new values are bound, instead of being prepared again.
/// `db` is an sqlite3 handle of the SQLite that SQLiteNIO links; returns SQLite's result code.
/// (sqlite3_db_config is variadic, which Swift cannot call.)
int citytwin_sqlite_keep_plans(void *db);

#endif
