/* db_pool.h - public C API of libdbpool.
 *
 * A manager owns named logical pools; each pool owns connections to one or
 * more endpoints of the same database (a primary and its replicas) through
 * an engine driver, and routes each request to a fitting endpoint. Work is submitted as requests
 * that run on the library's worker threads; a request completes either into a
 * completion queue (whose file descriptor an event loop watches) or is waited
 * for directly. Query results are Arrow arrays exported through the Arrow C
 * Stream interface.
 *
 * Conventions: every fallible call returns DBP_OK (0) or a dbp_category and
 * fills the optional dbp_error. Handles are opaque. Destructors accept NULL.
 * Each doc comment says who frees what. All enums are append-only.
 */
#ifndef DB_POOL_H
#define DB_POOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ArrowArrayStream;

/* ---- errors ------------------------------------------------------------ */

typedef enum dbp_category {
    DBP_OK = 0,
    DBP_E_TIMEOUT = 1,   /* acquire or statement timed out */
    DBP_E_AUTH = 2,      /* login refused */
    DBP_E_NETWORK = 3,   /* connection lost or unreachable */
    DBP_E_SERVER = 4,    /* the engine rejected the statement (see sqlstate) */
    DBP_E_PROTOCOL = 5,  /* unexpected reply from the engine */
    DBP_E_NOMEM = 6,     /* allocation failed */
    DBP_E_MISUSE = 7,    /* caller error: bad argument, wrong parameter count */
    DBP_E_CLOSED = 8,    /* pool or manager closed */
    DBP_E_NOT_FOUND = 9, /* no pool with that id */
    DBP_E_EXISTS = 10,   /* a pool with that id exists already */
    DBP_E_POOL_FULL = 11, /* the wait queue is full */
    DBP_E_CANCELLED = 12, /* the caller cancelled the request */
    DBP_E_DATA = 13,     /* a value cannot be represented exactly */
    DBP_E_CONFIG = 14,   /* invalid pool configuration */
    DBP_E_UNAVAILABLE = 15, /* no endpoint can serve the request (none up in the role it needs) */
    DBP_E_OUTCOME_UNKNOWN = 16, /* the connection broke after a write was sent: it may or
                                   may not have been committed; never retried */
    DBP_E_QUERY_TIMEOUT = 17, /* the call's own deadline (dbp_request_set_timeout or the pool's
                                 query_timeout) passed; the statement was cancelled. With
                                 sqlstate 08007 the server had not confirmed the cancel of a
                                 write when the caller was answered: it may still take effect */
} dbp_category;

#define DBP_ERROR_MESSAGE_SIZE 1024

/* One error type for the whole library. `sqlstate` is the engine's own
 * five-character code, or one derived from the engine's error code when the
 * engine has none (documented per driver); empty when not applicable. */
typedef struct dbp_error {
    int category;    /* dbp_category */
    int native_code; /* the engine's own error code, 0 if none */
    char sqlstate[6];
    char message[DBP_ERROR_MESSAGE_SIZE];
    char detail[512]; /* the engine's detail and hint, empty if none */
    char hint[256];
} dbp_error;

/* A static, human-readable name for a category ("timeout", "server", ...). */
const char *dbp_category_name(int category);

/* ---- pool configuration --------------------------------------------------- */

/* Pool sizing and lifetime. Times are in milliseconds; 0 disables a limit
 * where noted. dbp_pool_options_init fills the defaults. */
typedef struct dbp_pool_options {
    int min_size;              /* connections kept open (default 1) */
    int max_size;              /* upper bound (default 10) */
    int max_waiting;           /* callers allowed to queue; 0 = unbounded (default 10000) */
    int64_t acquire_timeout_ms; /* wait for a connection (default 30000) */
    int64_t idle_timeout_ms;   /* close idle connections above min_size (default 600000; 0 = never) */
    int64_t max_lifetime_ms;   /* retire connections older than this (default 3600000; 0 = never) */
    double lifetime_jitter;    /* fraction of max_lifetime subtracted at random (default 0.1) */
    int64_t validate_after_ms; /* ping a connection idle longer than this before use (default 5000; <0 = never) */

    /* Pools with several endpoints (sizes above are per endpoint): */
    int read_from;             /* dbp_read_from for read requests (default DBP_READ_PRIMARY) */
    int balance;               /* dbp_balance among fitting endpoints (default round robin) */
    int64_t failover_timeout_ms; /* how long a request waits for an endpoint in the role it
                                    needs while none is up (default 30000) */
    int64_t probe_interval_ms; /* role and health probe of each endpoint (default 1000) */
    int64_t max_replica_lag_ms; /* skip replicas further behind than this (default 0 = no limit) */

    /* Deadlines (see docs/timeouts.md): */
    int64_t query_timeout_ms;   /* default deadline of every call, counted from its submission
                                   (default 0 = none: analytics queries may run long) */
    int64_t connect_timeout_ms; /* opening one connection (default 10000) */
    int64_t cancel_grace_ms;    /* a cancelled statement has this long to stop; a connection
                                   whose server does not confirm the cancel in time is
                                   discarded (default 2000) */

    /* Session state (see docs/timeouts.md): */
    const char *init_sql;       /* run on every new connection, and again after a reset;
                                   NULL for none (copied) */
    int reset_on_release;       /* dbp_reset_mode (default DBP_RESET_AUTO) */
} dbp_pool_options;

