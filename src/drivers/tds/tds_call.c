/* tds_call.c - the life of one MSSQL driver call: db-lib's process-wide
 * error and message handlers filing into the connection's slot, the
 * call's error (cancel, deadline, the server's, db-lib's), and running the
 * driver's own batches to their end. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sybfront.h>
#include <sybdb.h>

#include "error.h"
#include "tds_internal.h"
#include "textparse.h"

/* The connection a handler call belongs to when its DBPROCESS has none
 * (yet): the one the calling thread is working on. */
static _Thread_local tds_conn *current;

tds_conn *tds_set_current(tds_conn *c)
{
    tds_conn *was = current;
    current = c;
    return was;
}

static tds_conn *conn_of(DBPROCESS *proc)
{
    tds_conn *c = proc ? (tds_conn *)dbgetuserdata(proc) : NULL;
    return c ? c : current;
}

/* The call's deadline passed (the driver's own check; the pool also
 * cancels then). Bookkeeping with c->cancelled cleared is not bounded by it. */
static int past_deadline(const tds_conn *c)
{
    return c->cancelled && c->ctx && dbp_now_ns() >= c->ctx->deadline_ns;
}

int tds_cancel_requested(const tds_conn *c)
{
    return atomic_load(&c->interrupted) || (c->cancelled && atomic_load(c->cancelled)) ||
           past_deadline(c);
}

/* db-lib polls once a second: the attention's acknowledgement gets the
 * call's cancel grace, in whole polls. */
static int attention_polls_allowed(const tds_conn *c)
{
    int64_t grace = c->ctx ? c->ctx->cancel_grace_ns : (int64_t)2000000000;
    return (int)((grace + 999999999) / 1000000000);
}

static int on_message(DBPROCESS *proc, DBINT number, int state, int severity, char *text,
                      char *server, char *procname, int line)
{
    (void)server;
    tds_conn *c = conn_of(proc);
    if (!c)
        return 0;
    if (severity > 10) {
        tds_failure *f = &c->fail;
        if (!f->server) {
            f->server = 1;
            f->number = number;
            f->state = state;
            f->severity = severity;
            f->line = line;
            snprintf(f->message, sizeof f->message, "%s", text ? text : "");
            snprintf(f->procname, sizeof f->procname, "%s", procname ? procname : "");
        }
        if (severity >= 20) /* fatal: the server ends the session */
            c->dead = 1;
    } else if (c->ctx && c->ctx->notice && text) {
        c->ctx->notice(c->ctx->notice_arg, "INFO", text);
    }
    return 0;
}

/* db-lib's own errors that mean the connection is gone. */
static int is_link_error(int dberr)
{
    switch (dberr) {
    case SYBESYNC:
    case SYBEFCON:
    case SYBEREAD:
    case SYBEWRIT:
    case SYBESOCK:
    case SYBECONN:
    case SYBESEOF:
    case SYBEBTOK:
    case SYBEOOB:
    case SYBEDDNE:
    case SYBEUTDS:
        return 1;
    default:
        return 0;
    }
}

