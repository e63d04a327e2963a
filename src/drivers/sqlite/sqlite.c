/* sqlite.c - the embedded SQLite engine (system libsqlite3).
 *
 * Settings: database (a path, ":memory:", or a "file:" URI), mode ("rwc",
 * "rw", "ro"), busy_timeout_ms, journal_mode, foreign_keys ("on"/"off"),
 * statement_cache_size.
 *
 * ":memory:" gives each pool one private in-memory database shared by all
 * of its connections, through the memdb VFS ("file:/name?vfs=memdb"): unlike
 * a shared-cache URI it keeps SQLite's ordinary file locking, so the busy
 * timeout applies instead of immediate SQLITE_LOCKED errors. A keeper
 * connection held by the pool's config keeps the database alive while the
 * pool's own connections come and go.
 *
 * Result types come from each column's declared type; see column_kind and
 * docs/sqlite.md for the table and for values that disagree with it. */
#include <ctype.h>
#include <math.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "arrow_input.h"
#include "driver.h"
#include "error.h"
#include "textbuf.h"
#include "textparse.h"

/* ---- configuration ------------------------------------------------------ */

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

static void free_config(void *p)
{
    sqlite_config *cfg = p;
    if (!cfg)
        return;
    sqlite3_close_v2(cfg->keeper);
    dbp_free_secret(cfg->filename);
    dbp_free(cfg->display_name);
    dbp_free(cfg);
}

static int int_setting(const char *key, const char *value, long lo, long hi, int *out,
                       dbp_error *err)
{
    long v;
    int rc = dbp_parse_setting_int("sqlite", key, value, lo, hi, &v, err);
    if (rc == DBP_OK)
        *out = (int)v;
    return rc;
}

static int apply_setting(sqlite_config *cfg, const char *key, const char *value,
                         const char **database, dbp_error *err)
{
    if (strcmp(key, "database") == 0 || strcmp(key, "path") == 0) {
        *database = value;
        return DBP_OK;
    }
    if (strcmp(key, "mode") == 0) {
        int base = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
        if (strcmp(value, "rwc") == 0)
            cfg->flags = base | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        else if (strcmp(value, "rw") == 0)
            cfg->flags = base | SQLITE_OPEN_READWRITE;
        else if (strcmp(value, "ro") == 0)
            cfg->flags = base | SQLITE_OPEN_READONLY;
        else
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "sqlite mode must be 'rwc', 'rw' or 'ro', got '%s'", value);
        return DBP_OK;
    }
    if (strcmp(key, "busy_timeout_ms") == 0)
        return int_setting(key, value, 0, 86400000, &cfg->busy_timeout_ms, err);
    if (strcmp(key, "statement_cache_size") == 0)
        return int_setting(key, value, 0, 10000, &cfg->cache_size, err);
    if (strcmp(key, "foreign_keys") == 0) {
        if (strcmp(value, "on") && strcmp(value, "off"))
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "sqlite foreign_keys must be 'on' or 'off'");
        cfg->foreign_keys = strcmp(value, "on") == 0;
        return DBP_OK;
    }
    if (strcmp(key, "journal_mode") == 0) {
        static const char *const modes[] = {"delete", "truncate", "persist", "memory", "wal",
                                            "off"};
        for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
            if (strcasecmp(value, modes[i]) == 0) {
                snprintf(cfg->journal_mode, sizeof cfg->journal_mode, "%s", modes[i]);
                return DBP_OK;
            }
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "sqlite journal_mode '%s' is not one of delete, truncate, persist, "
                             "memory, wal, off",
                             value);
    }
    return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "unknown sqlite setting '%s'", key);
}

static int open_error(sqlite3 *db, int rc, const char *name, int flags, dbp_error *err)
{
    const char *mode = (flags & SQLITE_OPEN_READONLY) ? "ro"
                       : (flags & SQLITE_OPEN_CREATE) ? "rwc"
                                                      : "rw";
    int category = rc == SQLITE_NOMEM ? DBP_E_NOMEM : DBP_E_NETWORK;
    return dbp_error_set(err, category, db ? sqlite3_extended_errcode(db) : rc, NULL,
                         "cannot open SQLite database '%s' (mode %s): %s", name, mode,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    sqlite_config *cfg = dbp_calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    cfg->flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI | SQLITE_OPEN_READWRITE |
                 SQLITE_OPEN_CREATE;
    cfg->busy_timeout_ms = 5000;
    cfg->foreign_keys = 1;
    cfg->cache_size = 64;
    const char *database = NULL;
    for (size_t i = 0; i < n; i++) {
        int rc = apply_setting(cfg, settings[i].key, settings[i].value, &database, err);
        if (rc != DBP_OK) {
            free_config(cfg);
            return rc;
        }
    }
    if (!database) {
        free_config(cfg);
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "sqlite needs a database: a file path or ':memory:'");
    }
    int memory = strcmp(database, ":memory:") == 0 || *database == '\0';
    if (memory) {
        static atomic_uint counter;
        char name[96];
        snprintf(name, sizeof name, "file:/db-pool-%ld-%u?vfs=memdb", (long)getpid(),
                 atomic_fetch_add(&counter, 1));
        cfg->filename = dbp_strdup(name);
    } else {
        cfg->filename = dbp_strdup(database);
    }
    cfg->display_name = memory ? dbp_strdup(":memory:")
                        : strncmp(database, "file:", 5) == 0
                            ? dbp_strndup(database, strcspn(database, "?"))
                            : dbp_strdup(database);
    if (!cfg->filename || !cfg->display_name) {
        free_config(cfg);
        return dbp_error_nomem(err);
    }
    if (memory) {
        int rc = sqlite3_open_v2(cfg->filename, &cfg->keeper, cfg->flags, NULL);
        if (rc != SQLITE_OK) {
            rc = open_error(cfg->keeper, rc, cfg->display_name, cfg->flags, err);
            free_config(cfg);
            return rc;
        }
    }
    *out = cfg;
    return DBP_OK;
}