/* What happens to a connection's session state (SET, temporary tables,
 * LISTEN, advisory locks, ...) when it goes back to the pool, so that one
 * caller's settings never reach the next caller. Engines without a reset
 * (SQLite) keep their state whatever this says. */
typedef enum dbp_reset_mode {
    DBP_RESET_AUTO = 0,   /* reset after statements that may have changed session state */
    DBP_RESET_ALWAYS = 1, /* reset on every release (one round trip) */
    DBP_RESET_NEVER = 2,  /* keep the session as the caller left it */
} dbp_reset_mode;

/* Where read requests go (see dbp_request_set_readonly). Writes, and
 * transactions that are not read-only, always go to the primary. */
typedef enum dbp_read_from {
    DBP_READ_PRIMARY = 0,
    DBP_READ_REPLICAS = 1, /* replicas; the primary only while no replica is up */
    DBP_READ_ANY = 2,      /* the primary and the replicas alike */
} dbp_read_from;

typedef enum dbp_balance {
    DBP_BALANCE_ROUND_ROBIN = 0,
    DBP_BALANCE_LEAST_BUSY = 1, /* the endpoint with the fewest connections in use */
} dbp_balance;

void dbp_pool_options_init(dbp_pool_options *opts);

/* Engine connection settings as key/value strings; the driver validates them.
 * Keys the engine does not know are rejected with DBP_E_CONFIG. */
typedef struct dbp_setting {
    const char *key;
    const char *value;
} dbp_setting;

/* ---- manager ------------------------------------------------------------ */

typedef struct dbp_manager dbp_manager;

/* Creates a manager. The caller frees it with dbp_manager_free. */
int dbp_manager_new(dbp_manager **out, dbp_error *err);

/* Closes every pool as dbp_manager_close_pool does, all within one
 * timeout_ms (< 0: the default, 10 s), lets the worker threads go and drops
 * the caller's reference. Returns DBP_OK when everything stopped in time,
 * DBP_E_TIMEOUT when some statements were still stuck in their engine: their
 * callers were answered and their workers abandoned (they end, and free what
 * they hold, whenever the engine returns). A request whose engine call
 * returned just as the shutdown ended may still be on its way from its
 * worker: it shows as done (and is on its completion queue) a moment later,
 * so a caller keeps draining until each of its requests is done. In a child
 * process forked after the manager was created it does nothing: the
 * connections are the parent's, and every other call fails with
 * DBP_E_CLOSED there. */
int dbp_manager_shutdown(dbp_manager *mgr, int64_t timeout_ms);
/* dbp_manager_shutdown with the default timeout. */
void dbp_manager_free(dbp_manager *mgr);

/* Keeps the manager's memory (not its pools) valid until the matching
 * dbp_manager_unref, for a thread that may still be inside
 * dbp_manager_wait_events when another calls dbp_manager_free. */
void dbp_manager_ref(dbp_manager *mgr);
void dbp_manager_unref(dbp_manager *mgr);

/* Creates the pool `pool_id` for `engine` ("sqlite", ...), opening
 * min_size connections before it returns, so bad settings fail here.
 * Strings are copied. */
int dbp_manager_create_pool(dbp_manager *mgr, const char *pool_id, const char *engine,
                            const dbp_setting *settings, size_t n_settings,
                            const dbp_pool_options *opts, dbp_error *err);

/* One endpoint's engine settings. */
typedef struct dbp_endpoint_config {
    const dbp_setting *settings;
    size_t n_settings;
} dbp_endpoint_config;

