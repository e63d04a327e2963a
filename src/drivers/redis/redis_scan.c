/* redis_scan.c - tabular reads: the keys matching a pattern, found with
 * SCAN (never KEYS), and their values read into Arrow columns.
 *
 * The request's sql names the read: HGETALL or HMGET (hashes, one row per
 * key, a column per field), MGET (strings, one value column) or ZRANGE
 * (sorted sets, a row per member with its score). Its parameters, from the
 * binding: the pattern, the SCAN COUNT hint, on_error (0 raise, 1 NULL),
 * then a (name, dbp_type_id) pair per column, the key column first.
 *
 * Each round trip carries the reads of one SCAN page and the SCAN of the
 * next, so the scan costs one round trip per page. SCAN may return a key
 * twice; a set of the keys seen drops repeats. A key gone between its SCAN
 * and its read, or replaced by a value of another type, gives no row
 * (HGETALL, MGET, ZRANGE; HMGET cannot tell a deleted hash and gives NULLs).
 *
 * On a cluster every master is scanned in turn, each key read from the
 * master of its slot (MGET becomes a GET per key, as keys lie in many
 * slots). Keys that move during the scan (resharding) could be missed:
 * the slot table and each master's open migrations are compared before
 * and after a pass over the masters, and the pass is made again (its keys
 * already seen dropped) until one saw no change and no migration. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "redis_internal.h"

#define MAX_PASSES 20

typedef enum rd_kind { RD_HGETALL, RD_HMGET, RD_MGET, RD_ZRANGE } rd_kind;

static const struct {
    const char *name, *key_type;
    size_t min_cols, max_cols;
} kinds[] = {
    [RD_HGETALL] = {"HGETALL", "hash", 2, 4096},
    [RD_HMGET] = {"HMGET", "hash", 2, 4096},
    [RD_MGET] = {"MGET", "string", 2, 2},
    [RD_ZRANGE] = {"ZRANGE", "zset", 3, 3},
};

/* The keys seen so far: open addressing on a 64-bit hash. */
typedef struct keyset {
    uint64_t *hashes; /* 0 = empty slot */
    char **keys;
    size_t *lens;
    size_t count, cap;
} keyset;

struct rd_scan {
    rd_kind kind;
    char *pattern;
    size_t pattern_len;
    int64_t count;
    int null_on_error;
    size_t n_cols;
    char **names;
    dbp_type *types;
    char cursor[24];
    int scan_done;   /* the SCAN that returned cursor 0 was sent */
    dbp_reply *page; /* the last SCAN reply, its keys from page_pos on not read yet */
    size_t page_pos;
    /* ZRANGE replies not yet turned into rows, as (key, reply) pairs: one
     * sorted set may hold more rows than a batch takes */
    dbp_reply *zpend;
    size_t zpend_i;   /* the pair being read */
    size_t zpend_pos; /* its next member */
    keyset seen;
    int finished; /* no page left anywhere */
    /* cluster: the masters of this pass, the one scanned, the topology
     * when the pass began and whether a migration was open then */
    size_t *masters, n_masters, master_i;
    char *topology;
    int dirty, passes;
};

/* ---- the set of keys seen ------------------------------------------------------ */