/* ---- connections ----------------------------------------------------------- */

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
    cached_stmt *cache;
    int n_cached;
    uint64_t tick;
    cursor cur;
} sqlite_conn;

/* Maps a SQLite result code to the library's error; `at_prepare` marks
 * errors in compiling the statement (syntax, unknown table: SQLSTATE 42000).
 * SQLite has no SQLSTATEs, so the class is derived from the code. */
static int fail(sqlite3 *db, int rc, int at_prepare, dbp_error *err)
{
    int ext = sqlite3_extended_errcode(db);
    const char *msg = sqlite3_errmsg(db);
    int category = DBP_E_SERVER;
    const char *state = "HY000";
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
        return dbp_error_set(err, DBP_E_CANCELLED, ext, NULL, "statement cancelled: %s", msg);
    case SQLITE_CONSTRAINT:
        state = "23000";
        break;
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
        state = "22000";
        break;
    case SQLITE_READONLY:
        state = "25006";
        break;
    case SQLITE_NOMEM:
        category = DBP_E_NOMEM;
        state = NULL;
        break;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        category = DBP_E_MISUSE;
        state = NULL;
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_IOERR:
        category = DBP_E_NETWORK; /* the database file is unusable */
        state = NULL;
        break;
    case SQLITE_ERROR:
        if (at_prepare)
            state = "42000";
        break;
    default:
        break;
    }
    return dbp_error_set(err, category, ext, state, "%s", msg);
}

static int exec_simple(sqlite_conn *c, const char *sql, dbp_error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? DBP_OK : fail(c->db, rc, 0, err);
}

/* Called by SQLite every few thousand VM steps: a cancel that arrived
 * before the statement started (where sqlite3_interrupt has no effect)
 * still stops it. */
static int check_cancelled(void *arg)
{
    const sqlite_conn *c = arg;
    return c->cancelled && atomic_load(c->cancelled);
}

/* Waits for another connection's lock like sqlite3_busy_timeout, in short
 * sleeps, but gives up as soon as the call is cancelled (a deadline, a
 * cancel, a closing pool): SQLite's own handler would sleep through it. */
static int wait_for_lock(void *arg, int attempt)
{
    sqlite_conn *c = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (attempt == 0)
        c->busy_since_ms = now_ms;
    if (check_cancelled(c) || now_ms - c->busy_since_ms >= c->cfg->busy_timeout_ms)
        return 0; /* SQLITE_BUSY to the statement */
    struct timespec pause = {.tv_nsec = (attempt < 10 ? 1 + attempt : 10) * 1000000L};
    nanosleep(&pause, NULL);
    return 1;
}

/* A statement that failed after its call was told to stop (a lock wait cut
 * short reports "database is locked") was cancelled. */
static int stopped(sqlite_conn *c, int rc, dbp_error *err)
{
    if (rc == DBP_OK || rc == DBP_E_CANCELLED || !check_cancelled(c))
        return rc;
    return dbp_error_set(err, DBP_E_CANCELLED, err ? err->native_code : 0, NULL,
                         "statement cancelled");
}

static int connect(const void *config, const dbp_exec_ctx *ctx, void **out, dbp_error *err)
{
    (void)ctx; /* opening a file does not wait on a network */
    const sqlite_config *cfg = config;
    sqlite_conn *c = dbp_calloc(1, sizeof *c);
    if (!c)
        return dbp_error_nomem(err);
    c->cfg = cfg;
    int rc = sqlite3_open_v2(cfg->filename, &c->db, cfg->flags, NULL);
    if (rc != SQLITE_OK) {
        rc = open_error(c->db, rc, cfg->display_name, cfg->flags, err);
        sqlite3_close_v2(c->db);
        dbp_free(c);
        return rc;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_handler(c->db, wait_for_lock, c);
    sqlite3_progress_handler(c->db, 4000, check_cancelled, c);
    rc = exec_simple(c, cfg->foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF",
                     err);
    if (rc == DBP_OK && cfg->journal_mode[0]) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", cfg->journal_mode);
        rc = exec_simple(c, sql, err);
    }
    if (rc == DBP_OK && cfg->cache_size > 0) {
        c->cache = dbp_calloc((size_t)cfg->cache_size, sizeof *c->cache);
        if (!c->cache)
            rc = dbp_error_nomem(err);
    }
    if (rc != DBP_OK) {
        sqlite3_close_v2(c->db);
        dbp_free(c->cache);
        dbp_free(c);
        return rc;
    }
    *out = c;
    return DBP_OK;
}

static void cursor_reset(sqlite_conn *c);