/* Creates a pool over several endpoints of one database. Each endpoint is
 * connected and its role probed before this returns; an endpoint that cannot
 * be reached is marked down and retried later, but a refused login or a bad
 * setting fails the call, and so does finding no endpoint reachable. With
 * one endpoint this is dbp_manager_create_pool. */
int dbp_manager_create_pool_endpoints(dbp_manager *mgr, const char *pool_id, const char *engine,
                                      const dbp_endpoint_config *endpoints, size_t n_endpoints,
                                      const dbp_pool_options *opts, dbp_error *err);

/* Closes a pool: queued requests fail with DBP_E_CLOSED at once, running
 * statements are cancelled (their callers get DBP_E_CLOSED), idle
 * connections close, and the call waits up to timeout_ms (< 0: the default,
 * 10 s) for the running ones to stop. Whatever is still stuck then is
 * abandoned: its caller is answered and its connection is closed when its
 * engine call returns. Returns DBP_E_TIMEOUT (the pool is closed all the
 * same) when something had to be abandoned. Never blocks longer than
 * timeout_ms plus a few milliseconds. */
int dbp_manager_close_pool(dbp_manager *mgr, const char *pool_id, int64_t timeout_ms,
                           dbp_error *err);

/* What dbp_manager_reconfigure_pool changed. */
typedef struct dbp_reconfigure_report {
    int endpoints_added;     /* new addresses, or removed ones given again */
    int endpoints_removed;   /* they take no new work; their connections close as they
                                come back */
    int endpoints_changed;   /* same address, other settings (a rotated password, say) */
    int options_changed;     /* any pool option differs */
    int connections_retired; /* idle connections closed at once (in-use ones close when
                                their caller is done with them) */
} dbp_reconfigure_report;

/* Applies a new configuration to a running pool without cutting any work
 * short (docs/configuration.md, "Reload"). Endpoints are matched by address
 * (host, port, database): one listed with other settings gets them, and
 * connections opened with the old ones retire (idle ones now, in-use ones
 * when they come back); one no longer listed is removed the same way; new
 * ones are added (probed for their role first in pools of several). The
 * options are replaced whole: new waits and statements use them, those
 * under way keep their deadlines; connections follow a lowered max_size or
 * max_lifetime as they come back, and a changed init_sql retires them all.
 * Nothing connects here. On error nothing has changed. `report` may be
 * NULL. */
int dbp_manager_reconfigure_pool(dbp_manager *mgr, const char *pool_id,
                                 const dbp_endpoint_config *endpoints, size_t n_endpoints,
                                 const dbp_pool_options *opts, dbp_reconfigure_report *report,
                                 dbp_error *err);

/* Makes every endpoint of a pool of several due for a role probe now (a
 * down one too, past its backoff) and wakes the janitor: for a caller that
 * learned of a failover elsewhere (Redis Sentinel's +switch-master) and
 * wants writes to follow it without waiting for probe_interval. A probe
 * already under way is followed by another. Nothing happens in a pool of
 * one endpoint. DBP_E_NOT_FOUND for an unknown pool. */
int dbp_manager_probe_now(dbp_manager *mgr, const char *pool_id, dbp_error *err);

/* Names of the open pools; *out is a NULL-terminated array the caller frees
 * with dbp_free_strings. */
int dbp_manager_list_pools(dbp_manager *mgr, char ***out, dbp_error *err);
void dbp_free_strings(char **strings);

/* Engines compiled into this build, NULL-terminated, static. */
const char *const *dbp_engines(void);

typedef struct dbp_pool_stats {
    int size;          /* open connections */
    int idle;          /* open and not in use */
    int in_use;        /* checked out */
    int opening;       /* being connected */
    int waiting;       /* callers queued for a connection */
    int max_size;
    int min_size;
    uint64_t acquired_total;   /* successful acquisitions */
    uint64_t timeouts_total;   /* acquisitions that timed out */
    uint64_t rejected_total;   /* refused because the wait queue was full */
    uint64_t created_total;    /* connections opened */
    uint64_t closed_total;     /* connections closed */
    uint64_t failed_total;     /* connection attempts that failed */
    uint64_t validations_failed_total; /* pre-use pings that failed */
    uint64_t requests_total;   /* requests completed */
    uint64_t errors_total;     /* requests completed with an error */
    uint64_t cancelled_total;  /* requests cancelled */
    double acquire_wait_ms_total; /* summed time callers waited for a connection */
    int n_endpoints;
    uint64_t topology_generation; /* bumped whenever an endpoint's role changes */
    uint64_t failovers_total;     /* times writes moved to a different primary */
    uint64_t retries_total;       /* requests moved to another endpoint before running */
    uint64_t query_timeouts_total; /* calls whose own deadline passed */
    uint64_t abandoned_total;     /* callers answered while their statement was still stuck in
                                     the engine (after a deadline, cancel or close) */
} dbp_pool_stats;

