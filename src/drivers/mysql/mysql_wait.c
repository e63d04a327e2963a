/* mysql_wait.c - every wait of the MySQL/MariaDB driver on its server.
 *
 * The connector's non-blocking calls return what they wait for (readable,
 * writable, a timeout of their own); my_wait() polls the socket and the
 * eventfd interrupt() writes, in slices of at most a second, within the
 * call's bounds (driver.h). Once the call is cancelled or its deadline
 * passes, KILL QUERY <thread id> goes to the server over a connection of
 * its own, which a short-lived detached thread opens (a blocking login,
 * bounded by the grace through the connector's own timeouts); the server
 * then ends the statement with error 1317 and the session stays usable. If
 * the statement has not ended when the grace runs out, the connection is
 * given up. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "mysql_internal.h"
#include "side_job.h"

#define SLICE_NS ((int64_t)1000000000)

/* MySQL / MariaDB error numbers the driver tells apart. */
enum {
    ER_DBACCESS_DENIED = 1044,
    ER_ACCESS_DENIED = 1045,
    ER_CON_COUNT = 1040,
    ER_SERVER_SHUTDOWN = 1053,
    ER_QUERY_INTERRUPTED = 1317,
    ER_ACCESS_DENIED_NO_PASSWORD = 1698,
    ER_MUST_CHANGE_PASSWORD = 1820,
    ER_PASSWORD_EXPIRED = 1862,
    ER_CONNECTION_KILLED = 1927,
    ER_STATEMENT_TIMEOUT = 1969,
    ER_CLIENT_FIRST = 2000,
    ER_CLIENT_LAST = 2999,
};

/* ---- logins ------------------------------------------------------------------ */

void my_login_free(my_login *l)
{
    dbp_free(l->host);
    dbp_free(l->user);
    dbp_free_secret(l->password);
    dbp_free(l->database);
    dbp_free(l->unix_socket);
    dbp_free(l->ssl_ca);
    dbp_free(l->ssl_cert);
    dbp_free(l->ssl_key);
    memset(l, 0, sizeof *l);
}

static int copy_text(char **to, const char *from)
{
    *to = NULL;
    return !from || (*to = dbp_strdup(from)) != NULL;
}

int my_login_copy(my_login *to, const my_login *from)
{
    memset(to, 0, sizeof *to);
    to->port = from->port;
    to->ssl_mode = from->ssl_mode;
    int ok = copy_text(&to->host, from->host) & copy_text(&to->user, from->user) &
             copy_text(&to->password, from->password) & copy_text(&to->database, from->database) &
             copy_text(&to->unix_socket, from->unix_socket) & copy_text(&to->ssl_ca, from->ssl_ca) &
             copy_text(&to->ssl_cert, from->ssl_cert) & copy_text(&to->ssl_key, from->ssl_key);
    if (!ok)
        my_login_free(to);
    return ok ? DBP_OK : DBP_E_NOMEM;
}

/* The connector options of a login: TLS, utf8mb4, and (with `blocking_ms`
 * > 0, for a cancel's own connection) timeouts on every blocking step. */
static void apply_login_options(MYSQL *db, const my_login *l, unsigned blocking_s)
{
    mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (blocking_s) {
        mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &blocking_s);
        mysql_optionsv(db, MYSQL_OPT_READ_TIMEOUT, &blocking_s);
        mysql_optionsv(db, MYSQL_OPT_WRITE_TIMEOUT, &blocking_s);
    }
    my_bool on = 1, off = 0;
    if (l->ssl_mode == MY_SSL_DISABLED) {
        mysql_optionsv(db, MYSQL_OPT_SSL_ENFORCE, &off);
        return;
    }
    if (l->ssl_ca)
        mysql_optionsv(db, MYSQL_OPT_SSL_CA, l->ssl_ca);
    if (l->ssl_cert)
        mysql_optionsv(db, MYSQL_OPT_SSL_CERT, l->ssl_cert);
    if (l->ssl_key)
        mysql_optionsv(db, MYSQL_OPT_SSL_KEY, l->ssl_key);
    if (l->ssl_mode >= MY_SSL_REQUIRED)
        mysql_optionsv(db, MYSQL_OPT_SSL_ENFORCE, &on);
    my_bool verify = l->ssl_mode >= MY_SSL_VERIFY_IDENTITY;
    mysql_optionsv(db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
}

