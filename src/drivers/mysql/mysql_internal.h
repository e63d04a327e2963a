/* mysql_internal.h - what the files of the MySQL/MariaDB driver share.
 *
 *   mysql.c         settings, connecting, roles, transactions, the vtable
 *   mysql_wait.c    every wait on the server: deadlines, KILL QUERY, errors
 *   mysql_stmt.c    statements: parameters (binary protocol), execute
 *   mysql_cursor.c  query results, streamed row by row into Arrow
 *   mysql_types.c   MySQL column types and values <-> Arrow
 *   mysql_bulk.c    write_frame: LOAD DATA LOCAL INFILE from memory
 *
 * Connections use MariaDB Connector/C's non-blocking API (the _start/_cont
 * calls): the worker polls the socket itself, in bounded slices, so every
 * wait obeys the call's deadline and cancel flag (driver.h). */
#ifndef DBP_MYSQL_INTERNAL_H
#define DBP_MYSQL_INTERNAL_H

#include <mysql.h>
#include <stdatomic.h>
#include <stdint.h>

#include "column.h"
#include "driver.h"

/* What a connection needs to log in, also copied into a cancel's own
 * connection (mysql_wait.c). The password is wiped when freed. */
typedef struct my_login {
    char *host, *user, *password, *database, *unix_socket;
    unsigned port;
    int ssl_mode; /* my_ssl_mode */
    char *ssl_ca, *ssl_cert, *ssl_key;
} my_login;

typedef enum my_ssl_mode {
    MY_SSL_DISABLED,
    MY_SSL_PREFERRED,
    MY_SSL_REQUIRED,
    MY_SSL_VERIFY_CA,
    MY_SSL_VERIFY_IDENTITY,
} my_ssl_mode;

typedef struct my_config {
    my_login login;
    int64_t connect_timeout_ms; /* the engine's own bound on a login, within the pool's */
    int zero_dates_null;        /* 0000-00-00 dates: NULL (1) or an error (0) */
    int tinyint1_bool;          /* TINYINT(1) as Boolean (default 1) */
} my_config;


/* Prepared statements kept per connection, by SQL text, least recently
 * used dropped first: a repeated query skips its prepare round trip. */
#define MY_STMT_CACHE 32
typedef struct my_cached {
    char *sql;
    size_t len;
    MYSQL_STMT *stmt;
    uint64_t used;
} my_cached;
typedef struct my_cursor my_cursor;         /* mysql_cursor.c */

typedef struct my_conn {
    MYSQL *db;                /* in the connector's non-blocking mode */
    const my_config *cfg;     /* valid during calls (not in disconnect) */
    unsigned long thread_id;  /* the server's id of this session, for KILL QUERY */
    unsigned long max_packet; /* the server's max_allowed_packet (0: unknown) */
    int cancel_fd;            /* eventfd written by interrupt() */
    atomic_uint interrupts;   /* interrupt() calls, so a call drains cancel_fd only after one */
    unsigned interrupts_seen;
    const dbp_exec_ctx *ctx;  /* of the running call */
    int64_t cancel_sent_ns;   /* when this call sent KILL QUERY; 0: not yet */
    int timed_out;            /* that KILL was for the call's deadline */
    int cancel_resent;        /* the KILL was sent a second time (mysql_wait.c) */
    struct dbp_side_job *cancel_job; /* the KILL, while it may not have reached the server */
    int dead;                 /* the link failed or a KILL was not confirmed in time */
    int in_tx;                /* BEGIN sent, no COMMIT/ROLLBACK since */
    int session_changed;      /* a statement since the last reset may have changed state */
    my_cursor *cursor;        /* the open cursor, if any */
    my_cached cache[MY_STMT_CACHE];
    int n_cached;
    uint64_t tick;
} my_conn;

/* ---- mysql_wait.c ---- */

void my_call_begin(my_conn *c, const dbp_exec_ctx *ctx);
/* A read that succeeded although KILL QUERY was sent during it: its rows
 * cannot be trusted, so it fails as cancelled (or timed out). */
int my_read_outcome(my_conn *c, int rc, dbp_error *err);
/* Ends a call: waits (within the grace) for a KILL it sent. */
void my_call_end(my_conn *c);
/* Waits for what a _start/_cont call asked (MYSQL_WAIT_* bits in `status`)
 * within the call's bounds; returns the bits that happened, or -1 with
 * *rc set (DBP_E_CANCELLED / DBP_E_QUERY_TIMEOUT when a KILL was not
 * confirmed in the grace: c->dead is set then). */
int my_wait(my_conn *c, int status, int *rc, dbp_error *err);
/* Runs a non-blocking call to its end: `start` gives the first status (what
 * it waits for); `cont` is called with `status` set to what happened and
 * gives the next. */
#define MY_RUN(c, status, start, cont, rc, err)                                           \
    do {                                                                                  \
        status = (start);                                                                 \
        while (status) {                                                                  \
            int got_ = my_wait((c), status, &(rc), (err));                                \
            if (got_ < 0)                                                                 \
                break;                                                                    \
            status = got_; /* what happened: `cont` passes it on */                       \
            status = (cont);                                                              \
        }                                                                                 \
    } while (0)

