/* redis_route.c - DBP_OP_COMMAND on a Redis Cluster: each command to the
 * master of its key's slot (redis_cluster.c sends them), the replies back
 * in command order.
 *
 * The key is the first argument after the name, except: commands without
 * keys (rd_keyless) go to any master; OBJECT / MEMORY / XINFO name it
 * after a subcommand; EVAL / EVALSHA / FCALL after the key count; XREAD /
 * XREADGROUP after STREAMS. MGET, DEL, EXISTS, UNLINK, TOUCH and MSET with
 * keys in several slots become one command per slot: MGET's values come
 * back in the order asked, DEL / EXISTS / UNLINK / TOUCH's counts are
 * summed, MSET answers OK. A transaction must keep to one slot: it is
 * refused before anything is sent otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "redis_internal.h"

#define TX_ROUNDS 6

typedef struct cmd {
    size_t first; /* index of the name in the parameters */
    size_t argc;
    size_t step;  /* split commands: 1 (MGET, DEL, ...) or 2 (MSET); else 0 */
    size_t n_subs;
} cmd;

/* One command sent: a whole command, or the keys of one slot of a split one. */
typedef struct sub {
    size_t cmd;
    size_t *keys; /* split: the ordinals of its keys in the command */
    size_t n_keys;
} sub;

typedef struct router {
    rd_conn *c;
    const dbp_params *p;
    cmd *cmds;
    size_t n_cmds;
    sub *subs;
    size_t n_subs;
} router;

static int arg(const router *rt, size_t i, char *buf, const char **data, size_t *len,
               dbp_error *err)
{
    return rd_arg_bytes(rt->p, dbp_params_get(rt->p, 0, i), buf, 48, data, len, err);
}

static int name_is(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(name, word, len) == 0;
}

/* The index (in the parameters) of the command's key, or 0 when it has none. */
static int key_of(const router *rt, const cmd *k, size_t *at, dbp_error *err)
{
    char buf[48], nbuf[48];
    const char *name, *a;
    size_t len, alen;
    int rc = arg(rt, k->first, nbuf, &name, &len, err);
    *at = 0;
    if (rc != DBP_OK || rd_keyless(name, len) || k->argc < 2)
        return rc;
    if (name_is(name, len, "OBJECT") || name_is(name, len, "MEMORY") ||
        name_is(name, len, "XINFO")) {
        *at = k->argc > 2 ? k->first + 2 : 0;
    } else if (name_is(name, len, "EVAL") || name_is(name, len, "EVALSHA") ||
               name_is(name, len, "EVAL_RO") || name_is(name, len, "EVALSHA_RO") ||
               name_is(name, len, "FCALL") || name_is(name, len, "FCALL_RO")) {
        char count[24] = {0};
        if (k->argc > 3 && (rc = arg(rt, k->first + 2, buf, &a, &alen, err)) == DBP_OK &&
            alen < sizeof count && (memcpy(count, a, alen), strtol(count, NULL, 10) > 0))
            *at = k->first + 3;
    } else if (name_is(name, len, "XREAD") || name_is(name, len, "XREADGROUP")) {
        for (size_t i = 1; i + 1 < k->argc && rc == DBP_OK && !*at; i++)
            if ((rc = arg(rt, k->first + i, buf, &a, &alen, err)) == DBP_OK &&
                name_is(a, alen, "STREAMS"))
                *at = k->first + i + 1;
    } else {
        *at = k->first + 1;
    }
    return rc;
}

static int slot_at(const router *rt, size_t i, int *slot, dbp_error *err)
{
    char buf[48];
    const char *key;
    size_t len;
    int rc = arg(rt, i, buf, &key, &len, err);
    *slot = rc == DBP_OK ? (int)rd_keyslot(key, len) : 0;
    return rc;
}

