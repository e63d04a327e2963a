/* sqlite_internal.h - what the files of the SQLite driver share:
 * sqlite.c (settings, connections, transactions, the driver table),
 * sqlite_stmt.c (the statement cache, parameters, execute),
 * sqlite_read.c (result types and cursors), sqlite_bulk.c (write_frame). */
#ifndef DBP_SQLITE_INTERNAL_H
#define DBP_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "arrow_input.h"
#include "driver.h"

typedef struct sqlite_config {
    char *filename;      /* as handed to sqlite3_open_v2 */
    char *display_name;  /* the user's name for it, for messages; a file: URI
                          * without its query, which may hold a key */
    int flags;
    int busy_timeout_ms;
    int foreign_keys;
    char journal_mode[16];
    int cache_size;
    sqlite3 *keeper;     /* keeps a private in-memory database alive */
} sqlite_config;

typedef struct cached_stmt {
    char *sql;
    size_t len;
    sqlite3_stmt *stmt;
    uint64_t last_used;
} cached_stmt;

typedef enum value_kind {
    K_INFER, /* no declared type: the first value decides */
    K_INT,
    K_FLOAT,
    K_TEXT,
    K_BLOB,
    K_BOOL,
    K_DATE,
    K_TIME,
    K_DATETIME,
    K_DECIMAL,
} value_kind;

typedef struct column_plan {
    value_kind kind;
    dbp_type type; /* the Arrow type, DBP_T_NULL until known for K_INFER */
    char *declared; /* our copy: SQLite's string dies when it re-prepares */
} column_plan;

typedef struct cursor {
    sqlite3_stmt *stmt;
    int cached;       /* belongs to the statement cache: reset, don't finalize */
    int n_cols;
    column_plan *plans;
    int row_pending;  /* a row was stepped to but not yet read */
    int finished;
    int64_t rows_read;
    int fetched_once; /* column types are fixed after the first fetch */
} cursor;

typedef struct sqlite_conn {
    sqlite3 *db;
    const sqlite_config *cfg;
    const atomic_int *cancelled; /* the running call's cancel flag, or NULL */
    int64_t busy_since_ms;       /* when the current wait for a lock began */
    int64_t budget_end_ns;       /* the running query's inline budget ends (0: none) */
    int over_budget;             /* ... and it was stopped for it */
    cached_stmt *cache;
    int n_cached;
    uint64_t tick;
    cursor cur;
} sqlite_conn;

/* ---- sqlite.c ---- */

/* Maps a SQLite result code to the library's error (`at_prepare`: while
 * compiling the statement). */
int sqlite_fail(sqlite3 *db, int rc, int at_prepare, dbp_error *err);
/* Runs SQL without parameters or results. */
int sqlite_exec_simple(sqlite_conn *c, const char *sql, dbp_error *err);
/* Turns an interrupted call into the cancel or deadline error it stands for. */
int sqlite_stopped(sqlite_conn *c, int rc, dbp_error *err);
/* A query's inline budget (dbp_exec_ctx.inline_budget_ns): begin starts it,
 * end stops it and, if the query was stopped for it, tells the core. */
void sqlite_budget_begin(sqlite_conn *c, const dbp_exec_ctx *ctx);
int sqlite_budget_end(sqlite_conn *c, const dbp_exec_ctx *ctx, int rc, dbp_error *err);

/* ---- sqlite_stmt.c ---- */

/* The prepared statement for `sql`: from the cache (*cached) or new. */
int sqlite_prepare(sqlite_conn *c, const char *sql, size_t len, sqlite3_stmt **out, int *cached,
                   dbp_error *err);
void sqlite_release_stmt(sqlite3_stmt *stmt, int cached);
/* Binds one value; `what` and `name` name it in messages ("parameter ':id'",
 * "column 'price'"; `name` NULL: by its position). Text and bytes are bound
 * in place, unless `copy`: a cursor's statement steps after the request
 * that holds the values has been freed, so SQLite must keep its own copy. */
int sqlite_bind_value(sqlite_conn *c, sqlite3_stmt *stmt, int index, const dbp_cell *v,
                      const char *what, const char *name, int copy, dbp_error *err);
/* Binds one row of parameters, by position or by name (`copy`: as above). */
int sqlite_bind_row(sqlite_conn *c, sqlite3_stmt *stmt, const dbp_params *params, size_t row,
                    int copy, dbp_error *err);
int sqlite_execute(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err);

/* ---- sqlite_read.c ---- */

/* How a column of declared type `declared` is read (docs/sqlite.md). */
column_plan sqlite_plan_column(const char *declared);
void sqlite_cursor_reset(sqlite_conn *c);
int sqlite_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                       const dbp_exec_ctx *ctx, dbp_error *err);
int sqlite_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err);
void sqlite_cursor_close(void *conn, const dbp_exec_ctx *ctx);

/* ---- sqlite_bulk.c ---- */

int sqlite_bulk_load(void *conn, const char *table, const dbp_params *options,
                     struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                     int64_t *loaded, dbp_error *err);

#endif
