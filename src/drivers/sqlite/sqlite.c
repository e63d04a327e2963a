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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "sqlite_internal.h"
#include "textparse.h"

/* ---- configuration ------------------------------------------------------ */

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

/* Maps a SQLite result code to the library's error; `at_prepare` marks
 * errors in compiling the statement (syntax, unknown table: SQLSTATE 42000).
 * SQLite has no SQLSTATEs, so the class is derived from the code. */
int sqlite_fail(sqlite3 *db, int rc, int at_prepare, dbp_error *err)
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
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        dbp_error_set(err, category, ext, state, "%s", msg);
        if (err)
            snprintf(err->hint, sizeof err->hint,
                     "another connection held the lock longer than busy_timeout_ms: raise "
                     "busy_timeout_ms, use journal_mode=wal so that readers never block the "
                     "writer, keep write transactions short, and begin transactions that "
                     "write IMMEDIATE (transaction()'s default)");
        return category;
    default:
        break;
    }
    return dbp_error_set(err, category, ext, state, "%s", msg);
}

int sqlite_exec_simple(sqlite_conn *c, const char *sql, dbp_error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? DBP_OK : sqlite_fail(c->db, rc, 0, err);
}

/* Called by SQLite every few thousand VM steps: a cancel that arrived
 * before the statement started (where sqlite3_interrupt has no effect)
 * still stops it, and so does the end of an inline budget. */
static int check_cancelled(void *arg)
{
    sqlite_conn *c = arg;
    if (c->budget_end_ns && dbp_now_ns() > c->budget_end_ns)
        c->over_budget = 1;
    return c->over_budget || (c->cancelled && atomic_load(c->cancelled));
}

void sqlite_budget_begin(sqlite_conn *c, const dbp_exec_ctx *ctx)
{
    c->over_budget = 0;
    c->budget_end_ns = ctx->inline_budget_ns > 0 ? dbp_now_ns() + ctx->inline_budget_ns : 0;
}

int sqlite_budget_end(sqlite_conn *c, const dbp_exec_ctx *ctx, int rc, dbp_error *err)
{
    int over = c->over_budget && rc != DBP_OK;
    c->budget_end_ns = 0;
    c->over_budget = 0;
    if (!over)
        return rc;
    if (ctx->over_budget)
        *ctx->over_budget = 1;
    return dbp_error_set(err, DBP_E_CANCELLED, 0, NULL,
                         "statement stopped: over its inline budget");
}

/* Waits for another connection's lock like sqlite3_busy_timeout, in short
 * sleeps, but gives up as soon as the call is cancelled (a deadline, a
 * cancel, a closing pool): SQLite's own handler would sleep through it. */
static int wait_for_lock(void *arg, int attempt)
{
    sqlite_conn *c = arg;
    if (c->budget_end_ns) { /* an event loop's thread never waits for a lock */
        c->over_budget = 1;
        return 0;
    }
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
int sqlite_stopped(sqlite_conn *c, int rc, dbp_error *err)
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
    rc = sqlite_exec_simple(c, cfg->foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF",
                     err);
    if (rc == DBP_OK && cfg->journal_mode[0]) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", cfg->journal_mode);
        rc = sqlite_exec_simple(c, sql, err);
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


static void disconnect(void *conn)
{
    sqlite_conn *c = conn;
    sqlite_cursor_reset(c);
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
    return sqlite_exec_simple(conn, "SELECT 1", err);
}

static void interrupt(void *conn) { sqlite3_interrupt(((sqlite_conn *)conn)->db); }

static int in_transaction(void *conn) { return !sqlite3_get_autocommit(((sqlite_conn *)conn)->db); }

/* ---- transactions ------------------------------------------------------------ */

/* A transaction statement that a cancel can stop while it waits for a
 * lock. */
static int exec_watched(sqlite_conn *c, const char *sql, const dbp_exec_ctx *ctx,
                        dbp_error *err)
{
    c->cancelled = ctx->cancelled;
    int rc = sqlite_stopped(c, sqlite_exec_simple(c, sql, err), err);
    c->cancelled = NULL;
    return rc;
}

/* BEGIN IMMEDIATE unless told otherwise: a DEFERRED transaction that reads
 * and then writes can only fail with SQLITE_BUSY when another writer got
 * there first (waiting could deadlock), while IMMEDIATE takes the write lock
 * up front and so waits for it, up to busy_timeout_ms. */
static int begin(void *conn, const char *options, const dbp_exec_ctx *ctx, dbp_error *err)
{
    static const char *const kinds[] = {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"};
    if (!options[0])
        options = "IMMEDIATE";
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
    .caps = DBP_CAP_CANCEL | DBP_CAP_DEADLINES | DBP_CAP_BULK_LOAD | DBP_CAP_INLINE,
    .name = "sqlite",
    .parse_config = parse_config,
    .free_config = free_config,
    .connect = connect,
    .disconnect = disconnect,
    .ping = ping,
    .interrupt = interrupt,
    .in_transaction = in_transaction,
    .execute = sqlite_execute,
    .cursor_open = sqlite_cursor_open,
    .cursor_fetch = sqlite_cursor_fetch,
    .cursor_close = sqlite_cursor_close,
    .bulk_load = sqlite_bulk_load,
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .describe = describe,
};