/* The commands of the parameters (already checked by encode_commands). */
static int parse(router *rt, dbp_error *err)
{
    size_t total = dbp_params_width(rt->p) * dbp_params_rows(rt->p);
    rt->cmds = dbp_calloc(total, sizeof *rt->cmds);
    if (!rt->cmds)
        return dbp_error_nomem(err);
    for (size_t i = 0; i < total;) {
        cmd *k = &rt->cmds[rt->n_cmds++];
        k->argc = (size_t)dbp_params_get(rt->p, 0, i)->i;
        k->first = i + 1;
        i += 1 + k->argc;
        char buf[48];
        const char *name;
        size_t len;
        int rc = arg(rt, k->first, buf, &name, &len, err);
        if (rc != DBP_OK)
            return rc;
        k->step = name_is(name, len, "MSET") ? 2
                  : name_is(name, len, "MGET") || name_is(name, len, "DEL") ||
                          name_is(name, len, "EXISTS") || name_is(name, len, "UNLINK") ||
                          name_is(name, len, "TOUCH")
                      ? 1
                      : 0;
        if (k->step && (k->argc < 2 || (k->argc - 1) % k->step))
            k->step = 0; /* malformed: the server's error says why */
    }
    return DBP_OK;
}

static int encode_args(router *rt, const size_t *idx, size_t n, dbp_error *err)
{
    rd_buf *b = &rt->c->out;
    int rc = rd_cmd_begin(b, n) == DBP_OK ? DBP_OK : dbp_error_nomem(err);
    for (size_t i = 0; i < n && rc == DBP_OK; i++)
        rc = rd_put_value(b, rt->p, dbp_params_get(rt->p, 0, idx[i]), err);
    return rc;
}

static int add_sub(router *rt, rd_batch *b, size_t cmd_i, int target, size_t *keys,
                   size_t n_keys, dbp_error *err)
{
    sub *grown = dbp_realloc(rt->subs, (rt->n_subs + 1) * sizeof *grown);
    if (!grown)
        return dbp_error_nomem(err);
    rt->subs = grown;
    int rc = rd_batch_mark(b, target, err);
    if (rc == DBP_OK) { /* from here the sub owns `keys` */
        rt->subs[rt->n_subs++] = (sub){.cmd = cmd_i, .keys = keys, .n_keys = n_keys};
        rt->cmds[cmd_i].n_subs++;
    }
    return rc;
}

/* A split command: one command per slot of its keys, in order of first use. */
static int split(router *rt, rd_batch *b, size_t cmd_i, dbp_error *err)
{
    cmd *k = &rt->cmds[cmd_i];
    size_t n_keys = (k->argc - 1) / k->step;
    int *slots = dbp_calloc(n_keys, sizeof *slots);
    char *done = dbp_calloc(n_keys, 1);
    size_t *idx = dbp_calloc(k->argc, sizeof *idx);
    int rc = slots && done && idx ? DBP_OK : dbp_error_nomem(err);
    for (size_t j = 0; j < n_keys && rc == DBP_OK; j++)
        rc = slot_at(rt, k->first + 1 + j * k->step, &slots[j], err);
    for (size_t j = 0; j < n_keys && rc == DBP_OK; j++) {
        if (done[j])
            continue;
        size_t *keys = dbp_calloc(n_keys, sizeof *keys), n = 0, argc = 1;
        if (!keys) {
            rc = dbp_error_nomem(err);
            break;
        }
        idx[0] = k->first;
        for (size_t m = j; m < n_keys; m++)
            if (!done[m] && slots[m] == slots[j]) {
                done[m] = 1;
                keys[n++] = m;
                for (size_t s = 0; s < k->step; s++)
                    idx[argc++] = k->first + 1 + m * k->step + s;
            }
        rc = add_sub(rt, b, cmd_i, slots[j], keys, n, err);
        if (rc != DBP_OK)
            dbp_free(keys);
        else
            rc = encode_args(rt, idx, argc, err);
    }
    dbp_free(slots);
    dbp_free(done);
    dbp_free(idx);
    return rc;
}

static dbp_reply *new_reply(int type)
{
    dbp_reply *r = dbp_calloc(1, sizeof *r);
    if (r)
        r->type = type;
    return r;
}

