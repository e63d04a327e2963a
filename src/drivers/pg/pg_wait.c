/* pg_wait.c - every wait of the PostgreSQL driver on its server.
 *
 * Connections are in libpq's non-blocking mode. The worker waits in poll()
 * on the socket and on an eventfd that interrupt() writes, in slices of at
 * most a second, within the call's bounds (driver.h): once the call is
 * cancelled or its deadline passes, a cancel request goes to the server,
 * which then has cancel_grace to end the statement. A statement that ends,
 * cancelled or not, leaves the connection clean; if it does not end in time
 * the connection is given up.
 *
 * libpq before 17 has only the blocking PQcancel, which opens a connection
 * of its own and can wait forever on a server that accepts it and never
 * answers (a frozen host, a black hole). So a short-lived detached thread
 * sends it, and the worker waits for it only within the grace: a call that
 * sent a cancel ends once the server has processed it (as PQcancel does, so
 * that it cannot hit the connection's next statement), or gives the
 * connection up. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"
#include "side_job.h"

/* Longest single poll(): a wait looks at its bounds at least this often. */
#define SLICE_NS ((int64_t)1000000000)

/* Waits until the call's cancel was processed, within the grace; a cancel
 * still pending then could hit the next statement, so the connection is
 * given up. */
static void await_cancel(pg_conn *c)
{
    dbp_side_job *job = c->cancel_job;
    c->cancel_job = NULL;
    if (!dbp_side_job_wait(job, c->cancel_sent_ns + c->ctx->cancel_grace_ns))
        c->dead = 1;
}

void pg_call_begin(pg_conn *c, const dbp_exec_ctx *ctx)
{
    unsigned sent = atomic_load(&c->interrupts);
    if (sent != c->interrupts_seen) { /* an interrupt meant for a call that already ended */
        uint64_t stale;
        ssize_t n = read(c->cancel_fd, &stale, sizeof stale);
        (void)n;
        c->interrupts_seen = sent;
    }
    c->ctx = ctx;
    c->cancel_sent_ns = 0;
    c->cancel_resent = 0;
    c->timed_out = 0;
    if (ctx->replied)
        *ctx->replied = 0;
}

void pg_call_end(pg_conn *c)
{
    if (c->cancel_job)
        await_cancel(c);
    c->ctx = NULL;
}

int pg_error(pg_conn *c, const PGresult *res, dbp_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *message = primary ? primary : PQerrorMessage(c->pg);
    int category = DBP_E_SERVER;
    if (PQstatus(c->pg) == CONNECTION_BAD || !state)
        category = DBP_E_NETWORK;
    else if (strcmp(state, "57014") == 0) /* ours, or the server's statement_timeout */
        category = c->cancel_sent_ns ? (c->timed_out ? DBP_E_QUERY_TIMEOUT : DBP_E_CANCELLED)
                   : strstr(message, "statement timeout") ? DBP_E_QUERY_TIMEOUT
                                                          : DBP_E_CANCELLED;
    else if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
             strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        category = DBP_E_NETWORK;
    else if (strncmp(state, "28", 2) == 0)
        category = DBP_E_AUTH;
    /* libpq's own messages end in a newline */
    size_t len = strlen(message);
    while (len && (message[len - 1] == '\n' || message[len - 1] == ' '))
        len--;
    dbp_error_set(err, category, 0, state, "%.*s", (int)len, message);
    if (err && res) {
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        snprintf(err->detail, sizeof err->detail, "%s", detail ? detail : "");
        snprintf(err->hint, sizeof err->hint, "%s", hint ? hint : "");
    }
    return category;
}

void pg_on_notice(void *arg, const PGresult *res)
{
    pg_conn *c = arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    /* libpq passes an error that arrives on an idle connection as a notice;
     * a FATAL one (the server shutting down or restarting) ends it */
    if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
        c->dead = 1;
    if (!c->ctx || !c->ctx->notice)
        return;
    const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    c->ctx->notice(c->ctx->notice_arg, severity ? severity : "NOTICE", text ? text : "");
}

/* ---- cancel ------------------------------------------------------------------ */

static void send_cancel(void *arg)
{
    char why[256];
    PQcancel(arg, why, sizeof why); /* a failure still ends the wait */
}

static void free_cancel(void *arg)
{
    PQfreeCancel(arg);
}

/* Asks the server to cancel the running statement, once per call, without
 * waiting for anything. Without a cancel request in flight (too many at
 * once, or no memory) the grace simply runs out. */