static uint64_t hash_key(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

static void keyset_free(keyset *ks)
{
    for (size_t i = 0; i < ks->cap; i++)
        dbp_free(ks->keys[i]);
    dbp_free(ks->hashes);
    dbp_free(ks->keys);
    dbp_free(ks->lens);
    memset(ks, 0, sizeof *ks);
}

static size_t slot_of(const keyset *ks, uint64_t h, const char *s, size_t n)
{
    size_t i = (size_t)h & (ks->cap - 1);
    while (ks->hashes[i] &&
           (ks->hashes[i] != h || ks->lens[i] != n || memcmp(ks->keys[i], s, n) != 0))
        i = (i + 1) & (ks->cap - 1);
    return i;
}

static int keyset_grow(keyset *ks)
{
    keyset bigger = {.cap = ks->cap ? ks->cap * 2 : 1024};
    bigger.hashes = dbp_calloc(bigger.cap, sizeof *bigger.hashes);
    bigger.keys = dbp_calloc(bigger.cap, sizeof *bigger.keys);
    bigger.lens = dbp_calloc(bigger.cap, sizeof *bigger.lens);
    if (!bigger.hashes || !bigger.keys || !bigger.lens) {
        keyset_free(&bigger);
        return DBP_E_NOMEM;
    }
    for (size_t i = 0; i < ks->cap; i++)
        if (ks->hashes[i]) {
            size_t j = slot_of(&bigger, ks->hashes[i], ks->keys[i], ks->lens[i]);
            bigger.hashes[j] = ks->hashes[i];
            bigger.keys[j] = ks->keys[i];
            bigger.lens[j] = ks->lens[i];
            ks->keys[i] = NULL;
        }
    bigger.count = ks->count;
    keyset_free(ks);
    *ks = bigger;
    return DBP_OK;
}

/* 1 when the key is new (and now remembered), 0 when seen before. */
static int keyset_add(keyset *ks, const char *s, size_t n, int *rc)
{
    if ((ks->count + 1) * 2 > ks->cap && (*rc = keyset_grow(ks)) != DBP_OK)
        return 0;
    uint64_t h = hash_key(s, n);
    size_t i = slot_of(ks, h, s, n);
    if (ks->hashes[i])
        return 0;
    if (!(ks->keys[i] = dbp_malloc(n ? n : 1))) {
        *rc = DBP_E_NOMEM;
        return 0;
    }
    memcpy(ks->keys[i], s, n);
    ks->hashes[i] = h;
    ks->lens[i] = n;
    ks->count++;
    return 1;
}

/* ---- opening ---------------------------------------------------------------------- */

static void scan_free(rd_scan *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_cols; i++)
        dbp_free(s->names[i]);
    dbp_free(s->names);
    dbp_free(s->types);
    dbp_free(s->pattern);
    dbp_reply_free(s->page);
    dbp_reply_free(s->zpend);
    keyset_free(&s->seen);
    dbp_free(s->masters);
    dbp_free(s->topology);
    dbp_free(s);
}

static int spec_error(dbp_error *err, const char *what)
{
    return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "redis tabular read: %s", what);
}

static int read_spec(rd_scan *s, const dbp_params *p, dbp_error *err)
{
    size_t n = dbp_params_width(p);
    if (dbp_params_rows(p) != 1 || n < 3 || (n - 3) % 2 != 0)
        return spec_error(err, "expected pattern, count, on_error and (name, type) pairs");
    const dbp_value *pattern = dbp_params_get(p, 0, 0), *count = dbp_params_get(p, 0, 1),
                    *on_error = dbp_params_get(p, 0, 2);
    if ((pattern->kind != DBP_V_TEXT && pattern->kind != DBP_V_BLOB) ||
        count->kind != DBP_V_INT64 || count->i < 1 || on_error->kind != DBP_V_INT64)
        return spec_error(err, "bad pattern, count or on_error");
    s->pattern_len = pattern->length;
    s->pattern = dbp_strndup(dbp_params_bytes(p, pattern), pattern->length);
    s->count = count->i;
    s->null_on_error = on_error->i != 0;
    s->n_cols = (n - 3) / 2;
    if (s->n_cols < kinds[s->kind].min_cols || s->n_cols > kinds[s->kind].max_cols)
        return spec_error(err, "wrong number of columns for this read");
    s->names = dbp_calloc(s->n_cols, sizeof *s->names);
    s->types = dbp_calloc(s->n_cols, sizeof *s->types);
    if (!s->pattern || !s->names || !s->types)
        return dbp_error_nomem(err);
    for (size_t i = 0; i < s->n_cols; i++) {
        const dbp_value *name = dbp_params_get(p, 0, 3 + 2 * i),
                        *type = dbp_params_get(p, 0, 4 + 2 * i);
        if (name->kind != DBP_V_TEXT || type->kind != DBP_V_INT64 ||
            !rd_type_supported((dbp_type_id)type->i))
            return spec_error(err, "bad column name or type");
        if (!(s->names[i] = dbp_strndup(dbp_params_bytes(p, name), name->length)))
            return dbp_error_nomem(err);
        s->types[i].id = (dbp_type_id)type->i;
    }
    return DBP_OK;
}

