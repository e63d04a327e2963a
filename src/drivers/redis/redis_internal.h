/* redis_internal.h - what the files of the Redis driver share.
 *
 *   redis.c          settings, login, roles, reset, the vtable
 *   redis_io.c       the socket: connecting, sending, reading replies, all
 *                    within the call's deadline (hiredis' reply parser)
 *   redis_command.c  DBP_OP_COMMAND: pipelines and MULTI/EXEC
 *   redis_scan.c     tabular reads: SCAN by pattern, values into Arrow
 *   redis_values.c   a value's text into a typed Arrow column
 *   redis_bulk.c     write_frame: rows as hashes or strings, pipelined
 *
 * The driver owns its non-blocking socket and polls it in bounded slices
 * (driver.h); hiredis parses the replies. Redis has no way to stop a
 * command already sent, so a call that is cancelled or passes its deadline
 * abandons its replies and the connection is discarded. */
#ifndef DBP_REDIS_INTERNAL_H
#define DBP_REDIS_INTERNAL_H

#include <hiredis/read.h>
#include <stdint.h>

#include "column.h"
#include "driver.h"

typedef struct rd_config {
    char *host;
    unsigned port;
    char *unix_socket;
    char *user;
    char *password; /* wiped when freed */
    long database;
    char *client_name;
} rd_config;

/* A growable output buffer of RESP commands. */
typedef struct rd_buf {
    char *data;
    size_t len, cap;
} rd_buf;

typedef struct rd_scan rd_scan; /* redis_scan.c */

typedef struct rd_conn {
    int fd;
    int wake_fd;            /* eventfd interrupt() writes to end a wait at once */
    redisReader *reader;    /* builds dbp_reply trees */
    int broken;             /* is_usable answers 0 */
    int session_changed;    /* a command since the last reset may have changed the session */
    int has_reset;          /* the server knows RESET (6.2+): 1, 0, or -1 not yet known */
    rd_buf out;
    rd_buf login;           /* AUTH / SELECT / CLIENT SETNAME of this connection (wiped) */
    size_t login_n;         /* commands in `login` */
    long database;
    const dbp_exec_ctx *ctx; /* of the call under way */
    char label[96];         /* host:port, for messages */
    rd_scan *scan;          /* the open tabular cursor, if any */
} rd_conn;

/* ---- redis_io.c ---- */

/* A hiredis reader that builds dbp_reply trees (free with redisReaderFree). */
redisReader *rd_reader_new(void);
int rd_connect_socket(rd_conn *c, const rd_config *cfg, const dbp_exec_ctx *ctx,
                      dbp_error *err);
/* Sends c->out (then empties it) and reads `n` replies into out[0..n-1]
 * (the caller frees them; on failure none is left). */
int rd_roundtrip(rd_conn *c, size_t n, dbp_reply **out, dbp_error *err);
/* Sends c->out and empties it, reading nothing (replies come with
 * rd_read_reply). */
int rd_send(rd_conn *c, dbp_error *err);
int rd_read_reply(rd_conn *c, dbp_reply **out, dbp_error *err);
/* An error reply as a request error (DBP_E_SERVER with the server's text;
 * NOAUTH / WRONGPASS as DBP_E_AUTH). */
int rd_reply_error(const dbp_reply *r, const char *what, dbp_error *err);

/* RESP encoding into a buffer: the array header, then each argument. */
int rd_buf_reserve(rd_buf *b, size_t more);
int rd_cmd_begin(rd_buf *b, size_t argc);
int rd_cmd_arg(rd_buf *b, const void *data, size_t len);
int rd_cmd_arg_int(rd_buf *b, int64_t v);
/* v in decimal into buf (at least 21 bytes), NUL-terminated; returns its length. */
size_t rd_format_int(char *buf, int64_t v);
/* A whole command of C strings, NULL-terminated. */
int rd_cmd(rd_buf *b, ...) __attribute__((sentinel));
void rd_buf_free(rd_buf *b);

/* ---- redis_command.c ---- */

int rd_command(void *conn, const char *mode, const dbp_params *cmds, const dbp_exec_ctx *ctx,
               dbp_reply **out, dbp_error *err);
/* execute(): one command written as text, split at blanks ("CLIENT SETNAME app"). */
int rd_execute(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err);
/* Notes a command that may change the connection's session (SELECT,
 * CLIENT, WATCH, ...), for `reset`. */
void rd_note_command(rd_conn *c, const char *name, size_t len);

/* ---- redis_scan.c ---- */

int rd_cursor_open(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, dbp_error *err);
int rd_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                    dbp_result **out, int *done, dbp_error *err);
void rd_cursor_close(void *conn, const dbp_exec_ctx *ctx);

/* ---- redis_values.c ---- */

/* What a value that does not parse as its column's type becomes. */
typedef enum rd_on_error { RD_ON_ERROR_RAISE = 0, RD_ON_ERROR_NULL = 1 } rd_on_error;

/* 1 when values can be read into columns of `id`. */
int rd_type_supported(dbp_type_id id);
/* Appends the text `s` (len bytes, NUL-terminated after them) to `col` as
 * its type: DBP_E_DATA when it does not parse (the caller names the key and
 * field), DBP_E_NOMEM. */
int rd_append_value(dbp_column *col, const char *s, size_t len);

/* ---- redis_bulk.c ---- */

int rd_bulk_load(void *conn, const char *prefix, const dbp_params *options,
                 struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx, int64_t *loaded,
                 dbp_error *err);

#endif