static int on_error(DBPROCESS *proc, int severity, int dberr, int oserr, char *dberrstr,
                    char *oserrstr)
{
    (void)severity;
    tds_conn *c = conn_of(proc);
    if (dberr == SYBETIME) {
        if (!c || c->connecting)
            return INT_CANCEL; /* the login timeout */
        if (c->attention_sent) {
            if (++c->attention_polls > attention_polls_allowed(c)) {
                c->dead = 1;
                return INT_CANCEL; /* no acknowledgement: drop the connection */
            }
            return INT_CONTINUE;
        }
        if (tds_cancel_requested(c)) {
            c->attention_sent = 1;
            return INT_TIMEOUT; /* db-lib sends the attention and keeps reading */
        }
        return INT_CONTINUE;
    }
    if (!c || dberr == SYBESMSG) /* SYBESMSG: the server's message came already */
        return INT_CANCEL;
    tds_failure *f = &c->fail;
    if (dberr == SYBEICONVI || dberr == SYBEICONVIU || dberr == SYBEICONVO)
        f->conversion = 1;
    if (is_link_error(dberr))
        c->dead = 1;
    if (!f->client) {
        f->client = dberr;
        f->oserr = oserr;
        if (oserr > 0 && oserrstr && *oserrstr)
            snprintf(f->client_text, sizeof f->client_text, "%s (%s)", dberrstr ? dberrstr : "",
                     oserrstr);
        else
            snprintf(f->client_text, sizeof f->client_text, "%s", dberrstr ? dberrstr : "");
    }
    return INT_CANCEL;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;

static void init_dblib(void)
{
    if (dbinit() == FAIL) {
        init_failed = 1;
        return;
    }
    dberrhandle(on_error);
    dbmsghandle(on_message);
}

/* SQL Server error numbers whose class the severity does not tell. */
static const struct {
    int number;
    int category;
    const char *state;
} known_errors[] = {
    {18456, DBP_E_AUTH, "28000"},   /* login failed */
    {18452, DBP_E_AUTH, "28000"},   /* untrusted domain */
    {18470, DBP_E_AUTH, "28000"},   /* login disabled */
    {18486, DBP_E_AUTH, "28000"},   /* locked out */
    {18487, DBP_E_AUTH, "28000"},   /* password expired */
    {18488, DBP_E_AUTH, "28000"},   /* password must change */
    {4060, DBP_E_SERVER, "08004"},  /* cannot open the login's database */
    {4064, DBP_E_SERVER, "08004"},  /* cannot open the default database */
    {1205, DBP_E_SERVER, "40001"},  /* deadlock victim: retry */
    {3960, DBP_E_SERVER, "40001"},  /* snapshot update conflict: retry */
    {1222, DBP_E_SERVER, "HYT00"},  /* lock timeout */
    {2627, DBP_E_SERVER, "23000"},  /* unique/primary key */
    {2601, DBP_E_SERVER, "23000"},  /* unique index */
    {547, DBP_E_SERVER, "23000"},   /* foreign key / check */
    {515, DBP_E_SERVER, "23000"},   /* NULL into NOT NULL */
    {2628, DBP_E_DATA, "22001"},    /* string or binary truncated */
    {8152, DBP_E_DATA, "22001"},
    {8115, DBP_E_DATA, "22003"},    /* arithmetic overflow */
    {220, DBP_E_DATA, "22003"},
    {232, DBP_E_DATA, "22003"},
    {8134, DBP_E_DATA, "22012"},    /* divide by zero */
    {241, DBP_E_DATA, "22007"},     /* bad date/time text */
    {242, DBP_E_DATA, "22008"},     /* date/time out of range */
    {245, DBP_E_DATA, "22018"},     /* conversion failed */
    {8114, DBP_E_DATA, "22018"},
    {8169, DBP_E_DATA, "22018"},
    {207, DBP_E_SERVER, "42S22"},   /* invalid column */
    {208, DBP_E_SERVER, "42S02"},   /* invalid object */
    {2714, DBP_E_SERVER, "42S01"},  /* object exists */
    {266, DBP_E_SERVER, "25000"},   /* transaction count mismatch */
    {3902, DBP_E_SERVER, "25000"},  /* COMMIT without BEGIN */
    {3903, DBP_E_SERVER, "25000"},  /* ROLLBACK without BEGIN */
    {3930, DBP_E_SERVER, "25000"},  /* uncommittable transaction */
    {3617, DBP_E_CANCELLED, "HY008"}, /* cancelled by an attention */
};

/* Fills `err` from the server's error: native code = its number, message
 * = its text, detail = severity (class), state, procedure and line. */
int tds_server_error(const tds_failure *f, int login, dbp_error *err)
{
    int category = DBP_E_SERVER;
    const char *state = f->severity >= 17 ? "HY000" : "42000";
    int known = 0;
    for (size_t i = 0; i < sizeof known_errors / sizeof *known_errors; i++)
        if (known_errors[i].number == f->number) {
            category = known_errors[i].category;
            state = known_errors[i].state;
            known = 1;
            break;
        }
    if (login && !known) /* the server rejected the connection */
        category = DBP_E_SERVER, state = "08004";
    else if (!known && f->severity >= 20)
        category = DBP_E_NETWORK, state = "08S01";
    dbp_error_set(err, category, f->number, state, "%s", f->message);
    if (err) {
        if (f->procname[0])
            snprintf(err->detail, sizeof err->detail,
                     "SQL Server error %d, severity %d, state %d, procedure %s, line %d",
                     f->number, f->severity, f->state, f->procname, f->line);
        else
            snprintf(err->detail, sizeof err->detail,
                     "SQL Server error %d, severity %d, state %d, line %d", f->number,
                     f->severity, f->state, f->line);
    }
    return category;
}

/* The error of a failed call, in order of weight: a lost connection, a
 * cancel, the server's error, db-lib's. */
int tds_call_error(tds_conn *c, dbp_error *err)
{
    tds_failure *f = &c->fail;
    if (c->proc && DBDEAD(c->proc))
        c->dead = 1;
    if (c->dead) {
        if (f->server && f->severity >= 20) {
            tds_server_error(f, 0, err);
            if (err)
                err->category = DBP_E_NETWORK;
            return DBP_E_NETWORK;
        }
        return dbp_error_set(err, DBP_E_NETWORK, f->client, "08S01",
                             "the connection to SQL Server was lost: %s",
                             f->client_text[0] ? f->client_text : "the server closed it");
    }
    if ((c->attention_sent || tds_cancel_requested(c)) && past_deadline(c))
        return dbp_error_set(err, DBP_E_QUERY_TIMEOUT, 0, "HYT00",
                             "the statement passed its deadline and was cancelled");
    if (c->attention_sent || (tds_cancel_requested(c) && !f->server))
        return dbp_error_set(err, DBP_E_CANCELLED, 0, "HY008", "statement cancelled");
    if (f->server)
        return tds_server_error(f, 0, err);
    if (f->conversion)
        return dbp_error_set(err, DBP_E_DATA, f->client, "22021",
                             "FreeTDS could not convert some characters between UTF-8 and the "
                             "server's character set: %s", f->client_text);
    if (f->client == SYBEMEM)
        return dbp_error_nomem(err);
    if (f->client)
        return dbp_error_set(err, DBP_E_PROTOCOL, f->client, NULL, "FreeTDS db-lib: %s",
                             f->client_text);
    return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                         "FreeTDS db-lib reported a failure without a message");
}