int rd_cursor_open(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, dbp_error *err)
{
    rd_conn *c = conn;
    (void)ctx;
    rd_scan *s = dbp_calloc(1, sizeof *s);
    if (!s)
        return dbp_error_nomem(err);
    int rc = DBP_E_MISUSE;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strlen(kinds[k].name) == sql_len && strncasecmp(sql, kinds[k].name, sql_len) == 0) {
            s->kind = (rd_kind)k;
            rc = DBP_OK;
        }
    if (rc != DBP_OK)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, "42601",
                           "redis reads tables with HGETALL, HMGET, MGET or ZRANGE, not '%.*s'",
                           (int)(sql_len > 60 ? 60 : sql_len), sql);
    if (rc == DBP_OK)
        rc = read_spec(s, params, err);
    if (rc != DBP_OK) {
        scan_free(s);
        return rc;
    }
    strcpy(s->cursor, "0");
    rd_cursor_close(c, NULL);
    c->scan = s;
    return DBP_OK;
}

void rd_cursor_close(void *conn, const dbp_exec_ctx *ctx)
{
    rd_conn *c = conn;
    (void)ctx; /* nothing runs between fetches */
    scan_free(c->scan);
    c->scan = NULL;
}

/* ---- reading ---------------------------------------------------------------------- */

static const char *type_name(dbp_type_id id)
{
    switch (id) {
    case DBP_T_BOOL: return "Boolean";
    case DBP_T_INT8: return "Int8";
    case DBP_T_INT16: return "Int16";
    case DBP_T_INT32: return "Int32";
    case DBP_T_INT64: return "Int64";
    case DBP_T_UINT8: return "UInt8";
    case DBP_T_UINT16: return "UInt16";
    case DBP_T_UINT32: return "UInt32";
    case DBP_T_UINT64: return "UInt64";
    case DBP_T_FLOAT32: return "Float32";
    case DBP_T_FLOAT64: return "Float64";
    case DBP_T_DATE32: return "Date";
    case DBP_T_STRING: return "Utf8 (valid UTF-8)";
    default: return "Datetime";
    }
}

/* Up to 60 bytes of a value for a message, other than printable ASCII as
 * \xNN: a NUL would end the message, and binary junk has no place in logs. */
