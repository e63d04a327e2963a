/* driver.h - the interface every engine implements. A driver knows its
 * client library and its type mapping, nothing about pools or Python.
 *
 * Threading: a connection is used by one worker thread at a time; only
 * `interrupt` may be called from another thread while a call runs, and it
 * must return quickly. Every fallible call returns DBP_OK or a category and
 * fills `err`; a failing call that leaves the connection unusable returns
 * DBP_E_NETWORK or makes `is_usable` answer 0 afterwards.
 *
 * Deadlines (the rules every engine follows; docs/timeouts.md):
 * - No wait without a bound: every socket wait is bounded, in slices that
 *   look at ctx->cancelled and ctx->deadline_ns.
 * - Once ctx->cancelled is set (the caller cancelled, the call's deadline
 *   passed, the pool closes) or ctx->deadline_ns passes, the driver asks the
 *   server to stop the statement and gives it ctx->cancel_grace_ns to
 *   confirm. Confirmed: the call returns DBP_E_CANCELLED (or
 *   DBP_E_QUERY_TIMEOUT) and the connection stays usable. Not confirmed: the
 *   driver stops waiting, returns the same and `is_usable` answers 0 from
 *   then on, so the pool discards the connection.
 * - The core answers the caller on time whatever the driver does; a driver
 *   whose client library cannot bound a wait only delays when its
 *   connection is closed. */
#ifndef DBP_DRIVER_H
#define DBP_DRIVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db_pool.h"
#include "params.h"
#include "result.h"

/* The monotonic clock deadlines are measured on, in nanoseconds. */
int64_t dbp_now_ns(void);

/* The version of this interface; a driver built for another is refused. */
#define DBP_DRIVER_ABI_VERSION 3

/* What a driver can do, in dbp_driver.caps. */
enum {
    DBP_CAP_CANCEL = 1,    /* stops a running statement on the server (interrupt) */
    DBP_CAP_DEADLINES = 2, /* bounds its own waits by the rules above (connect included) */
    DBP_CAP_ROLES = 4,     /* probe_role: pools of several endpoints */
    DBP_CAP_BULK_LOAD = 8, /* bulk_load */
    DBP_CAP_RESET = 16,    /* reset */
    DBP_CAP_INLINE = 32,   /* in-process and quick: may run on the caller's thread
                            * (dbp_request_set_inline); interrupt works from any thread */
};

/* Per-call context handed to every call that may wait on the engine. */
typedef struct dbp_exec_ctx {
    const atomic_int *cancelled; /* becomes 1 when the call must stop (cancel, deadline,
                                    close); never NULL */
    int64_t deadline_ns;         /* dbp_now_ns() time the call gives up; INT64_MAX = none */
    int64_t cancel_grace_ns;     /* how long a cancel may take to be confirmed */
    int *replied;                /* may be NULL; a driver that can tell sets *replied to 0
                                    when a statement goes out and to 1 once any of the
                                    server's answer to it arrived (the pool retries a read
                                    that failed before any answer) */
    int session_setup;           /* the statement is init_sql: the session state it leaves
                                    is the baseline, not a change for `reset` to undo */
    dbp_copy_mode copy_mode;     /* QUERY / CURSOR_OPEN: bulk read path */
    int read_all;                /* CURSOR_OPEN for a QUERY: every row is wanted at once */
    /* > 0 (a QUERY run on the caller's event-loop thread): the thread must not
     * be held longer than this. A driver that can tell refuses up front a
     * statement that may write or wait for a lock, and stops a read that runs
     * past the budget; either way it sets *over_budget, changes nothing and
     * returns DBP_E_CANCELLED, and the core runs the request on a worker. */
    int64_t inline_budget_ns;
    int *over_budget;
    /* Passes an engine message (a NOTICE) to the caller. */
    void (*notice)(void *arg, const char *severity, const char *text);
    void *notice_arg;
} dbp_exec_ctx;

/* Limits for one fetch: stop after max_rows (< 0: all rows); cut batches
 * inside the result every batch_rows rows or batch_bytes bytes. */
typedef struct dbp_fetch_limits {
    int64_t max_rows;
    int64_t batch_rows;
    size_t batch_bytes;
} dbp_fetch_limits;

/* 1 when the result's open batch is due to be cut (dbp_result_finish_batch)
 * under `limits`; every driver's fetch loop asks after each row. */
static inline int dbp_fetch_batch_full(const dbp_result *res, const dbp_fetch_limits *limits)
{
    return dbp_result_pending_rows(res) >= limits->batch_rows ||
           dbp_result_pending_memory(res) >= limits->batch_bytes;
}