int tds_failed(const tds_conn *c)
{
    return c->fail.server || c->fail.client || c->fail.conversion || c->dead ||
           c->attention_sent;
}

/* Starts a driver call: a clean error slot, the caller's cancel flag. */
void tds_call_begin(tds_conn *c, const dbp_exec_ctx *ctx)
{
    memset(&c->fail, 0, sizeof c->fail);
    c->attention_sent = 0;
    c->attention_polls = 0;
    atomic_store(&c->interrupted, 0);
    c->ctx = ctx;
    c->cancelled = ctx ? ctx->cancelled : NULL;
    current = c;
}

void tds_call_end(tds_conn *c)
{
    /* After an attention, make sure its acknowledgement was read: dbcancel
     * returns at once when nothing is pending. */
    if (c->attention_sent && c->proc && !c->dead && !DBDEAD(c->proc))
        dbcancel(c->proc);
    c->ctx = NULL;
    c->cancelled = NULL;
    current = NULL;
}

/* ---- running commands -------------------------------------------------------------- */

/* Stops what the server is sending: an attention, then everything up to
 * its acknowledgement is read and dropped. */
void tds_cancel_results(tds_conn *c)
{
    if (c->dead || DBDEAD(c->proc))
        return;
    c->attention_sent = 1; /* the poll handler must not send another */
    dbcancel(c->proc);
}

/* Reads every remaining result of the current command, adding the rows
 * statements changed to *affected (may be NULL); rows are dropped. A
 * cancel stops it with an attention. */