static const char *preview(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < 60 && o + 5 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

/* One value (NULL when `v` is): a value that does not parse is NULL or
 * an error naming the key and the column. */
static int put(rd_scan *s, dbp_result *res, size_t col, const dbp_reply *key,
               const dbp_reply *v, dbp_error *err)
{
    dbp_column *column = dbp_result_column(res, col);
    int rc = v && v->type == DBP_REPLY_STRING ? rd_append_value(column, v->str, v->len)
                                              : dbp_column_append_null(column);
    if (rc == DBP_E_DATA && s->null_on_error && col > 0) /* a row's key is never NULL */
        rc = dbp_column_append_null(column);
    char key_text[256], value_text[256];
    if (rc == DBP_E_DATA && col == 0)
        return dbp_error_set(err, DBP_E_DATA, 0, "22P02",
                             "key '%s' is not valid UTF-8: read the %s column as Binary",
                             preview(key->str, key->len, key_text, sizeof key_text),
                             s->names[0]);
    if (rc == DBP_E_DATA)
        return dbp_error_set(err, DBP_E_DATA, 0, "22P02",
                             "key '%s' field '%s': '%s%s' is not a valid %s",
                             preview(key->str, key->len, key_text, sizeof key_text),
                             s->names[col], preview(v->str, v->len, value_text, sizeof value_text),
                             v->len > 60 ? "..." : "", type_name(column->type.id));
    return rc == DBP_OK ? DBP_OK : dbp_error_nomem(err);
}

/* The rows of one key from its read's reply (of a sorted set, `budget`
 * rows from member *pos on). */
static int key_rows(rd_scan *s, dbp_result *res, const dbp_reply *key, const dbp_reply *r,
                    size_t *pos, size_t budget, dbp_error *err)
{
    if (r->type == DBP_REPLY_ERROR && r->len >= 9 && memcmp(r->str, "WRONGTYPE", 9) == 0)
        return DBP_OK; /* replaced by another kind of value since the SCAN: gone, as for MGET */
    if (r->type == DBP_REPLY_ERROR)
        return dbp_error_set(err, DBP_E_SERVER, 0, NULL, "reading key '%.*s': %.*s",
                             (int)key->len, key->str, (int)r->len, r->str);
    int rc = DBP_OK;
    if (s->kind == RD_MGET) {
        if (r->type == DBP_REPLY_NIL)
            return DBP_OK; /* gone since the SCAN */
        rc = put(s, res, 0, key, key, err);
        return rc == DBP_OK ? put(s, res, 1, key, r, err) : rc;
    }
    if (r->type != DBP_REPLY_ARRAY)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "unexpected reply for key '%.*s'",
                             (int)key->len, key->str);
    if (s->kind == RD_ZRANGE) { /* up to `budget` members from *pos on */
        for (; *pos + 1 < r->n && budget > 0 && rc == DBP_OK; *pos += 2, budget--) {
            rc = put(s, res, 0, key, key, err);
            if (rc == DBP_OK)
                rc = put(s, res, 1, key, r->element[*pos], err);
            if (rc == DBP_OK)
                rc = put(s, res, 2, key, r->element[*pos + 1], err);
        }
        return rc;
    }
    if (s->kind == RD_HGETALL && r->n == 0)
        return DBP_OK; /* gone since the SCAN */
    rc = put(s, res, 0, key, key, err);
    for (size_t col = 1; col < s->n_cols && rc == DBP_OK; col++) {
        const dbp_reply *v = NULL;
        if (s->kind == RD_HMGET) {
            v = col - 1 < r->n ? r->element[col - 1] : NULL;
        } else {
            size_t want = strlen(s->names[col]);
            for (size_t i = 0; i + 1 < r->n && !v; i += 2)
                if (r->element[i]->len == want &&
                    memcmp(r->element[i]->str, s->names[col], want) == 0)
                    v = r->element[i + 1];
        }
        rc = put(s, res, col, key, v, err);
    }
    return rc;
}

/* The read of one key into b (a cluster reads strings with GET). */
static int encode_read(rd_scan *s, rd_buf *b, const dbp_reply *key)
{
    int rc;
    if (s->kind == RD_MGET) {
        rc = rd_cmd_begin(b, 2) | rd_cmd_arg(b, "GET", 3) | rd_cmd_arg(b, key->str, key->len);
    } else if (s->kind == RD_HMGET) {
        rc = rd_cmd_begin(b, s->n_cols + 1) | rd_cmd_arg(b, "HMGET", 5) |
             rd_cmd_arg(b, key->str, key->len);
        for (size_t col = 1; col < s->n_cols && rc == DBP_OK; col++)
            rc = rd_cmd_arg(b, s->names[col], strlen(s->names[col]));
    } else if (s->kind == RD_ZRANGE) {
        rc = rd_cmd_begin(b, 5) | rd_cmd_arg(b, "ZRANGE", 6) | rd_cmd_arg(b, key->str, key->len) |
             rd_cmd_arg(b, "0", 1) | rd_cmd_arg(b, "-1", 2) | rd_cmd_arg(b, "WITHSCORES", 10);
    } else {
        rc = rd_cmd_begin(b, 2) | rd_cmd_arg(b, "HGETALL", 7) | rd_cmd_arg(b, key->str, key->len);
    }
    return rc;
}

/* The read of `n` keys of a page into c->out (MGET reads them in one; a
 * cluster marks each read in `batch` with its key's slot). */
