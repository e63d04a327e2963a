/* redis_io.c - the Redis driver's socket: connecting, sending commands and
 * reading replies, every wait bounded by the call's deadline and cancel
 * flag in slices of at most a second (driver.h). Replies are parsed by
 * hiredis' reader into dbp_reply trees. While a long pipeline goes out,
 * replies already arriving are read too, so neither side ever blocks on a
 * full socket buffer. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "redis_internal.h"
#include "tcp.h"

#define SLICE_NS ((int64_t)1000000000)
#define READ_CHUNK 65536

/* ---- replies: hiredis' reader builds dbp_reply nodes ------------------------- */

/* Slots an array gets before its elements arrive: it grows as they do,
 * never trusting the count a reply declares ("*2000000000" would
 * otherwise allocate 16 GB before a single element came). */
#define ARRAY_INITIAL 16

/* hiredis hands an array's elements over in order (idx 0, 1, ...), so the
 * parent's n counts those attached and a failed reply frees only them. */
static void *attach(const redisReadTask *task, dbp_reply *r)
{
    if (!task->parent)
        return r;
    dbp_reply *parent = task->parent->obj;
    size_t idx = (size_t)task->idx, declared = (size_t)task->parent->elements;
    if (idx >= ARRAY_INITIAL && (idx & (idx - 1)) == 0) { /* full: double it */
        size_t cap = 2 * idx < declared ? 2 * idx : declared;
        dbp_reply **grown = dbp_realloc(parent->element, cap * sizeof *grown);
        if (!grown) {
            dbp_reply_free(r);
            return NULL;
        }
        parent->element = grown;
    }
    parent->element[idx] = r;
    parent->n = idx + 1;
    return r;
}

static void *new_node(const redisReadTask *task, int type)
{
    dbp_reply *r = dbp_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->type = type;
    return attach(task, r);
}

static void *create_string(const redisReadTask *task, char *s, size_t len)
{
    char *copy = dbp_malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    dbp_reply *r = dbp_calloc(1, sizeof *r);
    if (!r) {
        dbp_free(copy);
        return NULL;
    }
    r->type = task->type; /* STRING, STATUS or ERROR: the same numbers as hiredis' */
    r->str = copy;
    r->len = len;
    return attach(task, r);
}

static void *create_array(const redisReadTask *task, int n)
{
    size_t cap = n <= 0 ? 0 : n < ARRAY_INITIAL ? (size_t)n : ARRAY_INITIAL;
    dbp_reply *r = dbp_calloc(1, sizeof *r);
    if (!r || (cap && !(r->element = dbp_calloc(cap, sizeof *r->element)))) {
        dbp_free(r);
        return NULL;
    }
    r->type = DBP_REPLY_ARRAY; /* n grows as the elements are attached */
    return attach(task, r);
}

static void *create_integer(const redisReadTask *task, long long v)
{
    dbp_reply *r = new_node(task, DBP_REPLY_INTEGER);
    if (r)
        r->integer = v;
    return r;
}

static void *create_nil(const redisReadTask *task) { return new_node(task, DBP_REPLY_NIL); }

static void free_object(void *obj)
{
    /* hiredis frees only the root of a failed reply; children hang off it */
    dbp_reply_free(obj);
}

static redisReplyObjectFunctions reply_functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

redisReader *rd_reader_new(void) { return redisReaderCreateWithFunctions(&reply_functions); }

int rd_reply_error(const dbp_reply *r, const char *what, dbp_error *err)
{
    int auth = (r->len >= 6 && memcmp(r->str, "NOAUTH", 6) == 0) ||
               (r->len >= 9 && memcmp(r->str, "WRONGPASS", 9) == 0) ||
               (r->len >= 6 && memcmp(r->str, "NOPERM", 6) == 0);
    return dbp_error_set(err, auth ? DBP_E_AUTH : DBP_E_SERVER, 0, NULL, "%s: %.*s", what,
                         (int)(r->len > 900 ? 900 : r->len), r->str);
}

/* ---- waiting ------------------------------------------------------------------- */

static int stopped(rd_conn *c, rd_node *node, dbp_error *err)
{
    const dbp_exec_ctx *ctx = c->ctx;
    int timed_out = dbp_now_ns() >= ctx->deadline_ns;
    /* its replies are abandoned: nobody can tell where the next one starts */
    node->broken = c->broken = 1;
    return dbp_error_set(err, timed_out ? DBP_E_QUERY_TIMEOUT : DBP_E_CANCELLED, 0, "57014",
                         "%s before %s answered; Redis cannot stop a command already sent, so "
                         "its reply is abandoned and the connection closed",
                         timed_out ? "the deadline passed" : "cancelled", node->label);
}