int dbp_manager_pool_stats(dbp_manager *mgr, const char *pool_id, dbp_pool_stats *out,
                           char *engine_out, size_t engine_out_size, dbp_error *err);

typedef enum dbp_role {
    DBP_ROLE_UNKNOWN = 0, /* not probed (single-endpoint pools never probe) */
    DBP_ROLE_PRIMARY = 1,
    DBP_ROLE_REPLICA = 2,
} dbp_role;

typedef enum dbp_health {
    DBP_HEALTH_UP = 0,
    DBP_HEALTH_SUSPECT = 1, /* a connection to it broke; a probe is on its way */
    DBP_HEALTH_DOWN = 2,    /* connecting failed; retried after a backoff */
} dbp_health;

/* The state of one endpoint. `label` is host, port and database, never a
 * password. */
typedef struct dbp_endpoint_stats {
    char label[128];
    int role;            /* dbp_role */
    int health;          /* dbp_health */
    int is_primary;      /* the endpoint writes go to now */
    double lag_seconds;  /* replica replay lag at the last probe; < 0 unknown */
    int failures;        /* consecutive failed connects or probes */
    int64_t retry_in_ms; /* while down: time until the next attempt */
    char last_error[256];
    double health_since; /* unix time of the last change of health; 0 if never */
    int size, idle, in_use, opening;
    uint64_t acquired_total;
    uint64_t failed_total; /* failed connection attempts and probes */
    int removed;           /* a reconfigure removed it: it takes no new work, and its
                              connections close as they come back */
} dbp_endpoint_stats;

/* Endpoint `index` (0-based, in the order given at creation) of a pool;
 * DBP_E_NOT_FOUND past the last one. */
int dbp_manager_endpoint_stats(dbp_manager *mgr, const char *pool_id, int index,
                               dbp_endpoint_stats *out, dbp_error *err);

/* ---- metrics (docs/observability.md) -------------------------------------- */

/* Histograms have fixed upper bounds per kind (dbp_histogram_bounds), plus
 * a last +Inf bucket. */
#define DBP_HIST_BUCKETS 22
typedef enum dbp_hist_kind {
    DBP_HIST_SECONDS = 0, /* durations, bounds 10 us .. 60 s, log-spaced 1-2.5-5 */
    DBP_HIST_ROWS = 1,    /* row counts, bounds 0, 1, 10 .. 1e8 */
    DBP_HIST_BYTES = 2,   /* sizes in bytes, bounds 0, 100, 1000 .. 1e10 */
} dbp_hist_kind;

/* The upper bounds (inclusive, ascending) of a kind's finite buckets; *n is
 * how many (the +Inf bucket follows them). Static; NULL for an unknown kind. */
const double *dbp_histogram_bounds(int kind, int *n);

typedef struct dbp_histogram_snapshot {
    int kind;                           /* dbp_hist_kind */
    uint64_t buckets[DBP_HIST_BUCKETS]; /* observations per bucket, not cumulative; index
                                           n (of dbp_histogram_bounds) is +Inf */
    uint64_t count;
    double sum;                         /* seconds or rows */
} dbp_histogram_snapshot;

/* Why the pool closed a connection. Append-only. */
typedef enum dbp_close_reason {
    DBP_CLOSE_IDLE = 0,          /* idle longer than idle_timeout above min_size */
    DBP_CLOSE_LIFETIME = 1,      /* older than max_lifetime (with jitter) */
    DBP_CLOSE_BROKEN = 2,        /* the connection failed while in use */
    DBP_CLOSE_RESET_FAILED = 3,  /* rollback / cursor close / session reset on release failed */
    DBP_CLOSE_VALIDATION = 4,    /* a ping or role probe before use failed */
    DBP_CLOSE_TOPOLOGY = 5,      /* its endpoint changed role */
    DBP_CLOSE_ENDPOINT_DOWN = 6, /* its endpoint was found unreachable */
    DBP_CLOSE_POOL_CLOSED = 7,   /* the pool or manager closed */
    DBP_CLOSE_RECONFIGURED = 8,  /* a reconfigure replaced its settings, removed its endpoint
                                    or lowered max_size */
} dbp_close_reason;
#define DBP_CLOSE_REASON_SLOTS 16 /* every dbp_close_reason is below this */
/* "idle", "lifetime", ...; static; "unknown" past the last. */
const char *dbp_close_reason_name(int reason);

