/* redis_internal.h - what the files of the Redis driver share.
 *
 *   redis.c          settings, login, roles, reset, the vtable
 *   redis_io.c       the socket: connecting, sending, reading replies, all
 *                    within the call's deadline (hiredis' reply parser)
 *   redis_tls.c      TLS on that socket (OpenSSL)
 *   redis_command.c  DBP_OP_COMMAND: pipelines and MULTI/EXEC
 *   redis_scan.c     tabular reads: SCAN by pattern, values into Arrow
 *   redis_values.c   a value's text into a typed Arrow column
 *   redis_bulk.c     write_frame: rows as hashes or strings, pipelined
 *   redis_cluster.c  Redis Cluster: the slot table, a socket per master,
 *                    batches sent per node, MOVED / ASK / TRYAGAIN
 *   redis_route.c    Redis Cluster: a request's commands to their key's
 *                    slots (split and merged), transactions in one slot
 *
 * The driver owns its non-blocking socket and polls it in bounded slices
 * (driver.h); hiredis parses the replies. Redis has no way to stop a
 * command already sent, so a call that is cancelled or passes its deadline
 * abandons its replies and the connection is discarded. */
#ifndef DBP_REDIS_INTERNAL_H
#define DBP_REDIS_INTERNAL_H

#include <hiredis/read.h>
#include <openssl/types.h>
#include <stdint.h>
#include <sys/types.h>

#include "column.h"
#include "driver.h"

/* The uniform `tls` modes (redis_tls.c). */
enum { RD_TLS_OFF, RD_TLS_REQUIRE, RD_TLS_VERIFY_CA, RD_TLS_VERIFY_FULL };

typedef struct rd_config {
    char *host;
    unsigned port;
    char *unix_socket;
    char *user;
    char *password; /* wiped when freed */
    long database;
    char *client_name;
    int cluster;          /* a Redis Cluster: `host` lists the seed nodes */
    size_t n_seeds;       /* cluster: the seeds, "host" and port each */
    char **seed_hosts;
    unsigned *seed_ports;
    int tls;              /* RD_TLS_* */
    char *ca_file;        /* a PEM file, or "system" */
    char *cert_file;      /* the client certificate and its key, if any */
    char *key_file;
    char *key_password;   /* wiped when freed */
    SSL_CTX *tls_ctx;     /* made from the above when tls is on */
} rd_config;

/* A growable output buffer of RESP commands. */
typedef struct rd_buf {
    char *data;
    size_t len, cap;
} rd_buf;

typedef struct rd_scan rd_scan;       /* redis_scan.c */
typedef struct rd_cluster rd_cluster; /* redis_cluster.c */

/* One server socket: the only one of a single-server connection, one per
 * master of a cluster connection. */
typedef struct rd_node {
    int fd;                 /* -1: not open (a cluster node is opened on first use) */
    redisReader *reader;    /* builds dbp_reply trees */
    SSL *ssl;               /* NULL unless the connection uses TLS */
    int broken;             /* its replies are out of step: never used again */
    char *host;             /* cluster nodes: where to connect */
    unsigned port;
    rd_buf out;             /* cluster: the commands of this node in a batch */
    char label[96];         /* host:port, for messages */
} rd_node;

typedef struct rd_conn {
    rd_node single;         /* the socket of a single-server connection */
    rd_node *node;          /* the node rd_send / rd_read_reply / rd_roundtrip use */
    rd_cluster *cluster;    /* NULL unless a cluster connection */
    int wake_fd;            /* eventfd interrupt() writes to end a wait at once */
    SSL_CTX *tls_ctx;       /* the pool's (a reference), NULL without TLS */
    int tls_mode;           /* RD_TLS_* */
    int broken;             /* is_usable answers 0 (some node broke) */
    int session_changed;    /* a command since the last reset may have changed the session */
    int has_reset;          /* the server knows RESET (6.2+): 1, 0, or -1 not yet known */
    rd_buf out;
    rd_buf login;           /* AUTH / SELECT / CLIENT SETNAME of this connection (wiped) */
    size_t login_n;         /* commands in `login` */
    long database;
    const dbp_exec_ctx *ctx; /* of the call under way */
    rd_scan *scan;          /* the open tabular cursor, if any */
} rd_conn;

/* ---- redis_io.c ---- */

/* A hiredis reader that builds dbp_reply trees (free with redisReaderFree). */
redisReader *rd_reader_new(void);
/* Opens n's socket to host:port or the unix socket path (NULL: TCP). */
int rd_connect_socket(rd_conn *c, rd_node *n, const char *host, unsigned port,
                      const char *unix_socket, dbp_error *err);
void rd_node_close(rd_node *n);
/* Waits for `events` on n's socket (or for an interrupt) within the call's
 * deadline: the events that came, or 0 with *rc set when the call must stop. */
short rd_wait_for(rd_conn *c, rd_node *n, short events, int *rc, dbp_error *err);
/* Sends `len` bytes to node n (reading what arrives meanwhile). */
int rd_node_send(rd_conn *c, rd_node *n, const char *data, size_t len, dbp_error *err);
int rd_node_read(rd_conn *c, rd_node *n, dbp_reply **out, dbp_error *err);
/* The calls below work on c->node. */
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