short rd_wait_for(rd_conn *c, rd_node *node, short events, int *rc, dbp_error *err)
{
    const dbp_exec_ctx *ctx = c->ctx;
    for (;;) {
        if (atomic_load(ctx->cancelled) || dbp_now_ns() >= ctx->deadline_ns) {
            *rc = stopped(c, node, err);
            return 0;
        }
        int64_t left = ctx->deadline_ns - dbp_now_ns();
        if (left > SLICE_NS)
            left = SLICE_NS;
        struct pollfd fds[2] = {{.fd = node->fd, .events = events},
                                {.fd = c->wake_fd, .events = POLLIN}};
        int n = poll(fds, c->wake_fd >= 0 ? 2 : 1, (int)((left + 999999) / 1000000));
        if (n < 0 && errno != EINTR) {
            node->broken = c->broken = 1;
            *rc = dbp_error_set(err, DBP_E_NETWORK, errno, "08006", "poll on %s failed: %s",
                                node->label, strerror(errno));
            return 0;
        }
        if (n > 0 && fds[0].revents)
            return fds[0].revents;
        /* interrupt() woke it: the loop sees ctx->cancelled */
    }
}

static int lost(rd_conn *c, rd_node *node, const char *what, int code, dbp_error *err)
{
    node->broken = c->broken = 1;
    return dbp_error_set(err, DBP_E_NETWORK, code, "08006", "%s %s: %s", what, node->label,
                         code ? strerror(code) : "the server closed the connection");
}

/* Reads what the socket has now into the reader; 0 bytes is the server
 * closing the connection. */
static int read_some(rd_conn *c, rd_node *node, dbp_error *err)
{
    char chunk[READ_CHUNK];
    ssize_t n = node->ssl ? rd_tls_read(node, chunk, sizeof chunk)
                          : recv(node->fd, chunk, sizeof chunk, 0);
    if (n == 0)
        return lost(c, node, "reading from", 0, err);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? DBP_OK
                                                 : lost(c, node, "reading from", errno, err);
    if (c->ctx->replied)
        *c->ctx->replied = 1;
    if (redisReaderFeed(node->reader, chunk, (size_t)n) != REDIS_OK) {
        node->broken = c->broken = 1;
        return dbp_error_nomem(err);
    }
    return DBP_OK;
}

int rd_node_send(rd_conn *c, rd_node *node, const char *data, size_t len, dbp_error *err)
{
    size_t sent = 0;
    if (c->ctx->replied)
        *c->ctx->replied = 0;
    while (sent < len) {
        ssize_t n = node->ssl ? rd_tls_write(node, data + sent, len - sent)
                              : send(node->fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return lost(c, node, "sending to", errno, err);
        int rc = DBP_OK;
        short got = rd_wait_for(c, node, POLLOUT | POLLIN, &rc, err);
        if (!got)
            return rc;
        if ((got & POLLIN) && (rc = read_some(c, node, err)) != DBP_OK)
            return rc;
        if ((got & (POLLERR | POLLHUP)) && !(got & (POLLIN | POLLOUT)))
            return lost(c, node, "sending to", 0, err);
    }
    return DBP_OK;
}

int rd_node_read(rd_conn *c, rd_node *node, dbp_reply **out, dbp_error *err)
{
    *out = NULL;
    for (;;) {
        void *obj = NULL;
        if (redisReaderGetReply(node->reader, &obj) != REDIS_OK) {
            node->broken = c->broken = 1;
            return dbp_error_set(err, DBP_E_PROTOCOL, 0, "08P01", "bad reply from %s: %s",
                                 node->label, node->reader->errstr);
        }
        if (obj) {
            *out = obj;
            return DBP_OK;
        }
        int rc = DBP_OK;
        if (!rd_tls_pending(node) && !rd_wait_for(c, node, POLLIN, &rc, err))
            return rc;
        if ((rc = read_some(c, node, err)) != DBP_OK)
            return rc;
    }
}

int rd_send(rd_conn *c, dbp_error *err)
{
    int rc = rd_node_send(c, c->node, c->out.data, c->out.len, err);
    if (rc == DBP_OK)
        c->out.len = 0;
    return rc;
}

int rd_read_reply(rd_conn *c, dbp_reply **out, dbp_error *err)
{
    return rd_node_read(c, c->node, out, err);
}

int rd_roundtrip(rd_conn *c, size_t n, dbp_reply **out, dbp_error *err)
{
    int rc = rd_send(c, err);
    size_t got = 0;
    while (rc == DBP_OK && got < n)
        rc = rd_read_reply(c, &out[got++], err);
    if (rc != DBP_OK) {
        for (size_t i = 0; i < got; i++) {
            dbp_reply_free(out[i]);
            out[i] = NULL;
        }
    }
    return rc;
}

/* ---- connecting ------------------------------------------------------------------ */

static int try_connect(rd_conn *c, rd_node *node, const struct sockaddr *addr, socklen_t len,
                       dbp_error *err)
{
    node->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (node->fd < 0)
        return lost(c, node, "creating a socket for", errno, err);
    if (connect(node->fd, addr, len) != 0 && errno != EINPROGRESS)
        return lost(c, node, "connecting to", errno, err);
    int rc = DBP_OK;
    if (!rd_wait_for(c, node, POLLOUT, &rc, err)) {
        /* a connect that runs out of time is the endpoint's fault, not a query's */
        if (rc == DBP_E_QUERY_TIMEOUT)
            rc = dbp_error_set(err, DBP_E_TIMEOUT, 0, "08001",
                               "connecting to %s timed out", node->label);
        return rc;
    }
    int so_error = 0;
    socklen_t so_len = sizeof so_error;
    getsockopt(node->fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len);
    if (so_error)
        return lost(c, node, "connecting to", so_error, err);
    if (addr->sa_family != AF_UNIX)
        dbp_tcp_keepalive(node->fd);
    return DBP_OK;
}

int rd_connect_socket(rd_conn *c, rd_node *node, const char *host, unsigned port,
                      const char *unix_socket, dbp_error *err)
{
    if (!node->reader && !(node->reader = rd_reader_new()))
        return dbp_error_nomem(err);
    if (unix_socket) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        if (strlen(unix_socket) >= sizeof un.sun_path)
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "unix socket path too long");
        strcpy(un.sun_path, unix_socket);
        return try_connect(c, node, (const struct sockaddr *)&un, sizeof un, err);
    }
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    /* name lookup is libc's blocking one, bounded by the resolver's own timeouts */
    int gai = getaddrinfo(host, port_text, &hints, &list);
    if (gai != 0)
        return dbp_error_set(err, DBP_E_NETWORK, 0, "08001", "cannot resolve %s: %s",
                             node->label, gai_strerror(gai));
    int rc = DBP_E_NETWORK, was_broken = c->broken;
    for (struct addrinfo *a = list; a; a = a->ai_next) {
        if (node->fd >= 0)
            close(node->fd);
        node->fd = -1;
        node->broken = 0;
        rc = try_connect(c, node, a->ai_addr, a->ai_addrlen, err);
        if (rc == DBP_OK || rc == DBP_E_CANCELLED || rc == DBP_E_TIMEOUT)
            break;
    }
    freeaddrinfo(list);
    if (rc == DBP_OK && c->tls_ctx)
        rc = rd_tls_start(c, node, host, err);
    if (rc == DBP_OK)
        c->broken = was_broken; /* not the failed addresses before this one */
    return rc;
}

