/* pg_stmt.c - PostgreSQL statements: parameters bound in their text form
 * (bytes in binary), the per-connection prepared-statement cache (LRU, with
 * the columns each statement returns planned once), and execute(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"
#include "textparse.h"

void pg_statement_free(pg_statement *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_fields; i++) {
        if (st->field_names)
            dbp_free(st->field_names[i]);
        if (st->plans)
            pg_plan_free(&st->plans[i]);
    }
    dbp_free(st->field_names);
    dbp_free(st->plans);
    dbp_free(st->param_types);
    dbp_free(st->declared);
    dbp_free(st->sql);
    dbp_free(st);
}

/* ---- the statement cache ----------------------------------------------------- */

/* OIDs from here on are user-defined types (FirstNormalObjectId). */
#define FIRST_USER_OID 16384

/* What the catalog says about a user-defined type; 0 if it cannot say
 * (e.g. in a failed transaction: the raw bytes are decoded then). */
static int type_info(pg_conn *c, Oid oid, char *typtype, char *category, Oid *base, Oid *elem)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT typtype, typcategory, typbasetype, typelem FROM pg_catalog.pg_type "
             "WHERE oid = %u",
             oid);
    PGresult *res;
    int found = pg_query(c, sql, &res, NULL) == DBP_OK &&
                PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (found) {
        *typtype = PQgetvalue(res, 0, 0)[0];
        *category = PQgetvalue(res, 0, 1)[0];
        *base = (Oid)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
        *elem = (Oid)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    }
    PQclear(res);
    return found;
}

/* Whether a type is read as its text: enums (binary form = the label) and
 * string-category types such as citext. */
static int is_text_like(pg_conn *c, Oid oid)
{
    char typtype, category;
    Oid base, elem;
    return oid >= FIRST_USER_OID && type_info(c, oid, &typtype, &category, &base, &elem) &&
           (typtype == 'e' || category == 'S');
}

/* Plans a column. User-defined types are looked up: enums and string types
 * read as text, domains as their base type, arrays of them as lists. */
static int plan_field(pg_conn *c, Oid oid, int typmod, pg_column_plan *plan, dbp_error *err)
{
    char typtype, category;
    Oid base, elem;
    if (oid >= FIRST_USER_OID && type_info(c, oid, &typtype, &category, &base, &elem)) {
        if (typtype == 'd' && base)
            return plan_field(c, base, typmod, plan, err);
        if (category == 'A' && elem)
            return pg_plan_array_column(oid, elem, typmod, is_text_like(c, elem), plan, err);
        return pg_plan_column(oid, typmod, typtype == 'e' || category == 'S', plan, err);
    }
    return pg_plan_column(oid, typmod, 0, plan, err);
}

/* Parse and Describe in one pipeline with one Sync: one round trip, and
 * behind PgBouncer in transaction mode both reach the same server. */
static int prepare_and_describe(pg_conn *c, const char *name, const char *sql, int n_declared,
                                const Oid *declared, PGresult **described, dbp_error *err)
{
    *described = NULL;
    if (!PQenterPipelineMode(c->pg))
        return pg_error(c, NULL, err);
    int rc = DBP_OK;
    if (!PQsendPrepare(c->pg, name, sql, n_declared, declared) || !PQsendDescribePrepared(c->pg, name) ||
        !PQpipelineSync(c->pg))
        rc = pg_error(c, NULL, err);
    for (int answers = 0;;) {
        PGresult *res;
        int prc = pg_next_result(c, &res, rc == DBP_OK ? err : NULL);
        if (prc != DBP_OK) {
            rc = rc == DBP_OK ? prc : rc;
            break;
        }
        if (!res)
            continue;
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        answers++;
        if (status == PGRES_FATAL_ERROR && rc == DBP_OK)
            rc = pg_error(c, res, err);
        if (status == PGRES_COMMAND_OK && answers == 2 && rc == DBP_OK) {
            *described = res;
            continue;
        }
        PQclear(res);
    }
    PQexitPipelineMode(c->pg);
    if (rc != DBP_OK) {
        PQclear(*described);
        *described = NULL;
    }
    return rc;
}

/* Prepares and describes `sql` under `name`, with the parameter types
 * `declared` (n_declared of them; the statement takes ownership) or none. */