#define DBP_CATEGORY_SLOTS 32 /* every dbp_category is below this */

/* A pool's own metrics; its connections are counted per endpoint. */
typedef struct dbp_pool_metrics {
    int waiting;     /* callers queued for a connection now */
    int n_endpoints;
    uint64_t requests[DBP_CATEGORY_SLOTS]; /* finished requests by outcome: [DBP_OK] succeeded,
                                              else the error's dbp_category */
    uint64_t acquire_timeouts; /* waits for a connection that passed acquire_timeout */
    uint64_t rejected;         /* refused at submission: the wait queue was full */
    uint64_t retries;          /* requests moved to another endpoint before running */
    uint64_t abandoned;        /* callers answered while their statement was still stuck */
    uint64_t failovers;        /* times writes moved to a different primary */
    uint64_t topology_generation;
    uint64_t bulk_rows_in;     /* rows written by write_frame */
    uint64_t bulk_rows_out;    /* rows read by cursor fetches (stream) */
    uint64_t bulk_bytes_out;   /* bytes of the Arrow batches those fetches built */
    dbp_histogram_snapshot wait_time;   /* acquire wait of each checkout, seconds */
    dbp_histogram_snapshot result_rows; /* rows of each query() result */
    dbp_histogram_snapshot result_bytes; /* bytes of the Arrow batches of each query() result */
} dbp_pool_metrics;

typedef struct dbp_endpoint_metrics {
    char label[128];   /* host, port and database; never a password */
    int role, health, is_primary; /* dbp_role, dbp_health (the circuit breaker's state) */
    double lag_seconds; /* < 0 unknown */
    int failures;       /* consecutive failed connects or probes */
    int idle, in_use, opening, closing; /* connections by state now */
    int max_size, min_size;
    uint64_t acquired;          /* checkouts by callers */
    uint64_t opened;            /* connections opened */
    uint64_t connect_failures;  /* connection attempts that failed */
    uint64_t validations_failed;
    uint64_t role_changes;      /* a known role that changed (not its first discovery) */
    uint64_t closed[DBP_CLOSE_REASON_SLOTS]; /* by dbp_close_reason */
    dbp_histogram_snapshot create_time; /* connect (+ init_sql) of each new connection */
    dbp_histogram_snapshot use_time;    /* checkout to return of each caller's connection */
} dbp_endpoint_metrics;

/* Reads a pool's metrics and its endpoints' (up to max_eps into `eps`; the
 * pool's count is out->n_endpoints) in one critical section, so they agree
 * with each other. engine_out (optional) gets the engine's name. */
int dbp_manager_pool_metrics(dbp_manager *mgr, const char *pool_id, dbp_pool_metrics *out,
                             dbp_endpoint_metrics *eps, int max_eps, char *engine_out,
                             size_t engine_out_size, dbp_error *err);

/* ---- topology events ------------------------------------------------------- */

typedef enum dbp_event_kind {
    DBP_EVENT_UP = 1,      /* an endpoint answers again */
    DBP_EVENT_SUSPECT = 2,
    DBP_EVENT_DOWN = 3,
    DBP_EVENT_ROLE = 4,    /* an endpoint's role changed (or became known) */
    DBP_EVENT_PRIMARY = 5, /* writes now go to this endpoint */
} dbp_event_kind;

typedef struct dbp_event {
    int kind;          /* dbp_event_kind */
    double unix_time;
    char pool_id[128];
    char endpoint[128];
    int role;          /* dbp_role after the event */
    int old_role;
    char message[256]; /* the error that made it suspect or down, else "" */
} dbp_event;

/* Waits up to timeout_ms (< 0: forever) for endpoint events of any pool and
 * moves up to `max` of them into `out`, oldest first; *n is how many. The
 * manager keeps the latest 256. Returns DBP_E_CLOSED (with *n = 0) once the
 * manager is being freed, so a thread draining events can stop; such a
 * thread holds a dbp_manager_ref across the call. */