/* The reply of split command cmd_i from its subs' replies (taken from b). */
static dbp_reply *merge(router *rt, rd_batch *b, size_t cmd_i, size_t first_sub)
{
    cmd *k = &rt->cmds[cmd_i];
    for (size_t j = first_sub; j < first_sub + k->n_subs; j++)
        if (b->replies[j]->type == DBP_REPLY_ERROR) { /* the first error answers */
            dbp_reply *e = b->replies[j];
            b->replies[j] = NULL;
            return e;
        }
    char name[48];
    const char *nm;
    size_t len;
    dbp_error ignored = {0};
    if (arg(rt, k->first, name, &nm, &len, &ignored) != DBP_OK)
        return NULL;
    if (name_is(nm, len, "MSET")) {
        dbp_reply *r = new_reply(DBP_REPLY_STATUS);
        if (r && !(r->str = dbp_strdup("OK"))) {
            dbp_free(r);
            return NULL;
        }
        if (r)
            r->len = 2;
        return r;
    }
    if (!name_is(nm, len, "MGET")) { /* counts */
        dbp_reply *r = new_reply(DBP_REPLY_INTEGER);
        for (size_t j = first_sub; r && j < first_sub + k->n_subs; j++)
            r->integer += b->replies[j]->type == DBP_REPLY_INTEGER ? b->replies[j]->integer : 0;
        return r;
    }
    size_t n_keys = k->argc - 1;
    dbp_reply *r = new_reply(DBP_REPLY_ARRAY);
    if (!r || !(r->element = dbp_calloc(n_keys, sizeof *r->element))) {
        dbp_free(r);
        return NULL;
    }
    r->n = n_keys;
    for (size_t j = first_sub; j < first_sub + k->n_subs; j++) {
        dbp_reply *part = b->replies[j];
        for (size_t m = 0; m < rt->subs[j].n_keys && part->type == DBP_REPLY_ARRAY &&
                           m < part->n;
             m++) {
            r->element[rt->subs[j].keys[m]] = part->element[m];
            part->element[m] = NULL;
        }
    }
    for (size_t m = 0; m < n_keys; m++)
        if (!r->element[m] && !(r->element[m] = new_reply(DBP_REPLY_NIL))) {
            dbp_reply_free(r);
            return NULL;
        }
    return r;
}

static int run_pipeline(router *rt, dbp_reply **out, dbp_error *err)
{
    rd_conn *c = rt->c;
    rd_batch b = {.src = &c->out};
    int rc = DBP_OK;
    for (size_t i = 0; i < rt->n_cmds && rc == DBP_OK; i++) {
        cmd *k = &rt->cmds[i];
        if (k->step) {
            rc = split(rt, &b, i, err);
            continue;
        }
        size_t at = 0;
        int slot = RD_ANY_NODE;
        rc = key_of(rt, k, &at, err);
        if (rc == DBP_OK && at)
            rc = slot_at(rt, at, &slot, err);
        if (rc == DBP_OK)
            rc = add_sub(rt, &b, i, slot, NULL, 0, err);
        size_t *idx = rc == DBP_OK ? dbp_calloc(k->argc, sizeof *idx) : NULL;
        if (rc == DBP_OK && !idx)
            rc = dbp_error_nomem(err);
        for (size_t a = 0; idx && a < k->argc; a++)
            idx[a] = k->first + a;
        if (rc == DBP_OK)
            rc = encode_args(rt, idx, k->argc, err);
        dbp_free(idx);
    }
    if (rc == DBP_OK)
        rc = rd_batch_run(c, &b, err);
    dbp_reply **replies = rc == DBP_OK ? dbp_calloc(rt->n_cmds, sizeof *replies) : NULL;
    if (rc == DBP_OK && !replies)
        rc = dbp_error_nomem(err);
    for (size_t i = 0, j = 0; i < rt->n_cmds && rc == DBP_OK; j += rt->cmds[i++].n_subs) {
        if (rt->cmds[i].step) {
            replies[i] = merge(rt, &b, i, j);
        } else {
            replies[i] = b.replies[j];
            b.replies[j] = NULL;
        }
        if (!replies[i])
            rc = dbp_error_nomem(err);
    }
    if (rc == DBP_OK && !(*out = new_reply(DBP_REPLY_ARRAY)))
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK) {
        (*out)->element = replies;
        (*out)->n = rt->n_cmds;
    } else {
        for (size_t i = 0; replies && i < rt->n_cmds; i++)
            dbp_reply_free(replies[i]);
        dbp_free(replies);
    }
    rd_batch_free(&b);
    c->out.len = 0;
    return rc;
}