static int prepare_statement(pg_conn *c, const char *sql, size_t len, const char *name,
                             int n_declared, Oid *declared, pg_statement **out, dbp_error *err)
{
    pg_statement *st = dbp_calloc(1, sizeof *st);
    if (!st || !(st->sql = dbp_strndup(sql, len))) {
        dbp_free(st);
        dbp_free(declared);
        return dbp_error_nomem(err);
    }
    st->declared = declared;
    st->sql_len = len;
    st->session_changes = pg_session_changes(sql, len);
    snprintf(st->name, sizeof st->name, "%s", name);
    PGresult *res = NULL;
    int rc = prepare_and_describe(c, name, st->sql, n_declared, declared, &res, err);
    if (rc == DBP_OK) {
        st->n_params = PQnparams(res);
        st->n_fields = PQnfields(res);
        st->param_types = dbp_calloc((size_t)st->n_params, sizeof *st->param_types);
        st->field_names = dbp_calloc((size_t)st->n_fields, sizeof *st->field_names);
        st->plans = dbp_calloc((size_t)st->n_fields, sizeof *st->plans);
        if (!st->param_types || !st->field_names || !st->plans)
            rc = dbp_error_nomem(err);
        for (int i = 0; rc == DBP_OK && i < st->n_params; i++)
            st->param_types[i] = PQparamtype(res, i);
        for (int i = 0; rc == DBP_OK && i < st->n_fields; i++) {
            if (!(st->field_names[i] = dbp_strdup(PQfname(res, i))))
                rc = dbp_error_nomem(err);
        }
        /* Planning may ask the catalog, so the describe result goes first. */
        Oid *oids = rc == DBP_OK ? dbp_calloc((size_t)st->n_fields + 1, sizeof *oids) : NULL;
        int *mods = rc == DBP_OK ? dbp_calloc((size_t)st->n_fields + 1, sizeof *mods) : NULL;
        if (rc == DBP_OK && (!oids || !mods))
            rc = dbp_error_nomem(err);
        for (int i = 0; rc == DBP_OK && i < st->n_fields; i++) {
            oids[i] = PQftype(res, i);
            mods[i] = PQfmod(res, i);
        }
        PQclear(res);
        res = NULL;
        for (int i = 0; rc == DBP_OK && i < st->n_fields; i++)
            rc = plan_field(c, oids[i], mods[i], &st->plans[i], err);
        dbp_free(oids);
        dbp_free(mods);
    }
    PQclear(res);
    if (rc != DBP_OK) {
        pg_statement_free(st);
        return rc;
    }
    *out = st;
    return DBP_OK;
}

int pg_statement_fresh(pg_conn *c, const char *sql, size_t len, pg_statement **out,
                       dbp_error *err)
{
    return prepare_statement(c, sql, len, "", 0, NULL, out, err);
}

/* Prepares `sql` under a new name into the cache, evicting the least
 * recently used statement when it is full (or unnamed and *owned when the
 * victim is the open cursor's). Takes `declared` as prepare_statement. */
static int cache_statement(pg_conn *c, const char *sql, size_t len, int n_declared,
                           Oid *declared, pg_statement **out, int *owned, dbp_error *err)
{
    int slot = c->n_cached;
    if (slot == c->cfg->cache_size) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n_cached; i++)
            if (c->cache[i]->last_used < c->cache[slot]->last_used)
                slot = i;
        if (c->cur.stmt == c->cache[slot]) {
            *owned = 1; /* the open cursor uses the victim: do not cache */
            return prepare_statement(c, sql, len, "", n_declared, declared, out, err);
        }
        char dealloc[64];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", c->cache[slot]->name);
        int rc = pg_exec(c, dealloc, err);
        if (rc != DBP_OK) {
            dbp_free(declared);
            return rc;
        }
        pg_statement_free(c->cache[slot]);
        c->cache[slot] = c->cache[--c->n_cached];
        slot = c->n_cached;
    }
    char name[24];
    snprintf(name, sizeof name, "dbp_%llu", (unsigned long long)++c->next_name);
    pg_statement *st;
    int rc = prepare_statement(c, sql, len, name, n_declared, declared, &st, err);
    if (rc != DBP_OK)
        return rc;
    st->last_used = ++c->tick;
    c->cache[slot] = st;
    c->n_cached++;
    *out = st;
    return DBP_OK;
}

