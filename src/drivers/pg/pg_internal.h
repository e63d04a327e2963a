/* pg_internal.h - what the files of the PostgreSQL driver share.
 *
 *   pg.c         settings, connecting, probing, transactions, the vtable
 *   pg_wait.c    every wait on the server: deadlines, cancel, errors
 *   pg_stmt.c    parameters, the prepared-statement cache, execute
 *   pg_cursor.c  query results: COPY (FORMAT binary) and row by row
 *   pg_bulk.c    write_frame: COPY FROM STDIN
 *   pg_session.c session state callers leave behind, and the reset
 *   pg_types.c, pg_copy.c   decoding the binary wire format (no libpq) */
#ifndef DBP_PG_INTERNAL_H
#define DBP_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdint.h>

#include "driver.h"
#include "textbuf.h"
#include "pg_types.h"

typedef struct pg_config {
    char **keys; /* libpq keywords, NULL-terminated */
    char **values;
    int cache_size;
} pg_config;

/* PQconninfoFree, with every value (the password among them) wiped first. */
void pg_conninfo_free(PQconninfoOption *opts);

typedef struct pg_statement {
    char *sql;
    size_t sql_len;
    char name[24]; /* "" for the unnamed statement */
    int n_params;
    Oid *param_types; /* as the server describes them */
    Oid *declared;    /* the types it was prepared with; NULL: all inferred */
    int n_fields;
    char **field_names;
    pg_column_plan *plans;
    uint64_t last_used;
    unsigned session_changes; /* PG_SESSION_*: what running it may change */
} pg_statement;

/* Session state a statement may leave behind (pg_session.c). */
enum {
    PG_SESSION_SETTINGS = 1,  /* SET, set_config */
    PG_SESSION_TEMP = 2,      /* temporary tables and the like */
    PG_SESSION_LISTEN = 4,
    PG_SESSION_ADVISORY = 8,  /* session-level advisory locks */
    PG_SESSION_CURSORS = 16,  /* DECLARE ... WITH HOLD */
    PG_SESSION_PREPARED = 32, /* SQL-level PREPARE */
    PG_SESSION_ALL = 63,
};

typedef enum cursor_kind { CURSOR_NONE, CURSOR_COPY, CURSOR_ROWS } cursor_kind;

typedef struct pg_cursor {
    cursor_kind kind;
    pg_statement *stmt; /* its columns; owned here when uncached */
    int owns_stmt;
    PGresult *rows;     /* CURSOR_ROWS: current result (single-row or whole) */
    int row;            /* next row of `rows` */
    int single_row;     /* rows arrive one PGresult per row */
    char *copy_buf;     /* CURSOR_COPY: bytes not parsed yet */
    size_t copy_len, copy_cap;
    int header_done;
    int finished;
    int64_t rows_read;
} pg_cursor;


typedef struct pg_conn {
    PGconn *pg;              /* in libpq's non-blocking mode */
    int cancel_fd;           /* eventfd written by interrupt() */
    atomic_uint interrupts;  /* interrupt() calls, so a call drains cancel_fd only after one */
    unsigned interrupts_seen;
    const pg_config *cfg;
    pg_statement **cache;
    int n_cached;
    uint64_t tick, next_name;
    pg_cursor cur;
    const dbp_exec_ctx *ctx; /* of the running call: cancel flag, deadline, notices */
    int64_t cancel_sent_ns;  /* when this call asked the server to cancel; 0: not yet */
    int timed_out;           /* that cancel was for the call's deadline */
    int cancel_resent;       /* the cancel was sent a second time (pg_wait.c) */
    struct dbp_side_job *cancel_job; /* that cancel, while the server may not have seen it */
    int dead;                /* the server did not confirm a cancel in time, or the
                                link failed: the connection is never used again */
    unsigned session_changes; /* PG_SESSION_*: what statements since the last reset
                                 may have changed */
} pg_conn;

/* ---- pg_wait.c ---- */

/* Every driver call starts and ends with these; `ctx` bounds every wait
 * of the call (never NULL). */
void pg_call_begin(pg_conn *c, const dbp_exec_ctx *ctx);
void pg_call_end(pg_conn *c);
/* Fills `err` from a failed result (or the connection's message); returns
 * the category. A broken connection is DBP_E_NETWORK. */
int pg_error(pg_conn *c, const PGresult *res, dbp_error *err);
void pg_on_notice(void *arg, const PGresult *res);
/* Waits until the socket can be read (its bytes are taken in) or, with
 * for_write, written, within the call's bounds: once the call is cancelled
 * or its deadline passes the server is asked to cancel, and if it does not
 * answer within the grace the connection is given up (DBP_E_CANCELLED or
 * DBP_E_QUERY_TIMEOUT, c->dead set). */
int pg_wait(pg_conn *c, int for_write, dbp_error *err);
/* Asks the server to cancel the running statement (once per call) without
 * waiting; the next waits give it the call's cancel grace. */
void pg_cancel(pg_conn *c);
/* Sends everything libpq has buffered. */
int pg_flush(pg_conn *c, dbp_error *err);
/* The next result of the current query (NULL at its end). */
int pg_next_result(pg_conn *c, PGresult **out, dbp_error *err);
/* Reads every remaining result of the current query, keeping the first
 * error; adds rows changed to *affected (may be NULL). */