int dbp_manager_wait_events(dbp_manager *mgr, int64_t timeout_ms, dbp_event *out, size_t max,
                            size_t *n);

/* ---- parameters ---------------------------------------------------------- */

typedef enum dbp_value_kind {
    DBP_V_NULL = 0,
    DBP_V_BOOL = 1,
    DBP_V_INT64 = 2,
    DBP_V_DOUBLE = 3,
    DBP_V_TEXT = 4,      /* UTF-8 */
    DBP_V_BLOB = 5,
    DBP_V_DATE = 6,      /* days since 1970-01-01 */
    DBP_V_TIME = 7,      /* microseconds since midnight */
    DBP_V_TIMESTAMP = 8, /* microseconds since epoch, no time zone */
    DBP_V_TIMESTAMP_TZ = 9, /* microseconds since epoch, UTC */
    DBP_V_DECIMAL = 10,  /* exact decimal as text, e.g. "-12.50" */
    DBP_V_UUID = 11,     /* text, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" */
    DBP_V_JSON = 12,     /* JSON document as UTF-8 text */
    DBP_V_INET = 13,     /* IP address or network as text, "10.0.0.1", "10.0.0.0/8" */
    DBP_V_INTERVAL = 14, /* microseconds (a duration) */
    DBP_V_ARRAY = 15,    /* array literal text, "{1,2,NULL}"; its element kind aside */
} dbp_value_kind;

/* A parameter list: positional values, optionally named (":name" style).
 * Values are copied in, so the caller's buffers may go away at once. */
typedef struct dbp_params dbp_params;

int dbp_params_new(dbp_params **out, dbp_error *err);
void dbp_params_free(dbp_params *p);
/* `name` may be NULL for positional parameters. Text and blobs are copied. */
int dbp_params_add_null(dbp_params *p, const char *name);
int dbp_params_add_bool(dbp_params *p, const char *name, int v);
int dbp_params_add_int64(dbp_params *p, const char *name, int64_t v);
int dbp_params_add_double(dbp_params *p, const char *name, double v);
int dbp_params_add_text(dbp_params *p, const char *name, const char *s, size_t len);
int dbp_params_add_blob(dbp_params *p, const char *name, const void *b, size_t len);
/* DATE, TIME, TIMESTAMP, TIMESTAMP_TZ, INTERVAL take an integer as described
 * above. */
int dbp_params_add_temporal(dbp_params *p, const char *name, dbp_value_kind kind, int64_t v);
int dbp_params_add_decimal(dbp_params *p, const char *name, const char *text, size_t len);
/* UUID, JSON, INET (and TEXT, DECIMAL): the value's text. */
int dbp_params_add_typed_text(dbp_params *p, const char *name, dbp_value_kind kind,
                              const char *text, size_t len);
/* An array in its literal form: "{1,2,NULL}", "{{1,2},{3,4}}", "{\"a b\",c}"
 * (quoted with backslash escapes), of values of `element` kind (NULL when
 * unknown: empty or all NULL). Engines without arrays refuse it. */
int dbp_params_add_array(dbp_params *p, const char *name, dbp_value_kind element,
                         const char *literal, size_t len);
/* Marks the end of one row of an execute_many parameter set. */
int dbp_params_end_row(dbp_params *p);

/* ---- requests ------------------------------------------------------------ */

typedef enum dbp_op {
    DBP_OP_QUERY = 1,        /* rows -> Arrow result */
    DBP_OP_EXECUTE = 2,      /* rows affected */
    DBP_OP_EXECUTE_MANY = 3, /* one statement, many parameter rows */
    DBP_OP_LEASE = 4,        /* check out a connection and keep it */
    DBP_OP_BEGIN = 5,        /* on a lease: start a transaction (sql = options) */
    DBP_OP_COMMIT = 6,
    DBP_OP_ROLLBACK = 7,
    DBP_OP_CURSOR_OPEN = 8,  /* on a lease: open a cursor for streaming */
    DBP_OP_CURSOR_FETCH = 9, /* on a lease: next batch from the open cursor */
    DBP_OP_CURSOR_CLOSE = 10,
    DBP_OP_WRITE_FRAME = 11, /* bulk-load rows (see dbp_request_set_input) into table `sql` */
    DBP_OP_COMMAND = 12,     /* key-value engines (Redis): commands -> dbp_reply (below) */
} dbp_op;

