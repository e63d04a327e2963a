/* redis_cluster.c - a connection to a Redis Cluster: a socket per master
 * (opened on first use, with the login), the slot table learned with
 * CLUSTER SLOTS from the first seed that answers, and routing.
 *
 * A command goes to the master of its key's slot; commands without keys
 * (PING, INFO, DBSIZE, ...) to any open master. MGET, DEL, EXISTS, UNLINK,
 * TOUCH and MSET whose keys lie in several slots are split per slot and
 * their replies merged. A batch of commands goes out as one pipeline per
 * node, all written before any is read. -MOVED refreshes the table and
 * resends, -ASK sends ASKING and the command to the importing node once,
 * -TRYAGAIN / -CLUSTERDOWN resend after a short sleep; all within
 * MAX_ROUNDS and the call's deadline. A transaction (MULTI/EXEC) must keep
 * to one slot, checked before anything is sent. */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "redis_internal.h"

#define MAX_ROUNDS 6
#define MAX_NODES 64

struct rd_cluster {
    rd_node *nodes[MAX_NODES]; /* seeds and masters, in the order first met */
    size_t n_nodes;
    int16_t slots[RD_SLOTS]; /* node index, -1 unknown */
    long any;                /* where commands without keys go; -1: to be chosen */
    size_t n_seeds;
    size_t *seeds; /* node indexes of the configured seeds */
};

/* ---- key slots --------------------------------------------------------------------- */

static uint16_t crc16(const char *s, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)s[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned rd_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) { /* a non-empty {tag}: only it is hashed */
        const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (RD_SLOTS - 1);
    }
    return crc16(key, len) & (RD_SLOTS - 1);
}

static const char *const keyless[] = {
    "PING", "ECHO", "INFO", "DBSIZE", "TIME", "CONFIG", "CLIENT", "CLUSTER", "COMMAND",
    "FLUSHDB", "FLUSHALL", "KEYS", "SCAN", "RANDOMKEY", "LASTSAVE", "SAVE", "BGSAVE",
    "BGREWRITEAOF", "SCRIPT", "FUNCTION", "SLOWLOG", "ACL", "LATENCY", "MODULE", "ROLE",
    "DEBUG", "WAIT", "PUBLISH", "PUBSUB", "SWAPDB", "READONLY", "READWRITE", "QUIT", "HELLO",
    "AUTH", "SELECT", "LOLWUT", "MULTI", "EXEC", "DISCARD", "UNWATCH", "RESET", "ASKING",
    "SHUTDOWN", "REPLICAOF", "SLAVEOF", "FAILOVER", "MEMORY DOCTOR", NULL};

static int is(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(name, word, len) == 0;
}

int rd_keyless(const char *name, size_t len)
{
    for (int i = 0; keyless[i]; i++)
        if (is(name, len, keyless[i]))
            return 1;
    return 0;
}

/* ---- nodes ------------------------------------------------------------------------- */

static size_t node_index(rd_cluster *cl, const char *host, size_t host_len, unsigned port,
                         int *rc, dbp_error *err)
{
    for (size_t i = 0; i < cl->n_nodes; i++)
        if (cl->nodes[i]->port == port && strlen(cl->nodes[i]->host) == host_len &&
            memcmp(cl->nodes[i]->host, host, host_len) == 0)
            return i;
    if (cl->n_nodes == MAX_NODES) {
        *rc = dbp_error_set(err, DBP_E_UNAVAILABLE, 0, NULL,
                            "a redis cluster of more than %d nodes is not served", MAX_NODES);
        return 0;
    }
    rd_node *n = dbp_calloc(1, sizeof *n);
    if (!n || !(n->host = dbp_strndup(host, host_len))) {
        dbp_free(n);
        *rc = dbp_error_nomem(err);
        return 0;
    }
    n->fd = -1;
    n->port = port;
    snprintf(n->label, sizeof n->label, "%s:%u", n->host, port);
    cl->nodes[cl->n_nodes] = n;
    return cl->n_nodes++;
}

/* Connects to node i and logs in (AUTH, CLIENT SETNAME; a cluster has no
 * SELECT), unless it is open. A node that cannot be reached leaves the
 * connection usable: its other sockets are in step. */