int pg_drain(pg_conn *c, int64_t *affected, dbp_error *err);
/* Runs one simple-protocol command to its end. */
int pg_exec(pg_conn *c, const char *sql, dbp_error *err);
/* Runs one simple-protocol query; *out is its first result (caller clears
 * it), the rest is drained. */
int pg_query(pg_conn *c, const char *sql, PGresult **out, dbp_error *err);
/* Reads and drops the rest of a COPY TO STDOUT, if one is in progress. */
int pg_skip_copy_out(pg_conn *c, dbp_error *err);
/* COPY FROM STDIN data and its end, waiting while libpq's buffer is full;
 * `failure` (NULL on success) makes the server abort the COPY. */
int pg_put_copy(pg_conn *c, const char *data, size_t len, dbp_error *err);
int pg_end_copy(pg_conn *c, const char *failure, dbp_error *err);

/* ---- pg_stmt.c ---- */

/* The protocol counts a statement's parameters in 16 bits. */
#define PG_MAX_PARAMS 65535
/* The error for more parameters than that, before anything is sent. */
int pg_too_many_params(size_t given, dbp_error *err);

void pg_statement_free(pg_statement *st);
/* The prepared statement for `sql` that fits `params` (pg_params.c), from
 * the cache or newly prepared (named and cached, or unnamed when the cache is
 * off; *owned says the caller must free it). */
int pg_statement_for(pg_conn *c, const char *sql, size_t len, const dbp_params *params,
                     pg_statement **out, int *owned, dbp_error *err);
/* Prepares and describes `sql` as the unnamed statement, never cached. */
int pg_statement_fresh(pg_conn *c, const char *sql, size_t len, pg_statement **out,
                       dbp_error *err);
/* After a failure that says the server no longer knows a cached statement
 * (or DDL changed its result), forgets the cache; 1 when the caller should
 * try once more. */
int pg_forget_if_stale(pg_conn *c, const dbp_error *err);
/* Drops every cached statement without telling the server. */
void pg_forget_statements(pg_conn *c);
int pg_execute(void *conn, const char *sql, size_t len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err);

/* ---- pg_params.c ---- */

/* Whether `st` was prepared with the types `params` need: a parameter the
 * server infers as text is declared with its value's type (an int as int8,
 * a list as an array), so one SQL text may have several prepared forms. */
int pg_statement_fits(const pg_statement *st, const dbp_params *params);
/* The types to prepare `sql` with for `params`, given its untyped form
 * (0 where the server's inference stands); NULL when out of memory. */
Oid *pg_declared_types(const pg_statement *untyped, const dbp_params *params);
/* Sends the statement with parameter row `row` bound; binary results. */
int pg_send_bound(pg_conn *c, const pg_statement *st, const dbp_params *params, size_t row,
                  dbp_error *err);
/* The text PostgreSQL parses exactly for a value without bytes of its own
 * (bool, numbers, dates, times, durations); `t` holds 48 bytes. Returns its length. */
int pg_scalar_text(const dbp_cell *v, char *t);

/* ---- pg_copy_binary.c ---- */

/* How a frame column goes into a column type in COPY's binary format. */
typedef enum pg_binary_encoder {
    PGB_NONE = 0, /* no exact binary form: the write uses the text format */
    PGB_NULLS,    /* a column of nulls */
    PGB_BOOL, PGB_INT2, PGB_INT4, PGB_INT8, PGB_FLOAT4, PGB_FLOAT8, PGB_NUMERIC, PGB_UUID,
    PGB_TEXT,     /* the bytes as they are: text types, json, bytea */
    PGB_JSONB, PGB_DATE, PGB_TIME, PGB_TIMESTAMP, PGB_INTERVAL,
} pg_binary_encoder;

/* The encoder for cells of `kind` into a column of type `oid`. */
pg_binary_encoder pg_binary_encoder_for(dbp_value_kind kind, uint32_t oid);
void pg_binary_header(dbp_textbuf *t);
void pg_binary_row_start(dbp_textbuf *t, size_t n_fields);
void pg_binary_trailer(dbp_textbuf *t);
/* Appends one field; DBP_E_DATA (naming `column`) for a value the type
 * cannot hold (an int4 column and 2^40). */
int pg_binary_put(dbp_textbuf *t, pg_binary_encoder enc, const dbp_cell *v, const char *column,
                  dbp_error *err);

/* ---- pg_cursor.c ---- */

int pg_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, dbp_error *err);
int pg_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                    dbp_result **out, int *done, dbp_error *err);
void pg_cursor_close(void *conn, const dbp_exec_ctx *ctx);
/* Frees the cursor's memory without talking to the server. */
void pg_cursor_free(pg_cursor *cur);

/* ---- pg_session.c ---- */

/* PG_SESSION_* flags for what `sql` may change in the session, judged from
 * its words. */
unsigned pg_session_changes(const char *sql, size_t len);
/* driver.h's reset and session_changed. */
int pg_reset(void *conn, int always, const dbp_exec_ctx *ctx, int *did_reset, dbp_error *err);
int pg_session_changed(void *conn);

/* ---- pg_bulk.c ---- */

int pg_bulk_load(void *conn, const char *table, const dbp_params *options,
                 struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                 int64_t *loaded, dbp_error *err);

#endif