/* ---- cancel ------------------------------------------------------------------ */

/* What the KILL's own thread needs: a copy of the login (the pool may
 * free its settings before the thread ends) and the session to stop. */
typedef struct kill_order {
    my_login login;
    unsigned long thread_id;
    unsigned timeout_s;
} kill_order;

static void send_kill(void *arg)
{
    kill_order *k = arg;
    MYSQL *db = mysql_init(NULL);
    if (!db)
        return;
    apply_login_options(db, &k->login, k->timeout_s);
    const my_login *l = &k->login;
    if (mysql_real_connect(db, l->host, l->user, l->password, NULL, l->port, l->unix_socket, 0)) {
        char sql[64];
        snprintf(sql, sizeof sql, "KILL QUERY %lu", k->thread_id);
        mysql_query(db, sql); /* a failure still ends the wait */
    }
    mysql_close(db);
}

static void free_kill(void *arg)
{
    kill_order *k = arg;
    my_login_free(&k->login);
    dbp_free(k);
}

/* Sends KILL QUERY over a connection of its own, once per call, without
 * waiting; without one in flight (too many, no memory) the grace simply
 * runs out. */
static void request_cancel(my_conn *c, int for_deadline, int64_t now)
{
    c->cancel_sent_ns = now;
    c->timed_out = for_deadline;
    kill_order *k = dbp_calloc(1, sizeof *k);
    if (!k || my_login_copy(&k->login, &c->cfg->login) != DBP_OK) {
        dbp_free(k);
        return;
    }
    k->thread_id = c->thread_id;
    int64_t grace_s = (c->ctx->cancel_grace_ns + 999999999) / 1000000000;
    k->timeout_s = (unsigned)(grace_s < 1 ? 1 : grace_s > 60 ? 60 : grace_s);
    c->cancel_job = dbp_side_job_start(send_kill, k, free_kill);
}

void my_cancel(my_conn *c)
{
    if (!c->cancel_sent_ns && c->thread_id)
        request_cancel(c, 0, dbp_now_ns());
}

/* A KILL still on its way could hit the connection's next statement: the
 * call waits for it within the grace, or gives the connection up. */
static void await_cancel(my_conn *c)
{
    dbp_side_job *job = c->cancel_job;
    c->cancel_job = NULL;
    if (!dbp_side_job_wait(job, c->cancel_sent_ns + c->ctx->cancel_grace_ns))
        c->dead = 1;
}

void my_call_begin(my_conn *c, const dbp_exec_ctx *ctx)
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

int my_read_outcome(my_conn *c, int rc, dbp_error *err)
{
    if (rc != DBP_OK || !c->cancel_sent_ns)
        return rc;
    return dbp_error_set(err, c->timed_out ? DBP_E_QUERY_TIMEOUT : DBP_E_CANCELLED, 1317,
                         "70100",
                         "the statement was stopped with KILL QUERY; rows it returned are not "
                         "used, since a stopped MySQL statement may end with normal-looking "
                         "values (SLEEP() returns 1, BENCHMARK() 0)");
}

void my_call_end(my_conn *c)
{
    if (c->cancel_job)
        await_cancel(c);
    c->ctx = NULL;
}

/* ---- errors ------------------------------------------------------------------ */

static int category_of(my_conn *c, unsigned no, const char *state)
{
    switch (no) {
    case ER_ACCESS_DENIED:
    case ER_DBACCESS_DENIED:
    case ER_ACCESS_DENIED_NO_PASSWORD:
    case ER_MUST_CHANGE_PASSWORD:
    case ER_PASSWORD_EXPIRED:
        return DBP_E_AUTH;
    case ER_QUERY_INTERRUPTED:
        return c->cancel_sent_ns && c->timed_out ? DBP_E_QUERY_TIMEOUT : DBP_E_CANCELLED;
    case ER_STATEMENT_TIMEOUT:
        return DBP_E_QUERY_TIMEOUT;
    case ER_CON_COUNT:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
        return DBP_E_NETWORK;
    default:
        break;
    }
    if (no >= ER_CLIENT_FIRST && no <= ER_CLIENT_LAST)
        return DBP_E_NETWORK; /* the connector's own: lost, refused, TLS, out of sync */
    if (strncmp(state, "08", 2) == 0)
        return DBP_E_NETWORK;
    if (strncmp(state, "28", 2) == 0)
        return DBP_E_AUTH;
    return DBP_E_SERVER;
}