static void request_cancel(pg_conn *c, int for_deadline, int64_t now)
{
    c->cancel_sent_ns = now;
    c->timed_out = for_deadline;
    PGcancel *cancel = PQgetCancel(c->pg);
    c->cancel_job = cancel ? dbp_side_job_start(send_cancel, cancel, free_cancel) : NULL;
}

void pg_cancel(pg_conn *c)
{
    if (!c->cancel_sent_ns)
        request_cancel(c, 0, dbp_now_ns());
}

/* The server did not end the statement within the grace after the cancel:
 * the connection's state is unknown, so it is never used again. */
static int give_up(pg_conn *c, dbp_error *err)
{
    c->dead = 1;
    long long grace_ms = (long long)(c->ctx->cancel_grace_ns / 1000000);
    if (c->timed_out)
        return dbp_error_set(err, DBP_E_QUERY_TIMEOUT, 0, "57014",
                             "the statement passed its deadline and the server did not confirm "
                             "its cancel within cancel_grace (%lld ms); the connection is "
                             "closed",
                             grace_ms);
    return dbp_error_set(err, DBP_E_CANCELLED, 0, "57014",
                         "cancelled; the server did not confirm the cancel within cancel_grace "
                         "(%lld ms), so the connection is closed",
                         grace_ms);
}

/* ---- waiting ----------------------------------------------------------------- */

/* A cancel that reaches the server before the statement has started is
 * lost (the session is not running anything yet, so there is nothing to
 * stop): once it has been processed and a quarter of the grace has passed
 * with the statement still running, it is sent once more. */
#define RESEND_POLL_NS ((int64_t)50000000)
static void resend_lost_cancel(pg_conn *c, int64_t now)
{
    if (c->cancel_resent || !c->cancel_job || now < c->cancel_sent_ns + c->ctx->cancel_grace_ns / 4 ||
        !dbp_side_job_done(c->cancel_job))
        return;
    dbp_side_job_wait(c->cancel_job, 0); /* done: lets go of it */
    c->cancel_job = NULL;
    c->cancel_resent = 1;
    int64_t first = c->cancel_sent_ns;
    request_cancel(c, c->timed_out, now);
    c->cancel_sent_ns = first; /* the grace still counts from the first */
}

int pg_wait(pg_conn *c, int for_write, dbp_error *err)
{
    const dbp_exec_ctx *ctx = c->ctx;
    for (;;) {
        int64_t now = dbp_now_ns();
        if (!c->cancel_sent_ns) {
            int stop = atomic_load(ctx->cancelled);
            if (stop || now >= ctx->deadline_ns)
                request_cancel(c, !stop, now);
        }
        int64_t until = c->cancel_sent_ns ? c->cancel_sent_ns + ctx->cancel_grace_ns
                                          : ctx->deadline_ns;
        if (c->cancel_sent_ns && now >= until)
            return give_up(c, err);
        if (c->cancel_sent_ns)
            resend_lost_cancel(c, now);
        int64_t cap = c->cancel_sent_ns && !c->cancel_resent ? RESEND_POLL_NS : SLICE_NS;
        int64_t slice = until - now < cap ? until - now : cap;
        struct pollfd fds[2] = {
            {.fd = PQsocket(c->pg), .events = (short)(POLLIN | (for_write ? POLLOUT : 0))},
            {.fd = c->cancel_fd, .events = POLLIN}};
        int ready = poll(fds, 2, (int)((slice + 999999) / 1000000));
        if (ready < 0 && errno != EINTR)
            return dbp_error_set(err, DBP_E_NETWORK, errno, NULL, "poll failed: %s",
                                 strerror(errno));
        if (ready <= 0)
            continue;
        if (fds[1].revents & POLLIN) { /* interrupt(): the flag says why */
            uint64_t count;
            ssize_t n = read(c->cancel_fd, &count, sizeof count);
            (void)n;
        }
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            if (!PQconsumeInput(c->pg))
                return pg_error(c, NULL, err);
            return DBP_OK;
        }
        if (for_write && (fds[0].revents & POLLOUT))
            return DBP_OK;
    }
}

int pg_flush(pg_conn *c, dbp_error *err)
{
    int r;
    while ((r = PQflush(c->pg)) == 1) {
        int rc = pg_wait(c, 1, err);
        if (rc != DBP_OK)
            return rc;
    }
    return r < 0 ? pg_error(c, NULL, err) : DBP_OK;
}