static int encode_reads(rd_scan *s, rd_conn *c, dbp_reply *const *keys, size_t n,
                        rd_batch *batch, dbp_error *err)
{
    rd_buf *b = &c->out;
    int rc = DBP_OK;
    if (s->kind == RD_MGET && !c->cluster) {
        rc = rd_cmd_begin(b, n + 1) | rd_cmd_arg(b, "MGET", 4);
        for (size_t i = 0; i < n && rc == DBP_OK; i++)
            rc = rd_cmd_arg(b, keys[i]->str, keys[i]->len);
        return rc == DBP_OK ? DBP_OK : dbp_error_nomem(err);
    }
    for (size_t i = 0; i < n && rc == DBP_OK; i++) {
        if (c->cluster &&
            (rc = rd_batch_mark(batch, (int)rd_keyslot(keys[i]->str, keys[i]->len), err)) !=
                DBP_OK)
            return rc;
        rc = encode_read(s, b, keys[i]);
    }
    return rc == DBP_OK ? DBP_OK : dbp_error_nomem(err);
}

static int encode_scan(rd_scan *s, rd_conn *c)
{
    char count[24];
    snprintf(count, sizeof count, "%lld", (long long)s->count);
    const char *args[] = {"SCAN", s->cursor, "MATCH", NULL, "COUNT", count, "TYPE",
                          kinds[s->kind].key_type};
    int rc = rd_cmd_begin(&c->out, 8);
    for (size_t i = 0; i < 8 && rc == DBP_OK; i++)
        rc = i == 3 ? rd_cmd_arg(&c->out, s->pattern, s->pattern_len)
                    : rd_cmd_arg(&c->out, args[i], strlen(args[i]));
    return rc;
}

/* A SCAN reply: [next cursor, [keys]]; remembers the cursor. */
static int take_page(rd_scan *s, rd_conn *c, dbp_reply *r, dbp_error *err)
{
    if (r->type == DBP_REPLY_ERROR) {
        int rc = rd_reply_error(r, "SCAN", err);
        dbp_reply_free(r);
        return rc;
    }
    if (r->type != DBP_REPLY_ARRAY || r->n != 2 || r->element[0]->type != DBP_REPLY_STRING ||
        r->element[0]->len >= sizeof s->cursor || r->element[1]->type != DBP_REPLY_ARRAY) {
        dbp_reply_free(r);
        c->broken = 1;
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "unexpected SCAN reply from %s",
                             c->node->label);
    }
    memcpy(s->cursor, r->element[0]->str, r->element[0]->len + 1);
    s->scan_done = strcmp(s->cursor, "0") == 0;
    s->page = r;
    return DBP_OK;
}

/* Keeps the ZRANGE replies of `n` keys (taken from `replies`) in s->zpend,
 * each after a copy of its key (the page it points into goes first). */
static int pend_zsets(rd_scan *s, dbp_reply *const *keys, dbp_reply **replies, size_t n,
                      dbp_error *err)
{
    dbp_reply *pend = dbp_calloc(1, sizeof *pend);
    dbp_reply **elements = dbp_calloc(2 * n, sizeof *elements);
    if (!pend || !elements) {
        dbp_free(pend);
        dbp_free(elements);
        return dbp_error_nomem(err);
    }
    pend->type = DBP_REPLY_ARRAY;
    pend->element = elements;
    pend->n = 2 * n;
    for (size_t i = 0; i < n; i++) {
        dbp_reply *key = dbp_calloc(1, sizeof *key);
        char *str = dbp_malloc(keys[i]->len + 1);
        if (!key || !str) {
            dbp_free(key);
            dbp_free(str);
            dbp_reply_free(pend);
            return dbp_error_nomem(err);
        }
        memcpy(str, keys[i]->str, keys[i]->len + 1);
        key->type = DBP_REPLY_STRING;
        key->str = str;
        key->len = keys[i]->len;
        elements[2 * i] = key;
        elements[2 * i + 1] = replies[i];
        replies[i] = NULL;
    }
    s->zpend = pend;
    s->zpend_i = s->zpend_pos = 0;
    return DBP_OK;
}