static void disconnect(void *conn)
{
    sqlite_conn *c = conn;
    cursor_reset(c);
    for (int i = 0; i < c->n_cached; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        dbp_free(c->cache[i].sql);
    }
    dbp_free(c->cache);
    sqlite3_close_v2(c->db);
    dbp_free(c);
}

static int ping(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    (void)ctx; /* a local file: nothing to wait for */
    return exec_simple(conn, "SELECT 1", err);
}

static void interrupt(void *conn) { sqlite3_interrupt(((sqlite_conn *)conn)->db); }

static int in_transaction(void *conn) { return !sqlite3_get_autocommit(((sqlite_conn *)conn)->db); }

/* ---- statements ------------------------------------------------------------ */

/* Whether the text after a statement holds another statement. */
static int has_more_sql(const char *tail, const char *end)
{
    for (; tail < end; tail++)
        if (!isspace((unsigned char)*tail) && *tail != ';')
            return 1;
    return 0;
}

/* Compiles `sql` (exactly one statement), reusing a cached statement when the
 * same text ran before on this connection. */
static int prepare(sqlite_conn *c, const char *sql, size_t len, sqlite3_stmt **out, int *cached,
                   dbp_error *err)
{
    *cached = 0;
    for (int i = 0; i < c->n_cached; i++) {
        cached_stmt *e = &c->cache[i];
        if (e->len == len && memcmp(e->sql, sql, len) == 0 && e->stmt != c->cur.stmt) {
            e->last_used = ++c->tick;
            *out = e->stmt;
            *cached = 1;
            return DBP_OK;
        }
    }
    const char *tail;
    sqlite3_stmt *stmt = NULL;
    int keep = c->cfg->cache_size > 0;
    int rc = sqlite3_prepare_v3(c->db, sql, (int)len, keep ? SQLITE_PREPARE_PERSISTENT : 0, &stmt,
                                &tail);
    if (rc != SQLITE_OK)
        return fail(c->db, rc, 1, err);
    if (!stmt)
        return dbp_error_set(err, DBP_E_MISUSE, 0, "42000", "the SQL text holds no statement");
    if (has_more_sql(tail, sql + len)) {
        sqlite3_finalize(stmt);
        return dbp_error_set(err, DBP_E_MISUSE, 0, "42000",
                             "the SQL text holds more than one statement; this call runs "
                             "one (execute() without parameters runs a script)");
    }
    *out = stmt;
    if (!keep)
        return DBP_OK;
    int slot = c->n_cached;
    if (slot == c->cfg->cache_size) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n_cached; i++)
            if (c->cache[i].last_used < c->cache[slot].last_used)
                slot = i;
        if (c->cache[slot].stmt == c->cur.stmt)
            return DBP_OK; /* in use by the cursor: leave this one uncached */
        sqlite3_finalize(c->cache[slot].stmt);
        dbp_free(c->cache[slot].sql);
        c->cache[slot].stmt = NULL;
    }
    char *copy = dbp_strndup(sql, len);
    if (!copy) {
        if (slot != c->n_cached) { /* close the emptied slot's gap */
            c->cache[slot] = c->cache[--c->n_cached];
        }
        return DBP_OK; /* still usable, just not cached */
    }
    c->cache[slot] = (cached_stmt){copy, len, stmt, ++c->tick};
    if (slot == c->n_cached)
        c->n_cached++;
    *cached = 1;
    return DBP_OK;
}

static void release_stmt(sqlite3_stmt *stmt, int cached)
{
    if (cached) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    } else {
        sqlite3_finalize(stmt);
    }
}

static int bind_value(sqlite_conn *c, sqlite3_stmt *stmt, int index, const dbp_cell *v,
                      dbp_error *err)
{
    char text[48];
    int n, rc;
    switch (v->kind) {
    case DBP_V_NULL:
        rc = sqlite3_bind_null(stmt, index);
        break;
    case DBP_V_BOOL:
    case DBP_V_INT64:
        rc = sqlite3_bind_int64(stmt, index, v->i);
        break;
    case DBP_V_DOUBLE:
        if (isnan(v->d)) /* SQLite would store it as NULL without a word */
            return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                                 "SQLite stores NaN as NULL, so NaN is refused (value %d of the "
                                 "row); pass None for NULL",
                                 index);
        rc = sqlite3_bind_double(stmt, index, v->d);
        break;
    case DBP_V_TEXT:
    case DBP_V_DECIMAL: /* exact: kept as text */
        rc = sqlite3_bind_text64(stmt, index, v->data, v->len, SQLITE_STATIC, SQLITE_UTF8);
        break;
    case DBP_V_BLOB:
        rc = sqlite3_bind_blob64(stmt, index, v->data, v->len, SQLITE_STATIC);
        break;
    case DBP_V_DATE:
        n = dbp_format_date(v->i, text, sizeof text);
        rc = sqlite3_bind_text(stmt, index, text, n, SQLITE_TRANSIENT);
        break;
    case DBP_V_TIME:
        n = dbp_format_time(v->i, text, sizeof text);
        rc = sqlite3_bind_text(stmt, index, text, n, SQLITE_TRANSIENT);
        break;
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ:
        n = dbp_format_timestamp(v->i, text, sizeof text);
        if (v->kind == DBP_V_TIMESTAMP_TZ)
            n += snprintf(text + n, sizeof text - (size_t)n, "+00:00");
        rc = sqlite3_bind_text(stmt, index, text, n, SQLITE_TRANSIENT);
        break;
    default:
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "parameter %d has an unknown kind",
                             index);
    }
    return rc == SQLITE_OK ? DBP_OK : fail(c->db, rc, 0, err);
}