/* DBP_OP_COMMAND: `params` holds one or more commands, each as an INT64
 * argument count followed by that many arguments (TEXT, BLOB, INT64 or
 * DOUBLE); they go to the server in one write (a pipeline) and their
 * replies come back as one DBP_REPLY_ARRAY, one element per command. `sql`
 * "MULTI" wraps them in MULTI/EXEC: the array is then EXEC's answer (NIL
 * when a WATCHed key changed). An error reply of one command is an
 * element of type DBP_REPLY_ERROR, not a failed request. A command request
 * is a write unless dbp_request_set_readonly says otherwise. */

typedef struct dbp_request dbp_request;
typedef struct dbp_lease dbp_lease;
typedef struct dbp_completion_queue dbp_completion_queue;

/* Creates a request. `sql` is copied; `params` (may be NULL) is taken over and
 * freed with the request. The caller owns one reference (dbp_request_unref).
 * Once submitted, a request keeps its manager's memory (not its pools or
 * threads) until it is freed, so it may be cancelled or read at any time,
 * even after dbp_manager_free. */
int dbp_request_new(dbp_request **out, dbp_op op, const char *sql, size_t sql_len,
                    dbp_params *params, dbp_error *err);
void dbp_request_unref(dbp_request *req);

/* This call's deadline in milliseconds, counted from its submission and
 * covering the wait for a connection too; 0 (the default) takes the pool's
 * query_timeout. When it passes the statement is cancelled on the server and
 * the request completes with DBP_E_QUERY_TIMEOUT within about half a second,
 * even if the server never answers. */
void dbp_request_set_timeout(dbp_request *req, int64_t timeout_ms);

/* Rows per batch for CURSOR_FETCH (default 65536). */
void dbp_request_set_batch_rows(dbp_request *req, int64_t rows);

/* How a QUERY or CURSOR_OPEN reads rows where the engine has a bulk path
 * (PostgreSQL COPY ... TO STDOUT (FORMAT binary)). */
typedef enum dbp_copy_mode {
    DBP_COPY_AUTO = 0, /* when valid and it pays */
    DBP_COPY_ALWAYS = 1,
    DBP_COPY_NEVER = 2,
} dbp_copy_mode;
void dbp_request_set_copy_mode(dbp_request *req, dbp_copy_mode mode);
/* Routing in pools with several endpoints: 1 = a read (follows read_from),
 * 0 = a write (goes to the primary). Default -1: QUERY is a read, every other
 * operation, LEASE included, a write. A QUERY whose connection breaks runs
 * again on another endpoint only when that cannot repeat a write: it was
 * marked read-only here or it ran on a replica. */
void dbp_request_set_readonly(dbp_request *req, int readonly);
/* May run on the submitting thread (1) instead of a worker: when the pool's
 * engine runs in-process (SQLite) and a connection is free at once, dbp_submit
 * runs the request itself and returns with it done, saving two thread
 * hand-offs. Waited for with dbp_request_wait (no completion queue): QUERY
 * and EXECUTE(_MANY); with a completion queue (an event loop): a QUERY that
 * only reads, stopped and handed to a worker once it runs past about 1 ms.
 * The caller blocks for the call, so it must not hold locks others need
 * (the CPython binding releases the GIL). Cancel and deadlines work as on a
 * worker (the janitor interrupts). */
void dbp_request_set_inline(dbp_request *req, int allowed);
/* 1 when `engine`'s requests may run on the submitting thread (above). */
int dbp_engine_runs_inline(const char *engine);
/* WRITE_FRAME: the rows to load, an Arrow stream of struct batches whose
 * field names are the table's columns. The request takes the stream over
 * (and releases it); `*in` is left released. */
void dbp_request_set_input(dbp_request *req, struct ArrowArrayStream *in);

/* An opaque pointer handed back unchanged; the library never touches it. */
void dbp_request_set_user_data(dbp_request *req, void *user_data);
void *dbp_request_user_data(const dbp_request *req);

/* Submits to a pool. When `cq` is not NULL the request is pushed onto it when
 * done (the queue takes its own reference); otherwise wait with
 * dbp_request_wait. An error here means the request was not submitted. */
int dbp_submit(dbp_manager *mgr, const char *pool_id, dbp_request *req,
               dbp_completion_queue *cq, dbp_error *err);

/* Submits to the connection held by a lease (transactions, cursors). One
 * request at a time per lease; a second one fails with DBP_E_MISUSE. */