void rd_node_close(rd_node *node)
{
    if (node->ssl)
        rd_tls_close(node);
    if (node->fd >= 0)
        close(node->fd);
    node->fd = -1;
    if (node->reader)
        redisReaderFree(node->reader);
    node->reader = NULL;
    rd_buf_free(&node->out);
}

/* ---- RESP encoding ------------------------------------------------------------- */

int rd_buf_reserve(rd_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return DBP_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *data = dbp_realloc(b->data, cap);
    if (!data)
        return DBP_E_NOMEM;
    b->data = data;
    b->cap = cap;
    return DBP_OK;
}

/* Without snprintf: every argument of every command has a length header,
 * and write_frame formats several integers per row. */
size_t rd_format_int(char *buf, int64_t v)
{
    char digits[24];
    char *p = digits + sizeof digits;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(digits + sizeof digits - p);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return n;
}

static int put_header(rd_buf *b, char kind, size_t n)
{
    if (rd_buf_reserve(b, 32) != DBP_OK)
        return DBP_E_NOMEM;
    char *out = b->data + b->len;
    out[0] = kind;
    size_t len = 1 + rd_format_int(out + 1, (int64_t)n);
    memcpy(out + len, "\r\n", 2);
    b->len += len + 2;
    return DBP_OK;
}

int rd_cmd_begin(rd_buf *b, size_t argc) { return put_header(b, '*', argc); }

int rd_cmd_arg(rd_buf *b, const void *data, size_t len)
{
    if (put_header(b, '$', len) != DBP_OK || rd_buf_reserve(b, len + 2) != DBP_OK)
        return DBP_E_NOMEM;
    if (len)
        memcpy(b->data + b->len, data, len);
    memcpy(b->data + b->len + len, "\r\n", 2);
    b->len += len + 2;
    return DBP_OK;
}

int rd_cmd_arg_int(rd_buf *b, int64_t v)
{
    char text[24];
    return rd_cmd_arg(b, text, rd_format_int(text, v));
}

int rd_cmd(rd_buf *b, ...)
{
    va_list ap;
    size_t argc = 0;
    va_start(ap, b);
    while (va_arg(ap, const char *))
        argc++;
    va_end(ap);
    int rc = rd_cmd_begin(b, argc);
    va_start(ap, b);
    for (const char *s; rc == DBP_OK && (s = va_arg(ap, const char *));)
        rc = rd_cmd_arg(b, s, strlen(s));
    va_end(ap);
    return rc;
}

void rd_buf_free(rd_buf *b)
{
    if (b->data)
        dbp_wipe(b->data, b->cap);
    dbp_free(b->data);
    memset(b, 0, sizeof *b);
}