/* Binds one row of parameters, by position or by name. */
static int bind_row(sqlite_conn *c, sqlite3_stmt *stmt, const dbp_params *params, size_t row,
                    dbp_error *err)
{
    int expected = sqlite3_bind_parameter_count(stmt);
    size_t given = dbp_params_width(params);
    if ((size_t)expected != given)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "the statement has %d parameter(s) but %zu were given", expected,
                             given);
    if (given == 0)
        return DBP_OK;
    int named = dbp_params_get(params, row, 0)->has_name;
    for (int i = 1; i <= expected; i++) {
        const dbp_value *v = NULL;
        if (!named) {
            v = dbp_params_get(params, row, (size_t)i - 1);
        } else {
            const char *placeholder = sqlite3_bind_parameter_name(stmt, i);
            if (!placeholder || placeholder[0] == '?')
                return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                     "parameters were given by name but placeholder %d is "
                                     "positional ('?'); pass a sequence instead",
                                     i);
            for (size_t k = 0; k < given && !v; k++) {
                const dbp_value *cand = dbp_params_get(params, row, k);
                if (strcmp(dbp_params_name(params, cand), placeholder + 1) == 0)
                    v = cand;
            }
            if (!v)
                return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                     "no value was given for parameter '%s'", placeholder);
        }
        dbp_cell cell;
        dbp_params_cell(params, v, &cell);
        int rc = bind_value(c, stmt, i, &cell, err);
        if (rc != DBP_OK)
            return rc;
    }
    return DBP_OK;
}

/* Steps a statement to its end; rows it returns are skipped. */
static int step_to_end(sqlite_conn *c, sqlite3_stmt *stmt, const dbp_exec_ctx *ctx,
                       dbp_error *err)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (atomic_load(ctx->cancelled))
            return dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "statement cancelled");
    return rc == SQLITE_DONE ? DBP_OK : fail(c->db, rc, 0, err);
}

/* Rows the last statement changed; 0 for statements that change none
 * (sqlite3_changes alone would repeat the previous DML's count). */
static int64_t changes_since(sqlite_conn *c, int64_t total_before)
{
    return sqlite3_total_changes64(c->db) == total_before ? 0 : sqlite3_changes64(c->db);
}

/* Runs every statement of a parameterless script. */
static int execute_script(sqlite_conn *c, const char *sql, size_t len, const dbp_exec_ctx *ctx,
                          int64_t *affected, dbp_error *err)
{
    const char *p = sql, *end = sql + len;
    *affected = 0;
    while (p < end) {
        sqlite3_stmt *stmt;
        const char *tail;
        int rc = sqlite3_prepare_v2(c->db, p, (int)(end - p), &stmt, &tail);
        if (rc != SQLITE_OK)
            return fail(c->db, rc, 1, err);
        p = tail;
        if (!stmt)
            continue; /* whitespace or a comment */
        int64_t before = sqlite3_total_changes64(c->db);
        rc = step_to_end(c, stmt, ctx, err);
        sqlite3_finalize(stmt);
        if (rc != DBP_OK)
            return rc;
        *affected += changes_since(c, before);
    }
    return DBP_OK;
}

static int execute_watched(sqlite_conn *c, const char *sql, size_t len,
                           const dbp_params *params, const dbp_exec_ctx *ctx, int64_t *affected,
                           dbp_error *err);

static int execute(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err)
{
    sqlite_conn *c = conn;
    c->cancelled = ctx->cancelled;
    int rc = stopped(c, execute_watched(c, sql, len, params, ctx, affected, err), err);
    c->cancelled = NULL;
    return rc;
}

static int execute_watched(sqlite_conn *c, const char *sql, size_t len,
                           const dbp_params *params, const dbp_exec_ctx *ctx, int64_t *affected,
                           dbp_error *err)
{
    size_t rows = dbp_params_rows(params);
    if (rows == 0 && !params)
        return execute_script(c, sql, len, ctx, affected, err);

    sqlite3_stmt *stmt;
    int cached;
    int rc = prepare(c, sql, len, &stmt, &cached, err);
    if (rc != DBP_OK)
        return rc;
    /* Several rows run all or nothing: in a savepoint, which nests inside a
     * caller's transaction and acts as one when there is none. */
    int many = rows > 1;
    if (many && (rc = exec_simple(c, "SAVEPOINT dbp_execute_many", err)) != DBP_OK) {
        release_stmt(stmt, cached);
        return rc;
    }
    *affected = 0;
    for (size_t row = 0; row < (rows ? rows : 1) && rc == DBP_OK; row++) {
        int64_t before = sqlite3_total_changes64(c->db);
        rc = bind_row(c, stmt, params, row, err);
        if (rc == DBP_OK)
            rc = step_to_end(c, stmt, ctx, err);
        if (rc == DBP_OK)
            *affected += changes_since(c, before);
        else if (many && err)
            snprintf(err->message + strlen(err->message),
                     sizeof err->message - strlen(err->message),
                     " (parameter row %zu; no row was written)", row);
        sqlite3_reset(stmt);
    }
    release_stmt(stmt, cached);
    if (many) {
        dbp_error ignored;
        if (rc != DBP_OK)
            exec_simple(c, "ROLLBACK TO dbp_execute_many", &ignored);
        int end_rc = exec_simple(c, "RELEASE dbp_execute_many", rc == DBP_OK ? err : &ignored);
        if (rc == DBP_OK)
            rc = end_rc;
    }
    return rc;
}