int pg_next_result(pg_conn *c, PGresult **out, dbp_error *err)
{
    *out = NULL;
    int rc = pg_flush(c, err);
    while (rc == DBP_OK && PQisBusy(c->pg))
        rc = pg_wait(c, 0, err);
    if (rc == DBP_OK)
        *out = PQgetResult(c->pg);
    if (*out && c->ctx->replied)
        *c->ctx->replied = 1;
    return rc;
}

int pg_skip_copy_out(pg_conn *c, dbp_error *err)
{
    for (;;) {
        char *chunk;
        int n = PQgetCopyData(c->pg, &chunk, 1);
        if (n > 0) {
            PQfreemem(chunk);
        } else if (n == 0) {
            int rc = pg_wait(c, 0, err);
            if (rc != DBP_OK)
                return rc;
        } else if (n == -1 || PQstatus(c->pg) == CONNECTION_OK) {
            return DBP_OK; /* the COPY ended (or had ended already) */
        } else {
            return pg_error(c, NULL, err);
        }
    }
}

int pg_put_copy(pg_conn *c, const char *data, size_t len, dbp_error *err)
{
    int r;
    while ((r = PQputCopyData(c->pg, data, (int)len)) == 0) { /* libpq's buffer is full */
        int rc = pg_wait(c, 1, err);
        if (rc == DBP_OK)
            rc = PQflush(c->pg) < 0 ? pg_error(c, NULL, err) : DBP_OK;
        if (rc != DBP_OK)
            return rc;
    }
    return r < 0 ? pg_error(c, NULL, err) : DBP_OK;
}

int pg_end_copy(pg_conn *c, const char *failure, dbp_error *err)
{
    int r;
    while ((r = PQputCopyEnd(c->pg, failure)) == 0) {
        int rc = pg_wait(c, 1, err);
        if (rc == DBP_OK)
            rc = PQflush(c->pg) < 0 ? pg_error(c, NULL, err) : DBP_OK;
        if (rc != DBP_OK)
            return rc;
    }
    return r < 0 ? pg_error(c, NULL, err) : pg_flush(c, err);
}

int pg_drain(pg_conn *c, int64_t *affected, dbp_error *err)
{
    int rc = DBP_OK;
    for (;;) {
        PGresult *res;
        int prc = pg_next_result(c, &res, rc == DBP_OK ? err : NULL);
        if (prc != DBP_OK)
            return rc == DBP_OK ? prc : rc;
        if (!res)
            break;
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_FATAL_ERROR && rc == DBP_OK) {
            rc = pg_error(c, res, err);
        } else if (status == PGRES_COPY_OUT || status == PGRES_COPY_IN ||
                   status == PGRES_COPY_BOTH) {
            /* A COPY nobody reads: end it so the connection stays usable. */
            int end = status == PGRES_COPY_IN ? pg_end_copy(c, "not supported here", NULL)
                                              : pg_skip_copy_out(c, NULL);
            if (rc == DBP_OK)
                rc = end != DBP_OK ? end
                                   : dbp_error_set(err, DBP_E_MISUSE, 0, "0A000",
                                                   "COPY FROM/TO STDIN/STDOUT is not supported "
                                                   "through execute()");
            if (end != DBP_OK) {
                PQclear(res);
                return rc;
            }
        } else if (affected && rc == DBP_OK) {
            const char *n = PQcmdTuples(res);
            if (*n)
                *affected += strtoll(n, NULL, 10);
        }
        PQclear(res);
    }
    return rc;
}

int pg_exec(pg_conn *c, const char *sql, dbp_error *err)
{
    if (!PQsendQuery(c->pg, sql))
        return pg_error(c, NULL, err);
    return pg_drain(c, NULL, err);
}

int pg_query(pg_conn *c, const char *sql, PGresult **out, dbp_error *err)
{
    *out = NULL;
    if (!PQsendQuery(c->pg, sql))
        return pg_error(c, NULL, err);
    PGresult *res;
    int rc = pg_next_result(c, &res, err);
    if (rc == DBP_OK && PQresultStatus(res) == PGRES_FATAL_ERROR)
        rc = pg_error(c, res, err);
    int end = rc == DBP_OK || res ? pg_drain(c, NULL, rc == DBP_OK ? err : NULL) : rc;
    if (rc == DBP_OK)
        rc = end;
    if (rc == DBP_OK)
        *out = res;
    else
        PQclear(res);
    return rc;
}