typedef struct dbp_driver {
    int abi_version; /* DBP_DRIVER_ABI_VERSION */
    unsigned caps;   /* DBP_CAP_* */
    const char *name;

    /* Validates settings once per pool; *config is freed with free_config. */
    int (*parse_config)(const dbp_setting *settings, size_t n, void **config, dbp_error *err);
    void (*free_config)(void *config);

    /* Opens a connection by ctx->deadline_ns (the pool's connect_timeout, or
     * earlier when the call's own deadline is); gives up with
     * DBP_E_CANCELLED once ctx->cancelled is set (nobody waits for it any
     * more: its request was cancelled or the pool is closing). */
    int (*connect)(const void *config, const dbp_exec_ctx *ctx, void **conn, dbp_error *err);
    /* Must not use the config: it may be freed first when a pool closes. */
    void (*disconnect)(void *conn);
    /* Cheap round trip proving the connection works. */
    int (*ping)(void *conn, const dbp_exec_ctx *ctx, dbp_error *err);
    /* No round trip: 0 when the connection is already known dead (the server
     * closed it while it sat idle). Checked before every use; may be NULL. */
    int (*is_usable)(void *conn);
    /* From any thread: make the running statement stop soon. */
    void (*interrupt)(void *conn);
    /* 1 while a transaction is open on the connection. */
    int (*in_transaction)(void *conn);

    /* Runs a statement for its effect; for several parameter rows the
     * statement runs once per row, all or nothing. */
    int (*execute)(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err);

    /* One cursor per connection: open binds and starts the statement. */
    int (*cursor_open)(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
                       const dbp_exec_ctx *ctx, dbp_error *err);
    /* Reads rows into a new result (*out, caller frees); *done = 1 at the end.
     * Column types stay the same from one fetch to the next. */
    int (*cursor_fetch)(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err);
    /* Closes the open cursor, if any (stopping its statement on the server
     * when it has not ended). */
    void (*cursor_close)(void *conn, const dbp_exec_ctx *ctx);

    /* Loads every row of `rows` (struct batches; field names are columns)
     * into `table`, all or nothing, and releases nothing: the caller owns
     * the stream. `options` are the request's parameters (engine-specific,
     * may be NULL). NULL when the engine has no bulk path. */
    int (*bulk_load)(void *conn, const char *table, const dbp_params *options,
                     struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                     int64_t *rows_loaded, dbp_error *err);

    /* Pools with several endpoints ask each endpoint its role with this:
     * one cheap round trip; *lag_s is a replica's replay lag in seconds, or
     * < 0 when unknown. NULL when the engine has no roles (such pools must
     * have one endpoint). */
    int (*probe_role)(void *conn, const dbp_exec_ctx *ctx, dbp_role *role, double *lag_s,
                      dbp_error *err);
    /* Names the endpoint for stats and logs: host, port, database; never
     * a password. May be NULL. */
    void (*describe)(const void *config, char *buf, size_t size);

    /* Clears the session state callers may have set (settings, temporary
     * tables, ...), keeping the driver's own caches valid; with `always` 0
     * only when a statement since the last reset may have changed it.
     * *did_reset says whether anything was sent (the pool then runs
     * init_sql again). A failure leaves the connection to be discarded.
     * NULL when the engine has no reset. */
    int (*reset)(void *conn, int always, const dbp_exec_ctx *ctx, int *did_reset,
                 dbp_error *err);
    /* No round trip: 1 when `reset` without `always` would have something
     * to do. With `reset`. */
    int (*session_changed)(void *conn);

    /* `options` is engine text such as "IMMEDIATE" (may be empty). */
    int (*begin)(void *conn, const char *options, const dbp_exec_ctx *ctx, dbp_error *err);
    int (*commit)(void *conn, const dbp_exec_ctx *ctx, dbp_error *err);
    int (*rollback)(void *conn, const dbp_exec_ctx *ctx, dbp_error *err);

    /* Key-value engines: runs the commands of a DBP_OP_COMMAND request
     * (db_pool.h; `mode` is its sql, "" or "MULTI") and returns their
     * replies in *out (an ARRAY the caller frees). NULL for SQL engines. */
    int (*command)(void *conn, const char *mode, const dbp_params *commands,
                   const dbp_exec_ctx *ctx, dbp_reply **out, dbp_error *err);
} dbp_driver;

/* Adds a driver found by its name, for engines outside this library (the C
 * tests use one that injects faults). Call before any pool uses it; not
 * thread-safe. At most 8. Refuses (DBP_E_MISUSE) a driver built for another
 * DBP_DRIVER_ABI_VERSION. */
int dbp_driver_register(const dbp_driver *driver);

/* The driver for `engine`: compiled in or registered; NULL if none. */
const dbp_driver *dbp_driver_find(const char *engine);

#endif