/* ---- result types ---------------------------------------------------------- */

static int contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* The declared type decides the column's kind; the order of these tests
 * follows SQLite's affinity rules, after the types SQLite has no affinity
 * for (booleans, dates, decimals). */
static column_plan plan_column(const char *declared)
{
    column_plan plan = {.kind = K_INFER, .type = {DBP_T_NULL, 0, 0}, .declared = NULL};
    if (!declared || !*declared)
        return plan;
    char up[64];
    size_t n = 0;
    for (; declared[n] && n < sizeof up - 1; n++)
        up[n] = (char)toupper((unsigned char)declared[n]);
    up[n] = '\0';
    int p = 0, s = 0;
    if (contains(up, "BOOL")) {
        plan.kind = K_BOOL;
        plan.type.id = DBP_T_BOOL;
    } else if (contains(up, "DATETIME") || contains(up, "TIMESTAMP")) {
        plan.kind = K_DATETIME;
        plan.type.id = DBP_T_TIMESTAMP_US;
    } else if (strncmp(up, "DATE", 4) == 0) {
        plan.kind = K_DATE;
        plan.type.id = DBP_T_DATE32;
    } else if (strncmp(up, "TIME", 4) == 0) {
        plan.kind = K_TIME;
        plan.type.id = DBP_T_TIME64_US;
    } else if ((strncmp(up, "DECIMAL", 7) == 0 || strncmp(up, "NUMERIC", 7) == 0) &&
               (sscanf(up + 7, " ( %d , %d )", &p, &s) == 2 ||
                (s = 0, sscanf(up + 7, " ( %d )", &p) == 1)) &&
               p >= 1 && p <= 38 && s >= 0 && s <= p) {
        plan.kind = K_DECIMAL;
        plan.type = (dbp_type){DBP_T_DECIMAL128, p, s};
    } else if (contains(up, "INT")) {
        plan.kind = K_INT;
        plan.type.id = DBP_T_INT64;
    } else if (contains(up, "CHAR") || contains(up, "CLOB") || contains(up, "TEXT")) {
        plan.kind = K_TEXT;
        plan.type.id = DBP_T_STRING;
    } else if (contains(up, "BLOB")) {
        plan.kind = K_BLOB;
        plan.type.id = DBP_T_BINARY;
    } else if (contains(up, "REAL") || contains(up, "FLOA") || contains(up, "DOUB")) {
        plan.kind = K_FLOAT;
        plan.type.id = DBP_T_FLOAT64;
    }
    return plan;
}

static const char *storage_name(int storage)
{
    switch (storage) {
    case SQLITE_INTEGER:
        return "INTEGER";
    case SQLITE_FLOAT:
        return "REAL";
    case SQLITE_TEXT:
        return "TEXT";
    default:
        return "BLOB";
    }
}

static int mismatch(const cursor *cur, int col, int storage, const char *why, dbp_error *err)
{
    const char *name = sqlite3_column_name(cur->stmt, col);
    const char *declared = cur->plans[col].declared;
    return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                         "column '%s' (declared %s) holds a %s value at row %lld that %s; "
                         "convert it in the SQL, e.g. CAST(%s AS TEXT)",
                         name ? name : "?", declared && *declared ? declared : "without a type",
                         storage_name(storage), (long long)cur->rows_read + 1, why,
                         name ? name : "column");
}

#define EXACT_DOUBLE_LIMIT ((sqlite3_int64)1 << 53) /* larger integers may round */

static int append_decimal_text(cursor *cur, int col, int storage, const char *s, size_t n,
                               dbp_column *out, dbp_error *err)
{
    __int128 dec;
    if (dbp_parse_decimal(s, n, out->type.precision, out->type.scale, &dec) != DBP_OK)
        return mismatch(cur, col, storage,
                        "does not fit the declared precision and scale without rounding", err);
    return dbp_column_append_decimal(out, dec);
}

/* Converts a value through its text form (SQLite renders numbers as text on
 * request), for text, blob, temporal and decimal columns. */
static int append_text_as(cursor *cur, int col, int storage, dbp_column *out, dbp_error *err)
{
    sqlite3_stmt *st = cur->stmt;
    const char *s = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    int32_t days;
    int64_t us;
    switch (cur->plans[col].kind) {
    case K_TEXT:
    case K_INFER:
        if (!dbp_utf8_valid((const unsigned char *)s, n))
            return mismatch(cur, col, storage, "is not valid UTF-8", err);
        return dbp_column_append_bytes(out, s, n);
    case K_BLOB:
        return dbp_column_append_bytes(out, s, n);
    case K_DATE:
        if (dbp_parse_date(s, n, &days) != DBP_OK)
            return mismatch(cur, col, SQLITE_TEXT, "is not a date 'YYYY-MM-DD'", err);
        return dbp_column_append_int(out, days);
    case K_TIME:
        if (dbp_parse_time(s, n, &us) != DBP_OK)
            return mismatch(cur, col, SQLITE_TEXT,
                            "is not a time 'HH:MM[:SS[.ffffff]]' with at most microseconds",
                            err);
        return dbp_column_append_int(out, us);
    case K_DATETIME:
        if (dbp_parse_timestamp(s, n, &us) != DBP_OK)
            return mismatch(cur, col, SQLITE_TEXT,
                            "is not a timestamp 'YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][+HH:MM]' "
                            "with at most microseconds",
                            err);
        return dbp_column_append_int(out, us);
    case K_DECIMAL:
        return append_decimal_text(cur, col, storage, s, n, out, err);
    default:
        return mismatch(cur, col, SQLITE_TEXT, "cannot be converted exactly", err);
    }
}