/* Sends KILL QUERY for the running statement once per call, without
 * waiting for it. */
void my_cancel(my_conn *c);
/* The error of the last call on the connection (or `stmt`, when not NULL):
 * the server's number, SQLSTATE and text, with a category. */
int my_error(my_conn *c, MYSQL_STMT *stmt, dbp_error *err);
/* Runs a statement without result rows (or discards them) in the text
 * protocol, within the call's bounds; *affected when not NULL. */
int my_query(my_conn *c, const char *sql, size_t len, int64_t *affected, dbp_error *err);
/* Opens a connection with the login, within `deadline_ns` and the cancel
 * flag (NULL: none). */
int my_connect(MYSQL *db, const my_login *login, int64_t connect_timeout_ms, my_conn *c,
               dbp_error *err);
void my_login_free(my_login *login);
int my_login_copy(my_login *to, const my_login *from);

/* ---- mysql_stmt.c ---- */

/* Prepares `sql` and binds `row` of `params` (NULL: none); *out is closed
 * with my_stmt_close. */
int my_stmt_prepare(my_conn *c, const char *sql, size_t len, MYSQL_STMT **out, dbp_error *err);
int my_stmt_bind_row(my_conn *c, MYSQL_STMT *stmt, const dbp_params *params, size_t row,
                     void **storage, dbp_error *err);
int my_stmt_execute(my_conn *c, MYSQL_STMT *stmt, dbp_error *err);
void my_stmt_close(my_conn *c, MYSQL_STMT *stmt);
/* my_stmt_prepare through the connection's cache: the statement is the
 * caller's until my_stmt_give_back, which keeps it (when `reusable`: it
 * ended cleanly) or closes it. */
int my_stmt_take(my_conn *c, const char *sql, size_t len, MYSQL_STMT **out, dbp_error *err);
void my_stmt_give_back(my_conn *c, const char *sql, size_t len, MYSQL_STMT *stmt, int reusable);
/* Closes every cached statement (before a session reset, which drops them
 * on the server; after mysql_close, which leaves only their memory). */
void my_stmt_cache_clear(my_conn *c);
/* A transaction of the driver's own for a multi-statement write (all or
 * nothing), unless the caller's is open: *own says which. The end commits
 * when rc is DBP_OK, else rolls back, and returns the outcome. */
int my_own_tx_begin(my_conn *c, int *own, dbp_error *err);
int my_own_tx_end(my_conn *c, int own, int rc, dbp_error *err);
int my_execute(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err);

/* ---- mysql_cursor.c ---- */

int my_cursor_open(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, dbp_error *err);
int my_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                    dbp_result **out, int *done, dbp_error *err);
void my_cursor_close(void *conn, const dbp_exec_ctx *ctx);

/* ---- mysql_bulk.c ---- */

/* Installs the local-infile handler that refuses every file request (the
 * server's, or a user's LOAD DATA LOCAL) unless write_frame serves one. */
void my_infile_guard(MYSQL *db);
int my_bulk_load(void *conn, const char *table, const dbp_params *options,
                 struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                 int64_t *loaded, dbp_error *err);

/* ---- mysql_types.c ---- */

typedef enum my_decoder {
    MYD_INT,      /* signed integers (and YEAR) */
    MYD_UINT,     /* unsigned integers */
    MYD_BOOL,     /* TINYINT(1) */
    MYD_FLOAT,
    MYD_DOUBLE,
    MYD_DECIMAL,  /* text digits */
    MYD_DATE,
    MYD_DATETIME,
    MYD_TIMESTAMP, /* UTC-aware */
    MYD_TIME,     /* a duration, may be negative or past 24 h */
    MYD_BIT,      /* big-endian bytes as UInt64 */
    MYD_TEXT,
    MYD_BINARY,
} my_decoder;

typedef struct my_column_plan {
    my_decoder decoder;
    dbp_type type;               /* the Arrow type built */
    enum enum_field_types field; /* the buffer type bound for it */
    unsigned long fixed_size;    /* bytes of its fixed-size buffer; 0 for variable */
} my_column_plan;

/* Plans a result column from the server's field description. DBP_E_DATA
 * names the column for a type without an exact Arrow form. */
int my_plan_column(const MYSQL_FIELD *field, const my_config *cfg, my_column_plan *out,
                   dbp_error *err);
/* Appends one fetched value (`buf` of `len` bytes in the bound form). */
int my_decode_value(const my_column_plan *plan, const my_config *cfg, const void *buf,
                    unsigned long len, dbp_column *out, const char *column, dbp_error *err);

/* A parameter bound in the binary protocol, with the storage it points to. */
typedef struct my_param {
    MYSQL_TIME time;
    long long i;
    double d;
    char is_null;
    unsigned long length;
} my_param;

/* Fills `bind` for one cell; `store` backs the value. DBP_E_DATA for a
 * value MySQL cannot take exactly; `position` (1-based) names it. */
int my_param_bind(const dbp_cell *cell, size_t position, my_param *store, MYSQL_BIND *bind,
                  dbp_error *err);

#endif