static int node_open(rd_conn *c, size_t i, dbp_error *err)
{
    rd_node *n = c->cluster->nodes[i];
    if (n->fd >= 0)
        return n->broken ? dbp_error_set(err, DBP_E_NETWORK, 0, "08006",
                                         "the connection to %s is broken", n->label)
                         : DBP_OK;
    int was_broken = c->broken;
    int rc = rd_connect_socket(c, n, n->host, n->port, NULL, err);
    size_t want = c->login_n + 1;
    rd_buf b = {0};
    if (rc == DBP_OK && rd_buf_reserve(&b, c->login.len + 16) != DBP_OK)
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK && c->login.len) {
        memcpy(b.data, c->login.data, c->login.len);
        b.len = c->login.len;
    }
    if (rc == DBP_OK && rd_cmd(&b, "PING", (char *)NULL) != DBP_OK)
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK)
        rc = rd_node_send(c, n, b.data, b.len, err);
    rd_buf_free(&b); /* wiped: it held the password */
    for (size_t k = 0; k < want && rc == DBP_OK; k++) {
        dbp_reply *r = NULL;
        rc = rd_node_read(c, n, &r, err);
        if (rc == DBP_OK && r->type == DBP_REPLY_ERROR)
            rc = rd_reply_error(r, "login", err);
        dbp_reply_free(r);
    }
    if (rc != DBP_OK && rc != DBP_E_CANCELLED && rc != DBP_E_QUERY_TIMEOUT) {
        if (n->fd >= 0)
            close(n->fd);
        n->fd = -1;
        n->broken = 0;
        c->broken = was_broken;
        if (n->reader) { /* a fresh parser for the next try */
            redisReaderFree(n->reader);
            n->reader = NULL;
        }
    }
    return rc;
}

size_t rd_cluster_open_nodes(rd_conn *c, rd_node **out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; c->cluster && i < c->cluster->n_nodes && k < max; i++)
        if (c->cluster->nodes[i]->fd >= 0)
            out[k++] = c->cluster->nodes[i];
    return k;
}

/* ---- the slot table ------------------------------------------------------------------ */

static int int_of(const dbp_reply *r, long long *v)
{
    if (r->type == DBP_REPLY_INTEGER) {
        *v = r->integer;
        return 1;
    }
    return 0;
}

/* CLUSTER SLOTS: [[start, end, [ip, port, id, ...], replicas...], ...]; an
 * empty ip is the node that answered. */
static int take_slots(rd_conn *c, size_t asked, const dbp_reply *r, dbp_error *err)
{
    rd_cluster *cl = c->cluster;
    if (r->type == DBP_REPLY_ERROR)
        return rd_reply_error(r, "CLUSTER SLOTS", err);
    if (r->type != DBP_REPLY_ARRAY)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "unexpected CLUSTER SLOTS reply");
    int16_t slots[RD_SLOTS];
    memset(slots, 0xff, sizeof slots);
    int rc = DBP_OK;
    for (size_t i = 0; i < r->n && rc == DBP_OK; i++) {
        const dbp_reply *e = r->element[i];
        long long start, end, port;
        if (e->type != DBP_REPLY_ARRAY || e->n < 3 || !int_of(e->element[0], &start) ||
            !int_of(e->element[1], &end) || e->element[2]->type != DBP_REPLY_ARRAY ||
            e->element[2]->n < 2 || e->element[2]->element[0]->type != DBP_REPLY_STRING ||
            !int_of(e->element[2]->element[1], &port) || start < 0 || end >= RD_SLOTS ||
            start > end || port < 1 || port > 65535)
            return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                 "unexpected CLUSTER SLOTS entry from %s",
                                 cl->nodes[asked]->label);
        const dbp_reply *ip = e->element[2]->element[0];
        const char *host = ip->len && strcmp(ip->str, "?") ? ip->str : cl->nodes[asked]->host;
        size_t node = node_index(cl, host, strlen(host), (unsigned)port, &rc, err);
        for (long long s = start; s <= end && rc == DBP_OK; s++)
            slots[s] = (int16_t)node;
    }
    if (rc == DBP_OK)
        memcpy(cl->slots, slots, sizeof slots);
    cl->any = -1;
    return rc;
}

/* CLUSTER SLOTS of node i (opened if need be). */
static int slots_from(rd_conn *c, size_t i, dbp_error *err)
{
    rd_node *n = c->cluster->nodes[i];
    rd_buf b = {0};
    int rc = node_open(c, i, err);
    if (rc == DBP_OK && rd_cmd(&b, "CLUSTER", "SLOTS", (char *)NULL) != DBP_OK)
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK)
        rc = rd_node_send(c, n, b.data, b.len, err);
    rd_buf_free(&b);
    dbp_reply *r = NULL;
    if (rc == DBP_OK && (rc = rd_node_read(c, n, &r, err)) == DBP_OK)
        rc = take_slots(c, i, r, err);
    dbp_reply_free(r);
    return rc;
}