int pg_statement_for(pg_conn *c, const char *sql, size_t len, const dbp_params *params,
                     pg_statement **out, int *owned, dbp_error *err)
{
    *owned = 0;
    pg_statement *untyped = NULL;
    for (int i = 0; i < c->n_cached; i++) {
        pg_statement *st = c->cache[i];
        if (st->sql_len != len || memcmp(st->sql, sql, len) != 0)
            continue;
        if (pg_statement_fits(st, params)) {
            st->last_used = ++c->tick;
            *out = st;
            return DBP_OK;
        }
        if (!st->declared)
            untyped = st;
    }
    if (!untyped) {
        *owned = c->cfg->cache_size == 0;
        int rc = *owned ? prepare_statement(c, sql, len, "", 0, NULL, &untyped, err)
                        : cache_statement(c, sql, len, 0, NULL, &untyped, owned, err);
        if (rc != DBP_OK || pg_statement_fits(untyped, params)) {
            *out = untyped;
            return rc;
        }
    }
    /* The values need declared types: a second form of the same SQL. */
    int n = untyped->n_params;
    Oid *declared = pg_declared_types(untyped, params);
    if (*owned)
        pg_statement_free(untyped);
    *owned = c->cfg->cache_size == 0;
    if (!declared)
        return dbp_error_nomem(err);
    return *owned ? prepare_statement(c, sql, len, "", n, declared, out, err)
                  : cache_statement(c, sql, len, n, declared, out, owned, err);
}

/* Drops every cached statement without DEALLOCATE (the server dropped
 * them: DISCARD ALL, DEALLOCATE ALL, or a new session behind a pooler). */
void pg_forget_statements(pg_conn *c)
{
    for (int i = 0; i < c->n_cached; i++)
        if (c->cache[i] != c->cur.stmt)
            pg_statement_free(c->cache[i]);
        else
            c->cur.owns_stmt = 1; /* the open cursor frees it */
    c->n_cached = 0;
}

/* After a failure: when the server no longer knows a cached statement
 * (26000) or refuses it because DDL changed its result (0A000 "cached
 * plan"), forgets the cache and returns 1 so the caller retries once. */
int pg_forget_if_stale(pg_conn *c, const dbp_error *err)
{
    if (!err || (strcmp(err->sqlstate, "26000") != 0 &&
                 !(strcmp(err->sqlstate, "0A000") == 0 && strstr(err->message, "cached plan"))))
        return 0;
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return 0; /* the failed statement aborted the caller's transaction */
    if (err->sqlstate[0] == '0') {
        dbp_error ignored;
        pg_exec(c, "DEALLOCATE ALL", &ignored);
    }
    pg_forget_statements(c);
    return 1;
}

/* ---- execute -------------------------------------------------------------------- */

static int execute_rows(pg_conn *c, const pg_statement *st, const dbp_params *params,
                        size_t rows, int64_t *affected, dbp_error *err);

/* Whether a script may have dropped the server's prepared statements. */
static int may_drop_statements(const char *sql, size_t len)
{
    return dbp_text_mentions(sql, len, "discard") || dbp_text_mentions(sql, len, "dealloca");
}

int pg_too_many_params(size_t given, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_MISUSE, 0, "54000",
                         "PostgreSQL takes at most %d parameters in one statement, not %zu "
                         "(the protocol counts them in 16 bits): pass an array parameter, or "
                         "load the rows with write_frame",
                         PG_MAX_PARAMS, given);
}

