/* tds_internal.h - what the files of the MSSQL driver share:
 *
 *   tds.c          connecting, execute, transactions, the vtable
 *   tds_call.c     one driver call: db-lib's handlers, errors, own batches
 *   tds_cursor.c   result sets for query() and stream()
 *   tds_bulk.c     write_frame through bcp
 *   tds_session.c  session state and the reset on release
 *   tds_settings.c the pool's settings, tds_conf.c the freetds.conf they
 *                  need, tds_prelogin.c why an encrypted login failed
 *   tds_types.c    type mapping */
#ifndef DBP_TDS_INTERNAL_H
#define DBP_TDS_INTERNAL_H

#include <stdatomic.h>
#include <sybfront.h>
#include <sybdb.h>

#include "driver.h"
#include "tds_types.h"

/* A pool's settings (tds_settings.c). */
typedef struct tds_config {
    char server[64];     /* our freetds.conf section */
    char where[300];     /* host:port, or host\instance, for messages */
    char encryption[16]; /* encrypt= as configured, for messages; "" when not set */
    int encrypt_required; /* a server without TLS is refused */
    char *host;
    long port;           /* 0 with an instance */
    char *user;
    char *password;
    char *database;
    char *app_name;
    long packet_size;
} tds_config;

/* ---- tds_settings.c: the driver's parse_config, free_config, describe ---- */

int tds_parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err);
void tds_free_config(void *config);
void tds_describe(const void *config, char *buf, size_t size);

/* ---- tds_prelogin.c ---- */

/* Asks the server at host:port whether it offers TLS (a PRELOGIN of our
 * own, within timeout_ms): 1 it does, 0 it does not, -1 no answer. */
int tds_server_offers_tls(const char *host, long port, int timeout_ms);

/* What went wrong during one driver call: the first server error (class
 * above 10) and the first db-lib error, as the handlers filed them. */
typedef struct tds_failure {
    int server; /* a server error arrived */
    int number, state, severity, line;
    char message[DBP_ERROR_MESSAGE_SIZE];
    char procname[128];
    int client; /* db-lib's error number, 0 if none */
    int oserr;
    char client_text[512];
    int conversion; /* characters lost converting to or from UTF-8 */
} tds_failure;

typedef struct tds_cursor {
    int active;   /* a result set is being read */
    int finished; /* its rows and the rest of the command are read */
    int touches;  /* the statement may change @@TRANCOUNT */
    int n_cols;
    tds_column_plan *plans;
    char **names;
    int64_t rows_read;
} tds_cursor;

typedef struct tds_conn {
    DBPROCESS *proc;
    tds_failure fail;
    int connecting;      /* in dbopen: the login timeout applies */
    int dead;            /* the link is gone; the pool discards it */
    atomic_int interrupted;      /* set by interrupt() from any thread */
    const atomic_int *cancelled; /* the running call's flag, or NULL */
    int attention_sent;  /* this call sent (or skipped, when cancelled early) */
    int attention_polls; /* polls spent waiting for its acknowledgement */
    const dbp_exec_ctx *ctx;
    int trancount;       /* @@TRANCOUNT as last read */
    int implicit_mode;   /* the session mentioned IMPLICIT_TRANSACTIONS */
    int isolation_changed;
    int session_changed; /* a statement may have changed session state (tds_session.c) */
    tds_cursor cur;
} tds_conn;

/* ---- tds_call.c: one driver call ---- */

/* dbinit() and the handlers, once per process; -1 when db-lib failed. */
int tds_dblib_init(void);
/* Every driver call starts and ends with these: a clean error slot, the
 * call's context (cancel flag, deadline, notices). */
void tds_call_begin(tds_conn *c, const dbp_exec_ctx *ctx);
void tds_call_end(tds_conn *c);
/* The connection db-lib's handlers file into on this thread when a
 * DBPROCESS has none (the login, closing); returns the previous one. */
tds_conn *tds_set_current(tds_conn *c);
/* `err` from the server's error in `f`; returns the category. */
int tds_server_error(const tds_failure *f, int login, dbp_error *err);
/* Whether `sql` may change @@TRANCOUNT by itself; after it ran, the count
 * is read again when it did or a failure inside a transaction may have. */
int tds_touches_transactions(tds_conn *c, const char *sql, size_t len);
void tds_after_statement(tds_conn *c, int touches);
/* 1 while the caller wants the running call stopped. */
int tds_cancel_requested(const tds_conn *c);
/* 1 when the call so far has an error to report. */
int tds_failed(const tds_conn *c);
/* The error of a failed call into `err`; returns its category. */
int tds_call_error(tds_conn *c, dbp_error *err);
/* Runs a batch of the driver's own to its end; when `last_int` is not NULL,
 * a result set of one int column stores its last value there (the batches
 * that end in SELECT @@TRANCOUNT pass &c->trancount). */
void tds_run_own(tds_conn *c, const char *sql, int *last_int);
/* Reads @@TRANCOUNT again without disturbing the call's error. */
void tds_refresh_trancount(tds_conn *c);
/* Sends a SQL batch (NUL-terminated) and waits for its first answer;
 * errors go to the call's slot. */
void tds_send_batch(tds_conn *c, const char *sql);
/* Reads the rest of the current command, adding row counts to *affected
 * (may be NULL). */
void tds_drain(tds_conn *c, int64_t *affected);
/* Stops the current command: an attention, its acknowledgement read. */
void tds_cancel_results(tds_conn *c);

/* ---- tds.c ---- */

/* Sends `sql` as a batch, or with parameter row `row` as an RPC to
 * sp_executesql; waits for its first answer. */
int tds_send_statement(tds_conn *c, const char *sql, size_t len, const dbp_params *params,
                       size_t row, const unsigned char *null_binary, dbp_error *err);

/* ---- tds_cursor.c: result sets ---- */

void tds_cursor_reset(tds_cursor *cur);
int tds_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                    const dbp_exec_ctx *ctx, dbp_error *err);
int tds_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                     dbp_result **out, int *done, dbp_error *err);
void tds_cursor_close(void *conn, const dbp_exec_ctx *ctx);

/* tds_session.c: 1 when `sql` may change session state; driver.h's reset
 * (which replaces such a connection rather than resetting it). */
int tds_session_changes(const char *sql, size_t len);
int tds_reset(void *conn, int always, const dbp_exec_ctx *ctx, int *did_reset, dbp_error *err);
int tds_session_changed(void *conn);

#endif