/* The type a K_INFER column takes from its first value. */
static dbp_type inferred_type(int storage)
{
    switch (storage) {
    case SQLITE_INTEGER:
        return (dbp_type){DBP_T_INT64, 0, 0};
    case SQLITE_FLOAT:
        return (dbp_type){DBP_T_FLOAT64, 0, 0};
    case SQLITE_TEXT:
        return (dbp_type){DBP_T_STRING, 0, 0};
    default:
        return (dbp_type){DBP_T_BINARY, 0, 0};
    }
}

/* Appends one value, converting only where the conversion is exact. */
static int append_value(cursor *cur, int col, dbp_column *out, dbp_error *err)
{
    sqlite3_stmt *st = cur->stmt;
    int storage = sqlite3_column_type(st, col);
    if (storage == SQLITE_NULL)
        return dbp_column_append_null(out);
    column_plan *plan = &cur->plans[col];
    if (plan->kind == K_INFER) {
        if (out->type.id == DBP_T_NULL) {
            int rc = dbp_column_set_type(out, inferred_type(storage));
            if (rc != DBP_OK)
                return rc;
        } else if (out->type.id == DBP_T_INT64 && storage == SQLITE_FLOAT) {
            /* INTEGER then REAL in one untyped column: all become doubles when
             * that is exact, within the first batch only (types are fixed
             * after it). */
            if (cur->fetched_once || dbp_column_promote_int64_to_float64(out) != DBP_OK)
                return mismatch(cur, col, storage,
                                "mixes with INTEGER values that doubles cannot hold exactly",
                                err);
        }
    }
    switch (out->type.id) {
    case DBP_T_INT64:
        if (storage == SQLITE_INTEGER)
            return dbp_column_append_int(out, sqlite3_column_int64(st, col));
        if (storage == SQLITE_FLOAT) {
            double d = sqlite3_column_double(st, col);
            if (d == floor(d) && fabs(d) < 9.2e18)
                return dbp_column_append_int(out, (int64_t)d);
        }
        return mismatch(cur, col, storage, "is not a whole number in the INTEGER range", err);
    case DBP_T_FLOAT64:
        if (storage == SQLITE_FLOAT)
            return dbp_column_append_double(out, sqlite3_column_double(st, col));
        if (storage == SQLITE_INTEGER) {
            sqlite3_int64 v = sqlite3_column_int64(st, col);
            if (v >= -EXACT_DOUBLE_LIMIT && v <= EXACT_DOUBLE_LIMIT)
                return dbp_column_append_double(out, (double)v);
        }
        return mismatch(cur, col, storage, "is not a number a double holds exactly", err);
    case DBP_T_BOOL:
        if (storage == SQLITE_INTEGER) {
            sqlite3_int64 v = sqlite3_column_int64(st, col);
            if (v == 0 || v == 1)
                return dbp_column_append_bool(out, (int)v);
        }
        return mismatch(cur, col, storage, "is not 0 or 1", err);
    case DBP_T_DECIMAL128:
        if (storage == SQLITE_FLOAT) {
            /* SQLite's own text of a REAL keeps 15 digits; use all it has. */
            char text[32];
            size_t n = (size_t)dbp_format_double(sqlite3_column_double(st, col), text, sizeof text);
            return append_decimal_text(cur, col, storage, text, n, out, err);
        }
        if (storage == SQLITE_INTEGER || storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        return mismatch(cur, col, storage, "is not a number", err);
    case DBP_T_STRING:
        if (storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        if (storage == SQLITE_INTEGER) { /* decimal digits are exact */
            char digits[24];
            int n = snprintf(digits, sizeof digits, "%lld", (long long)sqlite3_column_int64(st, col));
            return dbp_column_append_bytes(out, digits, (size_t)n);
        }
        return mismatch(cur, col, storage, "has no exact text form", err);
    case DBP_T_BINARY:
        if (storage == SQLITE_BLOB)
            return dbp_column_append_bytes(out, sqlite3_column_blob(st, col),
                                           (size_t)sqlite3_column_bytes(st, col));
        if (storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        return mismatch(cur, col, storage, "is not bytes", err);
    default: /* dates and times arrive as text */
        if (storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        return mismatch(cur, col, storage, "is not an ISO 8601 text value", err);
    }
}

/* ---- cursors ----------------------------------------------------------------- */

static void cursor_reset(sqlite_conn *c)
{
    cursor *cur = &c->cur;
    if (cur->stmt)
        release_stmt(cur->stmt, cur->cached);
    for (int i = 0; cur->plans && i < cur->n_cols; i++)
        dbp_free(cur->plans[i].declared);
    dbp_free(cur->plans);
    memset(cur, 0, sizeof *cur);
}

static void cursor_close(void *conn, const dbp_exec_ctx *ctx)
{
    (void)ctx; /* finalizing a statement never waits */
    cursor_reset(conn);
}

static int cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                       const dbp_exec_ctx *ctx, dbp_error *err)
{
    (void)ctx;
    sqlite_conn *c = conn;
    cursor_reset(c);
    cursor *cur = &c->cur;
    int rc = prepare(c, sql, len, &cur->stmt, &cur->cached, err);
    if (rc != DBP_OK) {
        cur->stmt = NULL;
        return rc;
    }
    rc = bind_row(c, cur->stmt, params, 0, err);
    if (rc == DBP_OK && sqlite3_column_count(cur->stmt) == 0)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "the statement returns no columns; use execute() for it");
    if (rc != DBP_OK)
        cursor_reset(c);
    return rc;
}

/* Steps to the first row, then plans the columns: a cached statement is
 * re-prepared by that step if the schema changed, and only then do its
 * declared types describe the rows. */
static int plan_columns(sqlite_conn *c, dbp_error *err)
{
    cursor *cur = &c->cur;
    int step = sqlite3_step(cur->stmt);
    if (step == SQLITE_ROW)
        cur->row_pending = 1;
    else if (step == SQLITE_DONE)
        cur->finished = 1;
    else
        return fail(c->db, step, 0, err);
    int n = sqlite3_column_count(cur->stmt);
    column_plan *plans = dbp_calloc((size_t)n, sizeof *plans);
    if (!plans)
        return dbp_error_nomem(err);
    cur->plans = plans;
    cur->n_cols = n;
    for (int i = 0; i < n; i++) {
        const char *declared = sqlite3_column_decltype(cur->stmt, i);
        plans[i] = plan_column(declared);
        plans[i].declared = declared ? dbp_strdup(declared) : NULL;
        if (declared && !plans[i].declared)
            return dbp_error_nomem(err);
    }
    return DBP_OK;
}

static int new_result(cursor *cur, dbp_result **out, dbp_error *err)
{
    const char **names = dbp_calloc((size_t)cur->n_cols, sizeof *names);
    if (!names)
        return dbp_error_nomem(err);
    for (int i = 0; i < cur->n_cols; i++) {
        const char *name = sqlite3_column_name(cur->stmt, i);
        names[i] = name ? name : "";
    }
    int rc = dbp_result_new(out, (size_t)cur->n_cols, names, err);
    dbp_free(names);
    for (int i = 0; rc == DBP_OK && i < cur->n_cols; i++)
        if (cur->plans[i].type.id != DBP_T_NULL)
            rc = dbp_column_set_type(dbp_result_column(*out, (size_t)i), cur->plans[i].type);
    if (rc != DBP_OK) {
        dbp_result_free(*out);
        *out = NULL;
        return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
    }
    return DBP_OK;
}

/* Whether a column still waits for a non-NULL value to learn its type. A
 * full read (query) keeps its batch open until then, so that all of its
 * batches share one schema. */
static int has_untyped_column(const cursor *cur, dbp_result *res)
{
    for (int i = 0; i < cur->n_cols; i++)
        if (dbp_result_column(res, (size_t)i)->type.id == DBP_T_NULL)
            return 1;
    return 0;
}

static int fetch_watched(sqlite_conn *c, const dbp_fetch_limits *limits,
                         const dbp_exec_ctx *ctx, dbp_result **out, int *done, dbp_error *err);

static int cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err)
{
    sqlite_conn *c = conn;
    c->cancelled = ctx->cancelled;
    int rc = c->cur.plans ? DBP_OK : plan_columns(c, err);
    if (rc == DBP_OK)
        rc = fetch_watched(c, limits, ctx, out, done, err);
    rc = stopped(c, rc, err);
    c->cancelled = NULL;
    return rc;
}

static int fetch_watched(sqlite_conn *c, const dbp_fetch_limits *limits,
                         const dbp_exec_ctx *ctx, dbp_result **out, int *done, dbp_error *err)
{
    cursor *cur = &c->cur;
    dbp_result *res;
    int rc = new_result(cur, &res, err);
    if (rc != DBP_OK)
        return rc;
    int64_t rows = 0;
    *done = 0;
    while (rc == DBP_OK) {
        if (!cur->row_pending) {
            if (cur->finished) {
                *done = 1;
                break;
            }
            int step = sqlite3_step(cur->stmt);
            if (step == SQLITE_DONE) {
                cur->finished = 1;
                continue;
            }
            if (step != SQLITE_ROW) {
                rc = fail(c->db, step, 0, err);
                break;
            }
            cur->row_pending = 1;
        }
        if (limits->max_rows >= 0 && rows >= limits->max_rows)
            break; /* the pending row starts the next fetch */
        if ((rows & 1023) == 1023 && atomic_load(ctx->cancelled)) {
            rc = dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "statement cancelled");
            break;
        }
        for (int i = 0; i < cur->n_cols && rc == DBP_OK; i++) {
            rc = append_value(cur, i, dbp_result_column(res, (size_t)i), err);
            if (rc == DBP_E_NOMEM)
                rc = dbp_error_nomem(err);
        }
        if (rc != DBP_OK)
            break;
        cur->row_pending = 0;
        cur->rows_read++;
        rows++;
        if (dbp_fetch_batch_full(res, limits) &&
            (limits->max_rows >= 0 || !has_untyped_column(cur, res)))
            rc = dbp_result_finish_batch(res, err);
    }
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    /* Later fetches keep the types this one settled on. */
    for (int i = 0; i < cur->n_cols; i++)
        cur->plans[i].type = dbp_result_column(res, (size_t)i)->type;
    cur->fetched_once = 1;
    *out = res;
    return DBP_OK;
}