int pg_execute(void *conn, const char *sql, size_t len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err)
{
    pg_conn *c = conn;
    if (dbp_params_width(params) > PG_MAX_PARAMS)
        return pg_too_many_params(dbp_params_width(params), err);
    pg_call_begin(c, ctx);
    *affected = 0;
    int rc;
    if (!params) { /* the simple protocol runs scripts of several statements */
        if (!ctx->session_setup)
            c->session_changes |= pg_session_changes(sql, len);
        char *text = dbp_strndup(sql, len);
        rc = !text                   ? dbp_error_nomem(err)
             : PQsendQuery(c->pg, text) ? pg_drain(c, affected, err)
                                        : pg_error(c, NULL, err);
        dbp_free(text);
        if (may_drop_statements(sql, len))
            pg_forget_statements(c); /* DISCARD ALL / DEALLOCATE: prepare anew */
    } else {
        for (int attempt = 0;; attempt++) {
            pg_statement *st;
            int owned;
            rc = pg_statement_for(c, sql, len, params, &st, &owned, err);
            if (rc == DBP_OK) {
                if (!ctx->session_setup)
                    c->session_changes |= st->session_changes;
                rc = execute_rows(c, st, params, dbp_params_rows(params), affected, err);
                if (owned)
                    pg_statement_free(st);
            }
            if (rc == DBP_OK || attempt > 0 || owned || !pg_forget_if_stale(c, err))
                break;
            *affected = 0;
        }
    }
    pg_call_end(c);
    return rc;
}

/* One row: a plain round trip. Several: libpq pipeline mode sends them all
 * before reading any answer, all or nothing: inside BEGIN ... COMMIT sent in
 * the same pipeline (ROLLBACK instead when a row cannot even be sent), or,
 * inside the caller's transaction, a savepoint. */
static int execute_rows(pg_conn *c, const pg_statement *st, const dbp_params *params,
                        size_t rows, int64_t *affected, dbp_error *err)
{
    if (rows <= 1) {
        int rc = pg_send_bound(c, st, params, 0, err);
        return rc == DBP_OK ? pg_drain(c, affected, err) : rc;
    }
    int savepoint = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
    if (savepoint) {
        int rc = pg_exec(c, "SAVEPOINT dbp_execute_many", err);
        if (rc != DBP_OK)
            return rc;
    }
    if (!PQenterPipelineMode(c->pg))
        return pg_error(c, NULL, err);
    int rc = DBP_OK;
    if (!savepoint && !PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        rc = pg_error(c, NULL, err);
    for (size_t row = 0; row < rows && rc == DBP_OK; row++) {
        rc = pg_send_bound(c, st, params, row, err);
        /* Send what is buffered (reading answers meanwhile) so that neither
         * side's buffers grow without end. */
        if (rc == DBP_OK && (row & 255) == 255)
            rc = pg_flush(c, err);
    }
    if (!savepoint)
        PQsendQueryParams(c->pg, rc == DBP_OK ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL,
                          NULL, 0);
    if (!PQpipelineSync(c->pg) && rc == DBP_OK)
        rc = pg_error(c, NULL, err);
    /* Read every answer up to the sync; BEGIN's answer comes first. */
    int answer = savepoint ? 0 : -1;
    int failed_row = -1;
    for (;;) {
        PGresult *res;
        int prc = pg_next_result(c, &res, rc == DBP_OK ? err : NULL);
        if (prc != DBP_OK) {
            rc = rc == DBP_OK ? prc : rc;
            break;
        }
        if (!res)
            continue; /* the end of one query's results */
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (status == PGRES_FATAL_ERROR && rc == DBP_OK) {
            rc = pg_error(c, res, err);
            failed_row = answer < (int)rows ? answer : -1;
        } else if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            const char *n = PQcmdTuples(res);
            if (*n && answer >= 0 && answer < (int)rows)
                *affected += strtoll(n, NULL, 10);
        }
        answer++;
        PQclear(res);
    }
    PQexitPipelineMode(c->pg);
    /* an error left BEGIN's block open */
    if (!savepoint && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        dbp_error ignored;
        pg_exec(c, "ROLLBACK", &ignored);
    }
    if (rc != DBP_OK) {
        *affected = 0;
        if (err && failed_row >= 0)
            snprintf(err->message + strlen(err->message),
                     sizeof err->message - strlen(err->message),
                     " (parameter row %d; no row was written)", failed_row);
    }
    if (savepoint) {
        dbp_error ignored;
        if (rc != DBP_OK)
            pg_exec(c, "ROLLBACK TO SAVEPOINT dbp_execute_many", &ignored);
        int end = pg_exec(c, "RELEASE SAVEPOINT dbp_execute_many", rc == DBP_OK ? err : &ignored);
        if (rc == DBP_OK)
            rc = end;
    }
    return rc;
}