/* Rows of the pending sorted sets, at most `room`. */
static int drain_zsets(rd_scan *s, dbp_result *res, size_t room, dbp_error *err)
{
    int rc = DBP_OK;
    while (s->zpend && room > 0 && rc == DBP_OK) {
        const dbp_reply *key = s->zpend->element[2 * s->zpend_i],
                        *r = s->zpend->element[2 * s->zpend_i + 1];
        size_t before = s->zpend_pos;
        rc = key_rows(s, res, key, r, &s->zpend_pos, room, err);
        room -= (s->zpend_pos - before) / 2;
        if (rc != DBP_OK || s->zpend_pos + 1 < r->n)
            break; /* an error, or the batch is full mid-set */
        s->zpend_pos = 0;
        if (++s->zpend_i * 2 >= s->zpend->n) {
            dbp_reply_free(s->zpend);
            s->zpend = NULL;
            s->zpend_i = 0;
        }
    }
    return rc;
}

/* Reads up to `max_keys` keys of s->page not seen before (sending the next
 * SCAN along once the page is used up) and appends their rows. */
static int read_page(rd_scan *s, rd_conn *c, dbp_result *res, size_t max_keys, dbp_error *err)
{
    dbp_reply *keys = s->page->element[1];
    dbp_reply **fresh = dbp_calloc(keys->n + 1, sizeof *fresh);
    size_t n = 0;
    int rc = fresh ? DBP_OK : dbp_error_nomem(err);
    for (; s->page_pos < keys->n && n < max_keys && rc == DBP_OK; s->page_pos++) {
        const dbp_reply *key = keys->element[s->page_pos];
        if (key->type == DBP_REPLY_STRING && keyset_add(&s->seen, key->str, key->len, &rc))
            fresh[n++] = keys->element[s->page_pos];
        if (rc != DBP_OK)
            rc = dbp_error_nomem(err);
    }
    int page_done = s->page_pos == keys->n, more = page_done && !s->scan_done;
    int one_mget = s->kind == RD_MGET && !c->cluster;
    size_t n_reads = one_mget ? (n > 0) : n;
    rd_batch batch = {.src = &c->out};
    if (rc == DBP_OK && n > 0)
        rc = encode_reads(s, c, fresh, n, &batch, err);
    if (rc == DBP_OK && more && c->cluster)
        rc = rd_batch_mark(&batch, RD_NODE(s->masters[s->master_i]), err);
    if (rc == DBP_OK && more && encode_scan(s, c) != DBP_OK)
        rc = dbp_error_nomem(err);
    dbp_reply **replies = NULL;
    if (rc == DBP_OK && n_reads + more > 0 && c->cluster) {
        rc = rd_batch_run(c, &batch, err);
        replies = batch.replies; /* freed with the batch */
    } else if (rc == DBP_OK && n_reads + more > 0) {
        replies = dbp_calloc(n_reads + more, sizeof *replies);
        rc = replies ? rd_roundtrip(c, n_reads + more, replies, err) : dbp_error_nomem(err);
    }
    c->out.len = 0;
    if (rc == DBP_OK && s->kind == RD_ZRANGE && n > 0)
        rc = pend_zsets(s, fresh, replies, n, err);
    for (size_t i = 0; i < n && rc == DBP_OK && s->kind != RD_ZRANGE; i++) {
        const dbp_reply *r = replies[one_mget ? 0 : i];
        if (one_mget)
            r = r->type == DBP_REPLY_ARRAY && i < r->n ? r->element[i] : r;
        rc = key_rows(s, res, fresh[i], r, NULL, 0, err);
    }
    dbp_free(fresh); /* it points into the page */
    if (page_done) {
        dbp_reply_free(s->page);
        s->page = NULL;
        s->page_pos = 0;
    }
    if (rc == DBP_OK && more) {
        rc = take_page(s, c, replies[n_reads], err);
        replies[n_reads] = NULL;
    }
    if (c->cluster) {
        rd_batch_free(&batch);
    } else {
        for (size_t i = 0; replies && i < n_reads + more; i++)
            dbp_reply_free(replies[i]);
        dbp_free(replies);
    }
    return rc;
}

/* Cluster: the next pass over the masters (the topology noted), or none
 * when the last one saw no change. */