/* ---- bulk load ------------------------------------------------------------------------ */

typedef struct bulk_insert {
    sqlite_conn *c;
    const char *table;
    sqlite3_stmt *stmt;
} bulk_insert;

/* INSERT INTO "table" ("a", "b") VALUES (?, ?) for the frame's columns. */
static int bulk_columns(void *arg, size_t n, const char *const *names, dbp_error *err)
{
    bulk_insert *b = arg;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "INSERT INTO ");
    dbp_textbuf_table_columns(&sql, b->table, names, n, '"', '"');
    dbp_textbuf_str(&sql, " VALUES (");
    for (size_t i = 0; i < n; i++)
        dbp_textbuf_str(&sql, i ? ", ?" : "?");
    dbp_textbuf_str(&sql, ")");
    int rc = sql.failed ? dbp_error_nomem(err) : DBP_OK;
    if (rc == DBP_OK) {
        int prc = sqlite3_prepare_v2(b->c->db, sql.data, (int)sql.len, &b->stmt, NULL);
        if (prc != SQLITE_OK)
            rc = fail(b->c->db, prc, 1, err);
    }
    dbp_textbuf_free(&sql);
    return rc;
}

static int bulk_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    bulk_insert *b = arg;
    int rc = DBP_OK;
    for (size_t i = 0; rc == DBP_OK && i < n; i++)
        rc = bind_value(b->c, b->stmt, (int)i + 1, &cells[i], err);
    if (rc == DBP_OK) {
        int step = sqlite3_step(b->stmt);
        if (step != SQLITE_DONE)
            rc = fail(b->c->db, step, 0, err);
    }
    sqlite3_reset(b->stmt);
    return rc;
}