int my_error(my_conn *c, MYSQL_STMT *stmt, dbp_error *err)
{
    if (stmt && !mysql_stmt_errno(stmt))
        stmt = NULL; /* some failures are recorded on the connection only */
    unsigned no = stmt ? mysql_stmt_errno(stmt) : mysql_errno(c->db);
    const char *state = stmt ? mysql_stmt_sqlstate(stmt) : mysql_sqlstate(c->db);
    const char *text = stmt ? mysql_stmt_error(stmt) : mysql_error(c->db);
    if (!no) { /* a failure the connector did not describe */
        no = 2000;
        text = "unknown error from the MySQL client library";
    }
    int category = category_of(c, no, state ? state : "");
    if (category == DBP_E_NETWORK)
        c->dead = 1;
    /* 00000 and HY000 say nothing */
    const char *shown = state && strcmp(state, "00000") != 0 && strcmp(state, "HY000") != 0
                            ? state
                            : NULL;
    return dbp_error_set(err, category, (int)no, shown, "%s", text && *text ? text : "error");
}

/* ---- waiting ----------------------------------------------------------------- */

static int give_up(my_conn *c, int *rc, dbp_error *err)
{
    c->dead = 1;
    long long grace_ms = (long long)(c->ctx->cancel_grace_ns / 1000000);
    *rc = dbp_error_set(err, c->timed_out ? DBP_E_QUERY_TIMEOUT : DBP_E_CANCELLED, 0, "70100",
                        "%s; the server did not end the statement within cancel_grace (%lld "
                        "ms) after KILL QUERY, so the connection is closed",
                        c->timed_out ? "the statement passed its deadline" : "cancelled",
                        grace_ms);
    return -1;
}

/* Cancelled or past its deadline before the server knows a session to
 * kill (connecting): stop at once. */
static int stop_now(my_conn *c, int cancelled, int *rc, dbp_error *err)
{
    c->dead = 1;
    *rc = cancelled ? dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "cancelled while connecting")
                    : dbp_error_set(err, DBP_E_TIMEOUT, 0, "08001",
                                    "connecting to MySQL did not finish in time");
    return -1;
}

/* A cancel that reaches the server before the statement has started is
 * lost (the session is not running anything yet, so there is nothing to
 * stop): once it has been processed and a quarter of the grace has passed
 * with the statement still running, it is sent once more. */
#define RESEND_POLL_NS ((int64_t)50000000)
static void resend_lost_cancel(my_conn *c, int64_t now)
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

int my_wait(my_conn *c, int status, int *rc, dbp_error *err)
{
    const dbp_exec_ctx *ctx = c->ctx;
    int64_t lib_until = INT64_MAX;
    if (status & MYSQL_WAIT_TIMEOUT)
        lib_until = dbp_now_ns() + (int64_t)mysql_get_timeout_value_ms(c->db) * 1000000;
    for (;;) {
        int64_t now = dbp_now_ns();
        if (!c->cancel_sent_ns) {
            int stop = atomic_load(ctx->cancelled);
            if ((stop || now >= ctx->deadline_ns) && !c->thread_id)
                return stop_now(c, stop, rc, err);
            if (stop || now >= ctx->deadline_ns)
                request_cancel(c, !stop, now);
        }
        int64_t until = c->cancel_sent_ns ? c->cancel_sent_ns + ctx->cancel_grace_ns
                                          : ctx->deadline_ns;
        if (c->cancel_sent_ns && now >= until)
            return give_up(c, rc, err);
        if (now >= lib_until)
            return MYSQL_WAIT_TIMEOUT;
        int64_t end = until < lib_until ? until : lib_until;
        if (c->cancel_sent_ns)
            resend_lost_cancel(c, now);
        int64_t cap = c->cancel_sent_ns && !c->cancel_resent ? RESEND_POLL_NS : SLICE_NS;
        int64_t slice = end - now < cap ? end - now : cap;
        short events = (short)(((status & MYSQL_WAIT_READ) ? POLLIN : 0) |
                               ((status & MYSQL_WAIT_WRITE) ? POLLOUT : 0) |
                               ((status & MYSQL_WAIT_EXCEPT) ? POLLPRI : 0));
        struct pollfd fds[2] = {{.fd = mysql_get_socket(c->db), .events = events},
                                {.fd = c->cancel_fd, .events = POLLIN}};
        int ready = poll(fds, 2, (int)((slice + 999999) / 1000000));
        if (ready < 0 && errno != EINTR) {
            c->dead = 1;
            *rc = dbp_error_set(err, DBP_E_NETWORK, errno, NULL, "poll failed: %s",
                                strerror(errno));
            return -1;
        }
        if (ready <= 0)
            continue;
        if (fds[1].revents & POLLIN) { /* interrupt(): the flag says why */
            uint64_t count;
            ssize_t n = read(c->cancel_fd, &count, sizeof count);
            (void)n;
        }
        short got = fds[0].revents;
        int happened = ((got & (POLLIN | POLLHUP | POLLERR)) ? MYSQL_WAIT_READ : 0) |
                       ((got & (POLLOUT | POLLERR)) ? MYSQL_WAIT_WRITE : 0) |
                       ((got & POLLPRI) ? MYSQL_WAIT_EXCEPT : 0);
        if (happened & status)
            return happened & status;
    }
}