/* The slot table again: from node `first` when given (a MOVED's target
 * knows the news), else the open nodes, the others, the seeds. */
static int refresh(rd_conn *c, long first, dbp_error *err)
{
    rd_cluster *cl = c->cluster;
    if (first >= 0 && slots_from(c, (size_t)first, err) == DBP_OK)
        return DBP_OK;
    int tried = first >= 0, rc = DBP_OK;
    /* each try is bounded by the deadline (connect and reads); a socket
     * that broke ends the call */
    for (int pass = 0; pass < 2 && !c->broken; pass++)
        for (size_t i = 0; i < cl->n_nodes && !c->broken; i++) {
            if ((long)i == first || (cl->nodes[i]->fd >= 0) != (pass == 0))
                continue;
            tried = 1;
            if ((rc = slots_from(c, i, err)) == DBP_OK ||
                rc == DBP_E_CANCELLED || rc == DBP_E_QUERY_TIMEOUT)
                return rc;
        }
    if (!tried)
        return dbp_error_set(err, DBP_E_UNAVAILABLE, 0, NULL,
                             "no redis cluster node to ask for the slot table");
    return rc == DBP_OK ? DBP_E_NETWORK : rc;
}

int rd_cluster_connect(rd_conn *c, const rd_config *cfg, dbp_error *err)
{
    rd_cluster *cl = dbp_calloc(1, sizeof *cl);
    if (!cl)
        return dbp_error_nomem(err);
    c->cluster = cl;
    memset(cl->slots, 0xff, sizeof cl->slots);
    cl->any = -1;
    int rc = (cl->seeds = dbp_calloc(cfg->n_seeds, sizeof *cl->seeds)) ? DBP_OK
                                                                        : dbp_error_nomem(err);
    for (size_t i = 0; i < cfg->n_seeds && rc == DBP_OK; i++)
        cl->seeds[cl->n_seeds++] =
            node_index(cl, cfg->seed_hosts[i], strlen(cfg->seed_hosts[i]), cfg->seed_ports[i],
                       &rc, err);
    if (rc == DBP_OK) {
        rc = DBP_E_NETWORK;
        for (size_t i = 0; i < cl->n_seeds && rc != DBP_OK; i++) {
            rc = slots_from(c, cl->seeds[i], err);
            if (rc == DBP_E_CANCELLED || rc == DBP_E_TIMEOUT || rc == DBP_E_QUERY_TIMEOUT ||
                rc == DBP_E_AUTH)
                break;
        }
    }
    if (rc == DBP_OK)
        rd_cluster_open_nodes(c, &c->node, 1);
    return rc;
}

void rd_cluster_free(rd_conn *c)
{
    rd_cluster *cl = c->cluster;
    if (!cl)
        return;
    for (size_t i = 0; i < cl->n_nodes; i++) {
        rd_node_close(cl->nodes[i]);
        dbp_free(cl->nodes[i]->host);
        dbp_free(cl->nodes[i]);
    }
    dbp_free(cl->seeds);
    dbp_free(cl);
    c->cluster = NULL;
    c->node = &c->single;
}

int rd_cluster_masters(rd_conn *c, size_t **out, size_t *n, dbp_error *err)
{
    rd_cluster *cl = c->cluster;
    char used[MAX_NODES] = {0};
    for (size_t s = 0; s < RD_SLOTS; s++)
        if (cl->slots[s] >= 0)
            used[cl->slots[s]] = 1;
    *n = 0;
    if (!(*out = dbp_calloc(MAX_NODES, sizeof **out)))
        return dbp_error_nomem(err);
    for (size_t i = 0; i < cl->n_nodes; i++)
        if (used[i])
            (*out)[(*n)++] = i;
    return DBP_OK;
}

/* The "myself" line of CLUSTER NODES lists the node's own migrations as
 * [slot->-id] and [slot-<-id]. */
static int migrations_of(const dbp_reply *r, rd_buf *summary)
{
    if (r->type != DBP_REPLY_STRING)
        return 0;
    int found = 0;
    for (const char *line = r->str; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char copy[len + 1];
        memcpy(copy, line, len);
        copy[len] = '\0';
        if (strstr(copy, "myself"))
            for (char *p = strchr(copy, '['); p; p = strchr(p + 1, '[')) {
                char *close = strchr(p, ']');
                if (!close)
                    break;
                found = 1;
                rd_cmd_arg(summary, p, (size_t)(close - p + 1));
            }
        line = end ? end + 1 : NULL;
    }
    return found;
}