/* One prepared INSERT per row inside a savepoint: all rows or none. */
static int bulk_load(void *conn, const char *table, struct ArrowArrayStream *rows,
                     const dbp_exec_ctx *ctx, int64_t *loaded, dbp_error *err)
{
    sqlite_conn *c = conn;
    int rc = exec_simple(c, "SAVEPOINT dbp_write_frame", err);
    if (rc != DBP_OK)
        return rc;
    c->cancelled = ctx->cancelled;
    bulk_insert b = {.c = c, .table = table};
    dbp_frame_sink sink = {.columns = bulk_columns, .row = bulk_row, .arg = &b};
    rc = stopped(c, dbp_arrow_walk(rows, &sink, ctx->cancelled, loaded, err), err);
    if (rc != DBP_OK && err)
        snprintf(err->message + strlen(err->message), sizeof err->message - strlen(err->message),
                 " (frame row %lld; no row was written)", (long long)*loaded);
    sqlite3_finalize(b.stmt);
    c->cancelled = NULL;
    dbp_error ignored;
    if (rc != DBP_OK) {
        exec_simple(c, "ROLLBACK TO dbp_write_frame", &ignored);
        *loaded = 0;
    }
    int end = exec_simple(c, "RELEASE dbp_write_frame", rc == DBP_OK ? err : &ignored);
    return rc == DBP_OK ? end : rc;
}

/* ---- transactions ------------------------------------------------------------ */

/* A transaction statement that a cancel can stop while it waits for a
 * lock. */
static int exec_watched(sqlite_conn *c, const char *sql, const dbp_exec_ctx *ctx,
                        dbp_error *err)
{
    c->cancelled = ctx->cancelled;
    int rc = stopped(c, exec_simple(c, sql, err), err);
    c->cancelled = NULL;
    return rc;
}

static int begin(void *conn, const char *options, const dbp_exec_ctx *ctx, dbp_error *err)
{
    static const char *const kinds[] = {"", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if (strcasecmp(options, kinds[i]) == 0) {
            char sql[32];
            snprintf(sql, sizeof sql, "BEGIN %s", kinds[i]);
            return exec_watched(conn, sql, ctx, err);
        }
    }
    return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                         "sqlite transactions are DEFERRED, IMMEDIATE or EXCLUSIVE, not '%s'",
                         options);
}

static int commit(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    return exec_watched(conn, "COMMIT", ctx, err);
}

static int rollback(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    return exec_watched(conn, "ROLLBACK", ctx, err);
}

/* The database as the user named it (a path or :memory:). */
static void describe(const void *config, char *buf, size_t size)
{
    snprintf(buf, size, "%s", ((const sqlite_config *)config)->display_name);
}

const dbp_driver dbp_sqlite_driver = {
    .abi_version = DBP_DRIVER_ABI_VERSION,
    .caps = DBP_CAP_CANCEL | DBP_CAP_DEADLINES | DBP_CAP_BULK_LOAD,
    .name = "sqlite",
    .parse_config = parse_config,
    .free_config = free_config,
    .connect = connect,
    .disconnect = disconnect,
    .ping = ping,
    .interrupt = interrupt,
    .in_transaction = in_transaction,
    .execute = execute,
    .cursor_open = cursor_open,
    .cursor_fetch = cursor_fetch,
    .cursor_close = cursor_close,
    .bulk_load = bulk_load,
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .describe = describe,
};