int dbp_submit_on_lease(dbp_lease *lease, dbp_request *req, dbp_completion_queue *cq,
                        dbp_error *err);

/* Blocks until the request is done. timeout_ms < 0 waits forever. Returns
 * DBP_OK when done, DBP_E_TIMEOUT when the wait timed out. */
int dbp_request_wait(dbp_request *req, int64_t timeout_ms);

/* 1 once the request has completed (its outcome is readable). */
int dbp_request_is_done(const dbp_request *req);

/* Asks a request to stop: a queued request completes with DBP_E_CANCELLED at
 * once; a running one has its statement interrupted by the engine and
 * completes within about half a second even if the engine does not stop (its
 * connection is then discarded when the engine call returns). Safe from any
 * thread, at any time, repeatedly. */
void dbp_request_cancel(dbp_request *req);

/* After completion: the outcome (DBP_OK or a category) and the error. */
int dbp_request_status(const dbp_request *req, dbp_error *err);
int64_t dbp_request_rows_affected(const dbp_request *req);
/* Messages the engine sent while the request ran (PostgreSQL NOTICEs), each
 * "SEVERITY: text" and ending in '\n'; "" when none. Owned by the request. */
const char *dbp_request_notices(const dbp_request *req);
/* 1 when a CURSOR_FETCH reached the end of the rows. */
int dbp_request_cursor_done(const dbp_request *req);
/* Moves the result (QUERY, CURSOR_FETCH) into `out`;
 * the caller releases the stream. Returns DBP_E_MISUSE if there is none. */
int dbp_request_take_result(dbp_request *req, struct ArrowArrayStream *out);
/* ---- replies of key-value engines --------------------------------------------- */

typedef enum dbp_reply_type {
    DBP_REPLY_STRING = 1,  /* bulk string: bytes in str, len */
    DBP_REPLY_ARRAY = 2,   /* n elements */
    DBP_REPLY_INTEGER = 3, /* integer */
    DBP_REPLY_NIL = 4,
    DBP_REPLY_STATUS = 5,  /* simple string such as "OK" in str, len */
    DBP_REPLY_ERROR = 6,   /* the server's error text, "WRONGTYPE Operation ...", in str, len */
} dbp_reply_type;

/* One reply node; str is NUL-terminated too (it may hold NUL bytes itself). */
typedef struct dbp_reply {
    int type; /* dbp_reply_type */
    int64_t integer;
    char *str;
    size_t len;
    size_t n;
    struct dbp_reply **element;
} dbp_reply;

/* Moves the reply out of a completed COMMAND request (NULL if none); the
 * caller frees it with dbp_reply_free. */
dbp_reply *dbp_request_take_reply(dbp_request *req);
void dbp_reply_free(dbp_reply *reply);

/* Moves the lease out of a completed LEASE request; the caller releases it. */
dbp_lease *dbp_request_take_lease(dbp_request *req);

/* Returns the connection to its pool; the lease is gone afterwards. A
 * transaction still open is rolled back and an open cursor closed on a
 * worker thread (on the caller's only when memory runs out or the manager is
 * closing); a connection whose reset fails is closed instead. Called while a
 * request runs on the lease, the return happens when that request ends. */
void dbp_lease_release(dbp_lease *lease);
/* 1 while the connection is inside a transaction. */
int dbp_lease_in_transaction(const dbp_lease *lease);
/* The endpoint the lease's connection belongs to (host, port, database or
 * the SQLite path; never a password), for leak reports. Valid until release. */
const char *dbp_lease_endpoint(const dbp_lease *lease);

/* ---- completion queue ------------------------------------------------------ */

/* A queue of finished requests with one file descriptor that becomes readable
 * while the queue is not empty (an eventfd). Caller frees it, once every
 * request submitted with it is done: a request is on its queue by the time
 * dbp_request_wait or dbp_request_is_done shows it done. Freeing drops the
 * queue's references to the requests still on it. */
int dbp_completion_queue_new(dbp_completion_queue **out, dbp_error *err);
void dbp_completion_queue_free(dbp_completion_queue *cq);
int dbp_completion_queue_fd(const dbp_completion_queue *cq);
/* Moves up to `max` finished requests into `out` (the caller then owns the
 * queue's reference to each) and clears the readable state once empty.
 * Returns how many were moved. Never blocks. */
size_t dbp_completion_queue_drain(dbp_completion_queue *cq, dbp_request **out, size_t max);

#ifdef __cplusplus
}
#endif
#endif