int rd_cluster_topology(rd_conn *c, char **out, int *migrating, dbp_error *err)
{
    rd_cluster *cl = c->cluster;
    *out = NULL;
    *migrating = 0;
    int rc = refresh(c, -1, err);
    rd_buf summary = {0};
    for (size_t s = 0; s < RD_SLOTS && rc == DBP_OK; s++)
        if (s == 0 || cl->slots[s] != cl->slots[s - 1])
            rd_cmd_arg_int(&summary, (int64_t)s * 1000 + cl->slots[s]);
    size_t *masters = NULL, n = 0;
    if (rc == DBP_OK)
        rc = rd_cluster_masters(c, &masters, &n, err);
    for (size_t k = 0; k < n && rc == DBP_OK; k++) {
        rd_node *node = cl->nodes[masters[k]];
        rd_buf b = {0};
        dbp_reply *r = NULL;
        rc = node_open(c, masters[k], err);
        if (rc == DBP_OK && rd_cmd(&b, "CLUSTER", "NODES", (char *)NULL) != DBP_OK)
            rc = dbp_error_nomem(err);
        if (rc == DBP_OK)
            rc = rd_node_send(c, node, b.data, b.len, err);
        if (rc == DBP_OK)
            rc = rd_node_read(c, node, &r, err);
        if (rc == DBP_OK && r->type == DBP_REPLY_ERROR)
            rc = rd_reply_error(r, "CLUSTER NODES", err);
        if (rc == DBP_OK && migrations_of(r, &summary))
            *migrating = 1;
        dbp_reply_free(r);
        rd_buf_free(&b);
    }
    dbp_free(masters);
    if (rc == DBP_OK && rd_buf_reserve(&summary, 1) == DBP_OK) {
        summary.data[summary.len] = '\0';
        *out = summary.data;
        return DBP_OK;
    }
    rd_buf_free(&summary);
    return rc == DBP_OK ? dbp_error_nomem(err) : rc;
}

/* ---- batches ------------------------------------------------------------------------- */

int rd_batch_mark(rd_batch *b, int target, dbp_error *err)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        size_t *off = dbp_realloc(b->off, cap * sizeof *off);
        if (off)
            b->off = off;
        int *t = off ? dbp_realloc(b->target, cap * sizeof *t) : NULL;
        if (t)
            b->target = t;
        dbp_reply **r = t ? dbp_realloc(b->replies, cap * sizeof *r) : NULL;
        if (!r)
            return dbp_error_nomem(err);
        b->replies = r;
        b->cap = cap;
    }
    b->off[b->n] = b->src->len;
    b->target[b->n] = target;
    b->replies[b->n++] = NULL;
    return DBP_OK;
}

void rd_batch_clear(rd_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        dbp_reply_free(b->replies[i]);
    b->n = 0;
}

void rd_batch_free(rd_batch *b)
{
    rd_batch_clear(b);
    dbp_free(b->off);
    dbp_free(b->target);
    dbp_free(b->replies);
    memset(b, 0, sizeof *b);
}

typedef enum redirect { RD_DONE, RD_MOVED, RD_ASK, RD_WAIT } redirect;

/* What an error reply asks for; MOVED / ASK name the node in *node. */
static redirect redirect_of(rd_conn *c, const dbp_reply *r, size_t from, long *node, int *rc,
                            dbp_error *err)
{
    if (r->type != DBP_REPLY_ERROR)
        return RD_DONE;
    if ((r->len >= 8 && memcmp(r->str, "TRYAGAIN", 8) == 0) ||
        (r->len >= 11 && memcmp(r->str, "CLUSTERDOWN", 11) == 0))
        return RD_WAIT;
    int moved = r->len > 6 && memcmp(r->str, "MOVED ", 6) == 0;
    int ask = r->len > 4 && memcmp(r->str, "ASK ", 4) == 0;
    if (!moved && !ask)
        return RD_DONE;
    /* "MOVED 3999 127.0.0.1:6381": the port follows the last colon */
    const char *addr = strchr(r->str + (moved ? 6 : 4), ' ');
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!colon || port < 1 || port > 65535)
        return RD_DONE;
    const char *host = addr + 1;
    size_t host_len = (size_t)(colon - host);
    if (host_len == 0) { /* the node does not know its address: the one we asked */
        host = c->cluster->nodes[from]->host;
        host_len = strlen(host);
    }
    *node = (long)node_index(c->cluster, host, host_len, (unsigned)port, rc, err);
    return *rc == DBP_OK ? (moved ? RD_MOVED : RD_ASK) : RD_DONE;
}