static int next_pass(rd_scan *s, rd_conn *c, dbp_error *err)
{
    char *now = NULL;
    int migrating = 0;
    int rc = rd_cluster_topology(c, &now, &migrating, err);
    if (rc != DBP_OK)
        return rc;
    if (s->topology && !s->dirty && !migrating && strcmp(now, s->topology) == 0) {
        dbp_free(now);
        s->finished = 1;
        return DBP_OK;
    }
    if (s->passes++ == MAX_PASSES) {
        dbp_free(now);
        return dbp_error_set(err, DBP_E_UNAVAILABLE, 0, NULL,
                             "the cluster kept resharding during %d passes of the scan: "
                             "keys moved while it ran may be missing", MAX_PASSES);
    }
    dbp_free(s->topology);
    s->topology = now;
    s->dirty = migrating;
    dbp_free(s->masters);
    s->masters = NULL;
    s->master_i = 0;
    strcpy(s->cursor, "0");
    s->scan_done = 0;
    return rd_cluster_masters(c, &s->masters, &s->n_masters, err);
}

/* The next SCAN page when the last is used up: the first page, the next
 * master's (cluster), or none (s->finished). */
static int start_page(rd_scan *s, rd_conn *c, dbp_error *err)
{
    int rc = DBP_OK;
    if (c->cluster && !s->masters)
        rc = next_pass(s, c, err);
    while (rc == DBP_OK && s->scan_done && !s->finished) {
        if (!c->cluster) {
            s->finished = 1;
        } else if (++s->master_i < s->n_masters) { /* the next master, from its start */
            strcpy(s->cursor, "0");
            s->scan_done = 0;
        } else {
            rc = next_pass(s, c, err);
        }
    }
    if (rc != DBP_OK || s->finished)
        return rc;
    if (c->cluster && s->master_i >= s->n_masters) {
        s->finished = 1; /* a cluster without masters */
        return DBP_OK;
    }
    rd_batch batch = {.src = &c->out};
    if (c->cluster)
        rc = rd_batch_mark(&batch, RD_NODE(s->masters[s->master_i]), err);
    if (rc == DBP_OK && encode_scan(s, c) != DBP_OK)
        rc = dbp_error_nomem(err);
    dbp_reply *r = NULL;
    if (rc == DBP_OK && c->cluster && (rc = rd_batch_run(c, &batch, err)) == DBP_OK) {
        r = batch.replies[0];
        batch.replies[0] = NULL;
    } else if (rc == DBP_OK) {
        rc = rd_roundtrip(c, 1, &r, err);
    }
    rd_batch_free(&batch);
    c->out.len = 0;
    return rc == DBP_OK ? take_page(s, c, r, err) : rc;
}

int rd_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                    dbp_result **out, int *done, dbp_error *err)
{
    rd_conn *c = conn;
    rd_scan *s = c->scan;
    *done = 0;
    *out = NULL;
    if (!s)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "no cursor is open");
    dbp_result *res = NULL;
    int rc = dbp_result_new(&res, s->n_cols, (const char *const *)s->names, err);
    for (size_t i = 0; rc == DBP_OK && i < s->n_cols; i++)
        rc = dbp_column_set_type(dbp_result_column(res, i), s->types[i]);
    c->ctx = ctx;
    while (rc == DBP_OK && (!s->finished || s->zpend)) {
        /* a hash or string key is one row: a fetch of max_rows reads that many
         * keys; the members of sorted sets wait in s->zpend for their turn */
        int64_t room = limits->max_rows - dbp_result_total_rows(res);
        if (limits->max_rows >= 0 && room <= 0)
            break;
        size_t most = limits->max_rows >= 0 ? (size_t)room : SIZE_MAX;
        if (s->zpend)
            rc = drain_zsets(s, res, most, err);
        else if (!s->page)
            rc = start_page(s, c, err); /* or s->finished */
        else
            rc = read_page(s, c, res, most, err);
        if (rc == DBP_OK && dbp_fetch_batch_full(res, limits))
            rc = dbp_result_finish_batch(res, err);
    }
    c->ctx = NULL;
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    *done = s->finished && !s->zpend;
    *out = res;
    return DBP_OK;
}