void tds_drain(tds_conn *c, int64_t *affected)
{
    DBPROCESS *proc = c->proc;
    int fails = 0;
    for (;;) {
        if (c->dead || c->attention_sent)
            return; /* an attention ended the command */
        RETCODE r = dbresults(proc);
        if (r == NO_MORE_RESULTS)
            return;
        if (r == FAIL) {
            if (DBDEAD(proc) || ++fails > 1000) {
                tds_cancel_results(c);
                return;
            }
            continue;
        }
        if (dbnumcols(proc) > 0) {
            STATUS row;
            long n = 0;
            while ((row = dbnextrow(proc)) != NO_MORE_ROWS) {
                if (row == FAIL)
                    break;
                if ((++n & 255) == 0 && tds_cancel_requested(c)) {
                    tds_cancel_results(c);
                    return;
                }
            }
        } else if (affected && DBCOUNT(proc) > 0) {
            *affected += DBCOUNT(proc);
        }
    }
}

/* Sends a SQL batch (NUL-terminated) and waits for its first answer. */
void tds_send_batch(tds_conn *c, const char *sql)
{
    if (tds_cancel_requested(c)) {
        c->attention_sent = 1; /* reported as a cancel; nothing went out */
        return;
    }
    if (dbcmd(c->proc, sql) == SUCCEED)
        dbsqlexec(c->proc); /* FAIL: the first statement failed; the rest still comes */
}

void tds_run_own(tds_conn *c, const char *sql, int *last_int)
{
    tds_send_batch(c, sql);
    DBPROCESS *proc = c->proc;
    int fails = 0;
    while (!c->dead && !c->attention_sent) {
        RETCODE r = dbresults(proc);
        if (r == NO_MORE_RESULTS)
            break;
        if (r == FAIL) {
            if (DBDEAD(proc) || ++fails > 1000)
                break;
            continue;
        }
        STATUS row;
        while ((row = dbnextrow(proc)) != NO_MORE_ROWS && row != FAIL) {
            BYTE *data = dbdata(proc, 1);
            if (last_int && data && dbnumcols(proc) == 1 && dbcoltype(proc, 1) == SYBINT4) {
                DBINT n;
                memcpy(&n, data, sizeof n);
                *last_int = n;
            }
        }
    }
    if (c->proc && DBDEAD(c->proc))
        c->dead = 1;
}

/* Reads @@TRANCOUNT again, keeping the call's first error. */
void tds_refresh_trancount(tds_conn *c)
{
    if (c->dead)
        return;
    int was_attention = c->attention_sent;
    if (was_attention && !DBDEAD(c->proc))
        dbcancel(c->proc); /* the attention's acknowledgement first */
    atomic_int *flag = &c->interrupted;
    const atomic_int *cancelled = c->cancelled;
    c->cancelled = NULL; /* a cancel must not stop this bookkeeping */
    int interrupted = atomic_exchange(flag, 0);
    c->attention_sent = 0;
    tds_failure saved = c->fail;
    tds_run_own(c, "SELECT @@TRANCOUNT", &c->trancount);
    c->fail = saved;
    c->attention_sent = was_attention || c->attention_sent;
    c->cancelled = cancelled;
    if (interrupted)
        atomic_store(flag, 1);
}


/* Whether `sql` may change the transaction count by itself (BEGIN TRAN,
 * COMMIT, ROLLBACK, SET IMPLICIT_TRANSACTIONS, XACT_ABORT, ...). Once a
 * session turns on implicit transactions every statement may open one. */
int tds_touches_transactions(tds_conn *c, const char *sql, size_t len)
{
    if (dbp_text_mentions(sql, len, "IMPLICIT_TRANSACTIONS") ||
        dbp_text_mentions(sql, len, "ANSI_DEFAULTS"))
        c->implicit_mode = 1;
    return c->implicit_mode || dbp_text_mentions(sql, len, "TRAN") ||
           dbp_text_mentions(sql, len, "COMMIT") ||
           dbp_text_mentions(sql, len, "ROLLBACK") || dbp_text_mentions(sql, len, "XACT");
}

/* After a user statement: re-read the transaction count when it may have
 * changed. */
void tds_after_statement(tds_conn *c, int touches)
{
    if (touches || (c->trancount > 0 && tds_failed(c)))
        tds_refresh_trancount(c);
}

int tds_dblib_init(void)
{
    pthread_once(&init_once, init_dblib);
    return init_failed ? -1 : 0;
}