/* Sleeps `ms` (less when the deadline comes first; interrupt() ends it);
 * 0 when no time is left for another try. */
static int nap(rd_conn *c, int ms)
{
    int64_t left = (c->ctx->deadline_ns - dbp_now_ns()) / 1000000;
    if (left <= ms || atomic_load(c->ctx->cancelled))
        return 0;
    struct pollfd p = {.fd = c->wake_fd, .events = POLLIN};
    poll(&p, c->wake_fd >= 0 ? 1 : 0, ms);
    return !atomic_load(c->ctx->cancelled);
}

/* The node a command goes to this round (-1: none known). */
static long route(rd_conn *c, int target, long ask)
{
    rd_cluster *cl = c->cluster;
    if (ask >= 0)
        return ask;
    if (target >= 0)
        return cl->slots[target];
    if (target == RD_ANY_NODE && cl->any < 0) { /* an open master, else slot 0's */
        char master[MAX_NODES] = {0};
        for (size_t s = 0; s < RD_SLOTS; s++)
            if (cl->slots[s] >= 0)
                master[cl->slots[s]] = 1;
        cl->any = cl->slots[0];
        for (size_t i = 0; i < cl->n_nodes; i++)
            if (master[i] && cl->nodes[i]->fd >= 0 && !cl->nodes[i]->broken) {
                cl->any = (long)i;
                break;
            }
    }
    if (target == RD_ANY_NODE)
        return cl->any;
    return -2 - target;
}

/* One round: the pending commands to their nodes, every node's pipeline
 * written before any reply is read. */
static int send_round(rd_conn *c, rd_batch *b, const char *pending, const long *ask,
                      long *node_of, dbp_error *err)
{
    rd_cluster *cl = c->cluster;
    int rc = DBP_OK;
    for (size_t i = 0; i < b->n && rc == DBP_OK; i++) {
        if (!pending[i])
            continue;
        node_of[i] = route(c, b->target[i], ask[i]);
        if (node_of[i] < 0 && (rc = refresh(c, -1, err)) == DBP_OK)
            node_of[i] = route(c, b->target[i], ask[i]);
        if (rc == DBP_OK && (node_of[i] < 0 || (size_t)node_of[i] >= cl->n_nodes))
            rc = dbp_error_set(err, DBP_E_UNAVAILABLE, 0, NULL,
                               "no cluster node serves slot %d", b->target[i]);
        if (rc == DBP_OK)
            rc = node_open(c, (size_t)node_of[i], err);
        rd_buf *out = rc == DBP_OK ? &cl->nodes[node_of[i]]->out : NULL;
        size_t end = i + 1 < b->n ? b->off[i + 1] : b->src->len, len = end - b->off[i];
        if (rc == DBP_OK && ((ask[i] >= 0 && rd_cmd(out, "ASKING", (char *)NULL) != DBP_OK) ||
                             rd_buf_reserve(out, len) != DBP_OK))
            rc = dbp_error_nomem(err);
        if (rc == DBP_OK) {
            memcpy(out->data + out->len, b->src->data + b->off[i], len);
            out->len += len;
        }
    }
    for (size_t k = 0; k < cl->n_nodes && rc == DBP_OK; k++) {
        rd_node *node = cl->nodes[k];
        if (node->out.len)
            rc = rd_node_send(c, node, node->out.data, node->out.len, err);
        node->out.len = 0;
    }
    for (size_t k = 0; k < cl->n_nodes; k++)
        cl->nodes[k]->out.len = 0;
    return rc;
}