/* ---- redis_tls.c ---- */

/* cfg->tls_ctx from the TLS settings (DBP_E_CONFIG naming a bad file). */
int rd_tls_context(rd_config *cfg, dbp_error *err);
/* The handshake on n's connected socket, checking `host` under verify-full. */
int rd_tls_start(rd_conn *c, rd_node *n, const char *host, dbp_error *err);
/* As recv / send on a non-blocking socket. */
ssize_t rd_tls_read(rd_node *n, void *buf, size_t len);
ssize_t rd_tls_write(rd_node *n, const void *buf, size_t len);
/* 1 when decrypted bytes wait inside OpenSSL (poll cannot see them). */
int rd_tls_pending(const rd_node *n);
/* An idle connection whose socket is readable: 1 when what came carries
 * no data (TLS 1.3 session tickets). */
int rd_tls_idle_ok(rd_node *n);
void rd_tls_close(rd_node *n);

/* ---- redis.c ---- */

/* Sends the login (AUTH, SELECT, CLIENT SETNAME) after the `prefix`
 * commands already in c->out, to c->node, and checks every reply. */
int rd_run_login(rd_conn *c, size_t prefix, dbp_error *err);

/* ---- redis_command.c ---- */

/* One argument's bytes: *data points into p or into buf (>= 48 bytes). */
int rd_arg_bytes(const dbp_params *p, const dbp_value *v, char *buf, size_t size,
                 const char **data, size_t *len, dbp_error *err);
/* One argument of a command as its bytes, appended to b. */
int rd_put_value(rd_buf *b, const dbp_params *p, const dbp_value *v, dbp_error *err);
/* MULTI's n + 2 replies into EXEC's answer (*out), or the error. */
int rd_exec_answer(rd_conn *c, dbp_reply **replies, size_t n, dbp_reply **out,
                   dbp_error *err);

int rd_command(void *conn, const char *mode, const dbp_params *cmds, const dbp_exec_ctx *ctx,
               dbp_reply **out, dbp_error *err);
/* execute(): one command written as text, split at blanks ("CLIENT SETNAME app"). */
int rd_execute(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err);
/* Notes a command that may change the connection's session (SELECT,
 * CLIENT, WATCH, ...), for `reset`. */
void rd_note_command(rd_conn *c, const char *name, size_t len);

/* ---- redis_cluster.c ---- */

#define RD_SLOTS 16384
/* rd_batch targets besides a slot (0..16383). */
#define RD_ANY_NODE (-1)              /* a command without keys */
#define RD_NODE(i) (-2 - (int)(i))   /* this master (index in the cluster) */

/* Commands going to a cluster: their bytes lie back to back in `src` (the
 * caller's buffer), each with its target; rd_batch_run sends them to their
 * nodes in per-node pipelines, follows MOVED / ASK / TRYAGAIN, and leaves
 * each command's reply in replies[i]. */
typedef struct rd_batch {
    rd_buf *src;
    size_t n, cap;
    size_t *off;
    int *target;
    dbp_reply **replies;
} rd_batch;

/* Cluster settings, connecting: the slot table from CLUSTER SLOTS. */
int rd_cluster_connect(rd_conn *c, const rd_config *cfg, dbp_error *err);
void rd_cluster_free(rd_conn *c);
/* 1 for commands without keys (PING, INFO, DBSIZE, ...): any node serves them. */
int rd_keyless(const char *name, size_t len);
/* The slot of a key: CRC16 (XMODEM) of the key or of its {hash tag}. */
unsigned rd_keyslot(const char *key, size_t len);
/* Starts command i at src->len (call before encoding it). */
int rd_batch_mark(rd_batch *b, int target, dbp_error *err);
int rd_batch_run(rd_conn *c, rd_batch *b, dbp_error *err);
/* Frees the replies, keeps the arrays for the next batch. */
void rd_batch_clear(rd_batch *b);
void rd_batch_free(rd_batch *b);
/* ---- redis_route.c ---- */

/* DBP_OP_COMMAND on a cluster: commands routed by key slot, split, merged. */
int rd_cluster_command(rd_conn *c, int multi, const dbp_params *cmds, dbp_reply **out,
                       dbp_error *err);
/* The masters (rd_node indexes, ordered) of the current slot table. */
int rd_cluster_masters(rd_conn *c, size_t **out, size_t *n, dbp_error *err);
/* A summary of the slot table and of the slots being migrated, asked of
 * every master: equal summaries with no migration mean no key moved. */
int rd_cluster_topology(rd_conn *c, char **out, int *migrating, dbp_error *err);
/* Sends cmds to the node of `target` and reads n replies (no redirection). */
int rd_cluster_exchange(rd_conn *c, int target, const rd_buf *cmds, size_t n, dbp_reply **out,
                        dbp_error *err);
/* *retry 1 when reply r of a command for `target` was a MOVED (the table is
 * now updated), ASK, TRYAGAIN or CLUSTERDOWN (after a short sleep). */
int rd_cluster_follow(rd_conn *c, const dbp_reply *r, int target, int round, int *retry,
                      dbp_error *err);
/* Every open node, for ping / reset / is_usable. */
size_t rd_cluster_open_nodes(rd_conn *c, rd_node **out, size_t max);

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