int my_connect(MYSQL *db, const my_login *l, int64_t connect_timeout_ms, my_conn *c,
               dbp_error *err)
{
    mysql_options(db, MYSQL_OPT_NONBLOCK, 0);
    apply_login_options(db, l, 0);
    unsigned secs = (unsigned)((connect_timeout_ms + 999) / 1000);
    mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    /* LOAD DATA LOCAL is negotiated at login; the guard serves write_frame's
     * own data and refuses every other request (mysql_bulk.c) */
    unsigned int on = 1;
    mysql_optionsv(db, MYSQL_OPT_LOCAL_INFILE, &on);
    my_infile_guard(db);
    MYSQL *ret = NULL;
    int rc = DBP_OK, status;
    MY_RUN(c, status,
           mysql_real_connect_start(&ret, db, l->host, l->user, l->password, l->database, l->port,
                                    l->unix_socket,
                                    CLIENT_MULTI_STATEMENTS | CLIENT_FOUND_ROWS | CLIENT_LOCAL_FILES),
           mysql_real_connect_cont(&ret, db, status), rc, err);
    if (rc != DBP_OK)
        return rc;
    if (!ret)
        return my_error(c, NULL, err);
    c->thread_id = mysql_thread_id(db);
    return DBP_OK;
}

/* Reads and drops the rows of a result the caller does not want. */
static int discard_rows(my_conn *c, MYSQL_RES *res, dbp_error *err)
{
    int rc = DBP_OK, status;
    MYSQL_ROW row = NULL;
    do {
        MY_RUN(c, status, mysql_fetch_row_start(&row, res), mysql_fetch_row_cont(&row, res, status),
               rc, err);
    } while (rc == DBP_OK && row);
    if (rc == DBP_OK && mysql_errno(c->db))
        rc = my_error(c, NULL, err);
    if (rc == DBP_OK) {
        MY_RUN(c, status, mysql_free_result_start(res), mysql_free_result_cont(res, status), rc,
               err);
    } else {
        c->dead = 1; /* the rest of the result is still on the wire */
        mysql_free_result(res);
    }
    return rc;
}

int my_query(my_conn *c, const char *sql, size_t len, int64_t *affected, dbp_error *err)
{
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_real_query_start(&ret, c->db, sql, (unsigned long)len),
           mysql_real_query_cont(&ret, c->db, status), rc, err);
    if (rc != DBP_OK)
        return rc;
    if (c->ctx->replied)
        *c->ctx->replied = 1;
    for (;;) {
        if (ret)
            return my_error(c, NULL, err);
        MYSQL_RES *res = mysql_use_result(c->db);
        if (res)
            rc = discard_rows(c, res, err);
        else if (mysql_field_count(c->db) != 0)
            return my_error(c, NULL, err);
        else if (affected)
            *affected += (int64_t)mysql_affected_rows(c->db);
        if (rc != DBP_OK || !mysql_more_results(c->db))
            return rc;
        MY_RUN(c, status, mysql_next_result_start(&ret, c->db),
               mysql_next_result_cont(&ret, c->db, status), rc, err);
        if (rc != DBP_OK)
            return rc;
        ret = ret > 0; /* -1: no more results, 0: one more, > 0: an error */
    }
}
