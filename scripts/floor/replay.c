// Runs an SQL script on a SQLite database with the server's own SQLite (sqlite-nio's amalgamation) and
// the writer's settings, and prints the wall and CPU time of all but its first line (which is run first,
// untimed: attaching and warming what the script reads).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
#include "sqlite_nio_sqlite3.h"

static double wall(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) {
    struct rusage r; getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}
static void run(sqlite3 *db, const char *sql) {
    char *error = 0;
    if (sqlite_nio_sqlite3_exec(db, sql, 0, 0, &error)) { fprintf(stderr, "replay: %s\n", error); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: replay DATABASE SCRIPT\n"); return 2; }
    sqlite3 *db;
    if (sqlite_nio_sqlite3_open(argv[1], &db)) { fprintf(stderr, "replay: cannot open %s\n", argv[1]); return 1; }
    // As Storage's writer: Database.swift.
    run(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;"
            "PRAGMA temp_store=MEMORY; PRAGMA secure_delete=FAST; PRAGMA wal_autocheckpoint=4000;");
    FILE *file = fopen(argv[2], "rb");
    if (!file) { fprintf(stderr, "replay: cannot read %s\n", argv[2]); return 1; }
    fseek(file, 0, SEEK_END); long size = ftell(file); rewind(file);
    char *script = malloc(size + 1);
    if (fread(script, 1, size, file) != (size_t)size) return 1;
    script[size] = 0;
    char *rest = script;
    while (*rest && *rest != '\n') rest++;
    if (*rest) *rest++ = 0;
    run(db, script);
    double w = wall(), c = cpu();
    run(db, rest);
    printf("%.2f %.2f\n", wall() - w, cpu() - c);
    return 0;
}