/* MULTI, the commands, EXEC, to the node of their one slot. */
static int run_transaction(router *rt, dbp_reply **out, dbp_error *err)
{
    rd_conn *c = rt->c;
    int slot = RD_ANY_NODE, rc = DBP_OK;
    for (size_t i = 0; i < rt->n_cmds && rc == DBP_OK; i++) {
        cmd *k = &rt->cmds[i];
        size_t at = 0;
        rc = key_of(rt, k, &at, err);
        size_t n_keys = k->step ? (k->argc - 1) / k->step : at != 0;
        for (size_t j = 0; j < n_keys && rc == DBP_OK; j++) {
            int s = 0;
            rc = slot_at(rt, k->step ? k->first + 1 + j * k->step : at, &s, err);
            if (rc == DBP_OK && slot != RD_ANY_NODE && s != slot)
                rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                   "CROSSSLOT: the keys of a cluster transaction must all hash "
                                   "to one slot (command %zu goes to slot %d, an earlier one to "
                                   "%d); give them a common {hash tag}. Nothing was sent",
                                   i + 1, s, slot);
            slot = s;
        }
    }
    size_t all = 0;
    for (size_t i = 0; i < rt->n_cmds; i++)
        all += rt->cmds[i].argc;
    size_t *idx = rc == DBP_OK ? dbp_calloc(all + 1, sizeof *idx) : NULL;
    if (rc == DBP_OK && !idx)
        rc = dbp_error_nomem(err);
    c->out.len = 0;
    if (rc == DBP_OK && rd_cmd(&c->out, "MULTI", (char *)NULL) != DBP_OK)
        rc = dbp_error_nomem(err);
    for (size_t i = 0; i < rt->n_cmds && rc == DBP_OK; i++) {
        for (size_t a = 0; a < rt->cmds[i].argc; a++)
            idx[a] = rt->cmds[i].first + a;
        rc = encode_args(rt, idx, rt->cmds[i].argc, err);
    }
    dbp_free(idx);
    if (rc == DBP_OK && rd_cmd(&c->out, "EXEC", (char *)NULL) != DBP_OK)
        rc = dbp_error_nomem(err);
    size_t n = rt->n_cmds + 2;
    dbp_reply **replies = rc == DBP_OK ? dbp_calloc(n, sizeof *replies) : NULL;
    if (rc == DBP_OK && !replies)
        rc = dbp_error_nomem(err);
    for (int round = 0, retry = 1; rc == DBP_OK && retry; round++) {
        retry = 0;
        rc = rd_cluster_exchange(c, slot, &c->out, n, replies, err);
        for (size_t i = 1; i <= rt->n_cmds && rc == DBP_OK && !retry; i++)
            rc = rd_cluster_follow(c, replies[i], slot, round, &retry, err);
        if (rc == DBP_OK && retry && round + 1 < TX_ROUNDS) {
            for (size_t i = 0; i < n; i++) {
                dbp_reply_free(replies[i]);
                replies[i] = NULL;
            }
        } else {
            retry = 0;
        }
    }
    if (rc == DBP_OK)
        rc = rd_exec_answer(c, replies, rt->n_cmds, out, err);
    for (size_t i = 0; replies && i < n; i++)
        dbp_reply_free(replies[i]);
    dbp_free(replies);
    c->out.len = 0;
    return rc;
}

int rd_cluster_command(rd_conn *c, int multi, const dbp_params *cmds, dbp_reply **out,
                       dbp_error *err)
{
    router rt = {.c = c, .p = cmds};
    *out = NULL;
    c->out.len = 0;
    int rc = parse(&rt, err);
    if (rc == DBP_OK)
        rc = multi ? run_transaction(&rt, out, err) : run_pipeline(&rt, out, err);
    for (size_t i = 0; i < rt.n_subs; i++)
        dbp_free(rt.subs[i].keys);
    dbp_free(rt.subs);
    dbp_free(rt.cmds);
    return rc;
}