int rd_batch_run(rd_conn *c, rd_batch *b, dbp_error *err)
{
    rd_cluster *cl = c->cluster;
    char *pending = dbp_calloc(b->n + 1, 1);
    long *ask = dbp_calloc(b->n + 1, sizeof *ask), *node_of = dbp_calloc(b->n + 1, sizeof *node_of);
    int rc = pending && ask && node_of ? DBP_OK : dbp_error_nomem(err);
    size_t left = b->n;
    for (size_t i = 0; i < b->n && rc == DBP_OK; i++)
        pending[i] = 1, ask[i] = -1;
    for (int round = 0; rc == DBP_OK && left > 0 && round < MAX_ROUNDS; round++) {
        rc = send_round(c, b, pending, ask, node_of, err);
        long moved_to = -1;
        int wait = 0;
        left = 0;
        for (size_t k = 0; k < cl->n_nodes && rc == DBP_OK; k++)
            for (size_t i = 0; i < b->n && rc == DBP_OK; i++) {
                if (!pending[i] || node_of[i] != (long)k)
                    continue;
                dbp_reply *r = NULL;
                if (ask[i] >= 0 && (rc = rd_node_read(c, cl->nodes[k], &r, err)) == DBP_OK)
                    dbp_reply_free(r); /* ASKING's OK */
                if (rc != DBP_OK || (rc = rd_node_read(c, cl->nodes[k], &r, err)) != DBP_OK)
                    break;
                dbp_reply_free(b->replies[i]);
                b->replies[i] = r;
                long to = -1;
                redirect what = b->target[i] >= 0 ? redirect_of(c, r, k, &to, &rc, err)
                                                  : RD_DONE;
                pending[i] = what != RD_DONE;
                left += pending[i];
                ask[i] = what == RD_ASK ? to : -1;
                if (what == RD_MOVED) {
                    moved_to = to;
                    cl->slots[b->target[i]] = (int16_t)to;
                    cl->any = -1;
                }
                wait |= what == RD_WAIT;
            }
        if (rc == DBP_OK && moved_to >= 0 && left > 0) {
            /* the whole table again, then each MOVED over it: a node that
             * answers may not know the news yet */
            int16_t seen[RD_SLOTS];
            memcpy(seen, cl->slots, sizeof seen);
            if (refresh(c, moved_to, err) == DBP_OK) {
                for (size_t i = 0; i < b->n; i++)
                    if (pending[i] && ask[i] < 0 && b->target[i] >= 0 &&
                        seen[b->target[i]] != cl->slots[b->target[i]])
                        cl->slots[b->target[i]] = seen[b->target[i]];
            } else if (c->broken) {
                rc = DBP_E_NETWORK;
            }
        }
        if (rc == DBP_OK && wait && left > 0 && !nap(c, 10 << round))
            break; /* the deadline came: the last error replies answer */
    }
    dbp_free(pending);
    dbp_free(ask);
    dbp_free(node_of);
    return rc; /* a command still redirected after MAX_ROUNDS keeps that error reply */
}

/* ---- one exchange, for transactions ---------------------------------------------- */

int rd_cluster_exchange(rd_conn *c, int target, const rd_buf *cmds, size_t n, dbp_reply **out,
                        dbp_error *err)
{
    long k = route(c, target, -1);
    int rc = k < 0 ? refresh(c, -1, err) : DBP_OK;
    if (rc == DBP_OK && k < 0 && (k = route(c, target, -1)) < 0)
        rc = dbp_error_set(err, DBP_E_UNAVAILABLE, 0, NULL, "no cluster node serves slot %d",
                           target);
    if (rc == DBP_OK)
        rc = node_open(c, (size_t)k, err);
    if (rc == DBP_OK)
        rc = rd_node_send(c, c->cluster->nodes[k], cmds->data, cmds->len, err);
    size_t got = 0;
    while (rc == DBP_OK && got < n)
        rc = rd_node_read(c, c->cluster->nodes[k], &out[got++], err);
    for (size_t i = 0; rc != DBP_OK && i < got; i++) {
        dbp_reply_free(out[i]);
        out[i] = NULL;
    }
    c->node = rc == DBP_OK ? c->cluster->nodes[k] : c->node;
    return rc;
}

int rd_cluster_follow(rd_conn *c, const dbp_reply *r, int target, int round, int *retry,
                      dbp_error *err)
{
    long to = -1;
    int rc = DBP_OK;
    long from = route(c, target, -1);
    redirect what = target >= 0 && from >= 0 ? redirect_of(c, r, (size_t)from, &to, &rc, err)
                                             : RD_DONE;
    *retry = what != RD_DONE;
    if (what == RD_MOVED) {
        if (refresh(c, to, err) != DBP_OK && c->broken)
            return DBP_E_NETWORK;
        c->cluster->slots[target] = (int16_t)to;
        c->cluster->any = -1;
    } else if (what != RD_DONE) { /* ASK inside MULTI cannot be followed: wait for the move */
        *retry = nap(c, 10 << round);
    }
    return rc;
}
