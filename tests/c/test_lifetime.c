/* test_lifetime.c - a stress test of who frees what, and when: requests,
 * completion queue entries, pools and the manager, hammered from several
 * threads at once under cancels, deadlines, closing and shutdown, on the
 * real SQLite engine and on the fault engine (whose HANG ignores every
 * interrupt, like a client library that cannot be stopped).
 *
 * The lifetime rules it leans on:
 * - A request has its caller's reference; from submission to completion an
 *   in-flight reference (the worker's); and, once pushed, a completion
 *   queue's reference until drained. A request answered early (deadline,
 *   cancel or close while its engine call is stuck) is pushed at that moment
 *   with a reference of its own while the worker keeps the in-flight one.
 * - An unfinished request holds a pool reference; pools hold a manager
 *   reference, and so do leases (through their pool) and worker threads.
 *   The owner's reference goes at dbp_manager_shutdown.
 *
 * The races looked for:
 * 1. dbp_request_cancel reads req->mgr, sees the request unfinished and
 *    then takes the manager's lock: in between the request can finish, its
 *    pool be destroyed and the manager freed (after a shutdown).
 *    test_cancel_while_the_manager_goes aims at it; the window is tiny, so
 *    it shows under TSan only with the window widened by hand.
 * 2. A request marked done before it is on its completion queue: a caller
 *    who waited for every request, then drained and freed its queue, misses
 *    an entry, and the push then lands on a freed queue (batch_scenario).
 * 3. An early answer (deadline, cancel grace, close or shutdown) against
 *    the worker's own completion: a request pushed twice or never, or
 *    freed while still queued.
 * 4. A drained request that is not done yet, or whose outcome is not a
 *    category the call can produce.
 * 5. Pools closed, with a timeout, while requests wait, are queued behind
 *    stuck workers, run, or hold leases; then created again under the same
 *    name while the old pool's requests still run.
 * 6. Shutdown while requests are in every state, workers are stuck in HANG
 *    and other threads still submit, cancel, drain and release leases; the
 *    abandoned workers then finish after the owner is gone.
 * 7. Callers freeing requests in every order: before completion, between
 *    completion and drain, after drain, from another thread than the one
 *    that submitted, after the manager is gone.
 *
 * Each round makes a manager with a "lite" (SQLite) and a "fault" pool and
 * runs submitters, a canceller, a drainer and a closer that closes and
 * re-creates pools and lets HANGs go now and then. A round ends with a
 * shutdown in the middle of it all, or just after the submitters stopped,
 * or quiesces first and checks that every connection came back.
 * DBP_STRESS_SECONDS (default 3) bounds the hammering, whatever the speed
 * (ASan, valgrind); teardown adds a little. */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "db_pool.h"
#include "fault_driver.h"
#include "pool_harness.h"

#define N_SUBMITTERS 3
#define MAX_TRACKED 65536
#define MAX_HELD 64

#define BOUNDED_SQL                                                                        \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000) "         \
    "SELECT count(*) FROM c"
#define ENDLESS_SQL                                                                        \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"

static const dbp_setting memory_db[] = {{"database", ":memory:"}};

/* What the test knows of each request of a round, through its user_data:
 * how often a completion queue handed it out. */
typedef struct tracked {
    int with_cq;
    atomic_int drained;
} tracked;

static tracked tracks[MAX_TRACKED];
static atomic_int n_tracks;
/* outcomes seen, by category, so a run shows it reached every path */
static atomic_int outcomes[DBP_E_QUERY_TIMEOUT + 1];

/* The state of one round, shared by its threads. */
static struct round {
    dbp_manager *mgr;
    dbp_completion_queue *cq;
    atomic_int stop_submitting, stop_cancelling, stop_draining;
    atomic_int submitted_cq, drained;
    /* requests handed to the canceller, who becomes their caller */
    pthread_mutex_t inbox_mu;
    dbp_request *inbox[MAX_HELD];
    int inbox_n;
} R = {.inbox_mu = PTHREAD_MUTEX_INITIALIZER};

static unsigned rnd(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000L};
    nanosleep(&ts, NULL);
}

static tracked *track_new(int with_cq)
{
    int i = atomic_fetch_add(&n_tracks, 1);
    if (i >= MAX_TRACKED)
        return NULL;
    tracks[i].with_cq = with_cq;
    return &tracks[i];
}

/* Outcomes a request of this test may end with; anything else is a bug. */
static int allowed_outcome(int rc)
{
    return rc == DBP_OK || rc == DBP_E_TIMEOUT || rc == DBP_E_QUERY_TIMEOUT ||
           rc == DBP_E_CANCELLED || rc == DBP_E_CLOSED || rc == DBP_E_SERVER ||
           rc == DBP_E_NETWORK;
}

static atomic_int refusals;

/* A submission refused, as it may be while pools fill up, close and the
 * manager shuts down around it; the submitter backs off a little, as a
 * real caller would. */
static void refused(int rc)
{
    CHECK(rc == DBP_E_CLOSED || rc == DBP_E_NOT_FOUND || rc == DBP_E_POOL_FULL);
    atomic_fetch_add(&refusals, 1);
    sleep_us(200);
}

/* Reads a finished request's outcome as its caller would. */
static void check_outcome(dbp_request *req, int take_result)
{
    CHECK_EQ_INT(dbp_request_is_done(req), 1);
    dbp_error err;
    memset(&err, 0, sizeof err);
    int rc = dbp_request_status(req, &err);
    if (!allowed_outcome(rc))
        fprintf(stderr, "unexpected outcome %s: %s\n", dbp_category_name(rc), err.message);
    CHECK(allowed_outcome(rc));
    if (rc >= 0 && rc <= DBP_E_QUERY_TIMEOUT)
        atomic_fetch_add(&outcomes[rc], 1);
    CHECK(dbp_request_notices(req) != NULL);
    struct ArrowArrayStream stream;
    if (take_result && rc == DBP_OK && dbp_request_take_result(req, &stream) == DBP_OK)
        stream.release(&stream);
    if (take_result && rc == DBP_OK)
        dbp_lease_release(dbp_request_take_lease(req));
}

/* ---- what submitters send ----------------------------------------------------- */

typedef struct statement {
    const char *pool;
    dbp_op op;
    const char *sql;
    int blocks; /* only a deadline, a cancel or a close ends it */
} statement;

static const statement statements[] = {
    {"lite", DBP_OP_QUERY, "SELECT 1", 0},
    {"lite", DBP_OP_QUERY, BOUNDED_SQL, 0},
    {"lite", DBP_OP_QUERY, ENDLESS_SQL, 1},
    {"lite", DBP_OP_EXECUTE, "SELECT * FROM missing_table", 0},
    {"lite", DBP_OP_LEASE, NULL, 0},
    {"fault", DBP_OP_QUERY, "ROWS 5", 0},
    {"fault", DBP_OP_EXECUTE, "MARK 1", 0},
    {"fault", DBP_OP_EXECUTE, "BLOCK", 1},
    {"fault", DBP_OP_EXECUTE, "HANG", 1},
    {"fault", DBP_OP_EXECUTE, "FAIL 4", 0},
    {"fault", DBP_OP_LEASE, NULL, 0},
};
#define N_STATEMENTS (sizeof statements / sizeof statements[0])

/* A tiny deadline for whatever blocks, and now and then for the rest, so
 * deadlines pass while waiting for a connection, while running and while
 * finishing. */
static int64_t pick_timeout(unsigned *seed, const statement *st)
{
    if (st->blocks)
        return 1 + rnd(seed) % 30;
    return rnd(seed) % 3 == 0 ? 1 + rnd(seed) % 5 : 0;
}

/* A request with a random deadline, and half the time allowed to run on
 * the submitting thread (SQLite, waited for without a queue). */
static dbp_request *make_request(unsigned *seed, const statement *st)
{
    dbp_request *req = new_request(st->op, st->sql, NULL);
    if (req) {
        dbp_request_set_timeout(req, pick_timeout(seed, st));
        dbp_request_set_inline(req, (int)(rnd(seed) % 2));
    }
    return req;
}

/* Hands the caller's reference to the canceller; 0 when its hands are full. */
static int give_to_canceller(dbp_request *req)
{
    pthread_mutex_lock(&R.inbox_mu);
    int ok = R.inbox_n < MAX_HELD;
    if (ok)
        R.inbox[R.inbox_n++] = req;
    pthread_mutex_unlock(&R.inbox_mu);
    return ok;
}

/* One request: cancelled before submission, right after, a moment later,
 * after completion or never; handed to another thread or not; freed before
 * or after its completion. */
static void one_request(dbp_manager *mgr, unsigned *seed)
{
    const statement *st = &statements[rnd(seed) % N_STATEMENTS];
    int use_cq = rnd(seed) % 2;
    tracked *t = track_new(use_cq);
    dbp_request *req = t ? make_request(seed, st) : NULL;
    if (!req)
        return;
    dbp_request_set_user_data(req, t);
    int when = rnd(seed) % 6;
    if (when == 0)
        dbp_request_cancel(req); /* not submitted yet: harmless */
    dbp_error err;
    int rc = dbp_submit(mgr, st->pool, req, use_cq ? R.cq : NULL, &err);
    if (rc != DBP_OK) {
        refused(rc);
        t->with_cq = 0;
        dbp_request_unref(req);
        return;
    }
    if (use_cq)
        atomic_fetch_add(&R.submitted_cq, 1);
    if (when == 1)
        dbp_request_cancel(req);
    if (when == 2) {
        sleep_us(rnd(seed) % 3000);
        dbp_request_cancel(req);
    }
    if (when == 4 && give_to_canceller(req))
        return;
    if (use_cq && rnd(seed) % 2) {
        dbp_request_unref(req); /* the drainer frees it */
        return;
    }
    CHECK_EQ_INT(dbp_request_wait(req, WAIT_MS), DBP_OK);
    if (when == 3)
        dbp_request_cancel(req); /* after completion: harmless */
    check_outcome(req, !use_cq); /* a queued one's result is the drainer's to take */
    dbp_request_unref(req);
}

/* Waits for a request on a lease and frees it. */
static void finish_on_lease(dbp_request *req)
{
    CHECK_EQ_INT(dbp_request_wait(req, WAIT_MS), DBP_OK);
    check_outcome(req, 1);
    dbp_request_unref(req);
}

/* A request on a lease, or NULL when the lease refused it (lost, closed). */
static dbp_request *submit_on(dbp_lease *lease, dbp_request *req)
{
    dbp_error err;
    int rc = dbp_submit_on_lease(lease, req, NULL, &err);
    if (rc == DBP_OK)
        return req;
    CHECK(rc == DBP_E_CLOSED || rc == DBP_E_NETWORK);
    dbp_request_unref(req);
    return NULL;
}

/* A transaction whose statement is stopped by a tiny deadline or a cancel,
 * with the lease released while that statement runs, after a rollback, or
 * after the statement was freed. */
static void lease_scenario(dbp_manager *mgr, unsigned *seed)
{
    int lite = rnd(seed) % 2;
    dbp_request *lreq = new_request(DBP_OP_LEASE, NULL, NULL);
    if (!lreq)
        return;
    dbp_error err;
    int rc = dbp_submit(mgr, lite ? "lite" : "fault", lreq, NULL, &err);
    if (rc != DBP_OK) {
        refused(rc);
        dbp_request_unref(lreq);
        return;
    }
    CHECK_EQ_INT(dbp_request_wait(lreq, WAIT_MS), DBP_OK);
    dbp_lease *lease = dbp_request_take_lease(lreq);
    dbp_request_unref(lreq);
    if (!lease)
        return;
    dbp_request *begin = submit_on(lease, new_request(DBP_OP_BEGIN, NULL, NULL));
    if (begin)
        finish_on_lease(begin);
    if (rnd(seed) % 3 == 0) { /* a cursor left open: the release resets it on a worker */
        const char *sql = lite ? BOUNDED_SQL : "ROWS 100";
        dbp_request *open = new_request(DBP_OP_CURSOR_OPEN, sql, NULL);
        if ((open = submit_on(lease, open)) && outcome(open, NULL) == DBP_OK) {
            dbp_request *fetch = new_request(DBP_OP_CURSOR_FETCH, NULL, NULL);
            dbp_request_set_batch_rows(fetch, 10);
            if ((fetch = submit_on(lease, fetch)))
                finish_on_lease(fetch);
        }
        dbp_request_unref(open);
        dbp_lease_release(lease);
        return;
    }
    static const char *const slow[] = {ENDLESS_SQL, "HANG", "BLOCK"};
    const char *sql = lite ? slow[0] : slow[1 + rnd(seed) % 2];
    dbp_request *stmt = new_request(lite ? DBP_OP_QUERY : DBP_OP_EXECUTE, sql, NULL);
    if (stmt)
        dbp_request_set_timeout(stmt, 1 + rnd(seed) % 20);
    stmt = stmt ? submit_on(lease, stmt) : NULL;
    switch (stmt ? rnd(seed) % 3 : 3) {
    case 0: /* released while its statement runs: returned when it ends */
        dbp_lease_release(lease);
        dbp_request_cancel(stmt);
        finish_on_lease(stmt);
        return;
    case 1: {
        dbp_request_cancel(stmt);
        finish_on_lease(stmt);
        dbp_request *rollback = submit_on(lease, new_request(DBP_OP_ROLLBACK, NULL, NULL));
        if (rollback)
            finish_on_lease(rollback);
        break;
    }
    case 2: /* the statement freed first, the lease released while it may still run */
        dbp_request_unref(stmt);
        break;
    default:
        break;
    }
    dbp_lease_release(lease);
}

/* Several requests on a private queue: once every one is done, each must
 * already be on the queue, and the queue can go. */
static void batch_scenario(dbp_manager *mgr, unsigned *seed)
{
    dbp_completion_queue *cq;
    dbp_error err;
    CHECK_EQ_INT(dbp_completion_queue_new(&cq, &err), DBP_OK);
    dbp_request *reqs[8];
    int n = 0, want = 1 + (int)(rnd(seed) % 8);
    for (int i = 0; i < want; i++) {
        const statement *st = &statements[rnd(seed) % N_STATEMENTS];
        dbp_request *req = make_request(seed, st);
        if (!req)
            continue;
        int rc = dbp_submit(mgr, st->pool, req, cq, &err);
        if (rc != DBP_OK) {
            refused(rc);
            dbp_request_unref(req);
            continue;
        }
        if (rnd(seed) % 3 == 0)
            dbp_request_cancel(req);
        reqs[n++] = req;
    }
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(dbp_request_wait(reqs[i], WAIT_MS), DBP_OK);
    dbp_request *out[8];
    size_t got = dbp_completion_queue_drain(cq, out, 8);
    CHECK_EQ_INT(got, n);
    for (size_t i = 0; i < got; i++) {
        check_outcome(out[i], 1);
        dbp_request_unref(out[i]);
    }
    dbp_completion_queue_free(cq);
    for (int i = 0; i < n; i++)
        dbp_request_unref(reqs[i]);
}

static void *submitter_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    dbp_manager *mgr = R.mgr; /* a reference of this thread's, taken for it */
    while (!atomic_load(&R.stop_submitting)) {
        unsigned what = rnd(&seed) % 16;
        if (what == 0)
            lease_scenario(mgr, &seed);
        else if (what == 1)
            batch_scenario(mgr, &seed);
        else
            one_request(mgr, &seed);
    }
    dbp_manager_unref(mgr);
    return NULL;
}

/* ---- the other side: draining and cancelling ------------------------------- */

static void drain_once(dbp_completion_queue *cq)
{
    dbp_request *out[16];
    size_t n = dbp_completion_queue_drain(cq, out, 16);
    for (size_t i = 0; i < n; i++) {
        tracked *t = dbp_request_user_data(out[i]);
        CHECK_EQ_INT(atomic_fetch_add(&t->drained, 1), 0); /* handed out once */
        check_outcome(out[i], 1);
        dbp_request_unref(out[i]);
        atomic_fetch_add(&R.drained, 1);
    }
}

static void *drainer_main(void *arg)
{
    (void)arg;
    struct pollfd p = {.fd = dbp_completion_queue_fd(R.cq), .events = POLLIN};
    while (!atomic_load(&R.stop_draining)) {
        poll(&p, 1, 1);
        drain_once(R.cq);
    }
    drain_once(R.cq);
    return NULL;
}

/* Cancels the requests handed to it at random moments (again and again,
 * during closes and the shutdown, and after) and frees them in random
 * order. */
static void *canceller_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    dbp_request *held[MAX_HELD];
    int n = 0;
    for (;;) {
        int stopping = atomic_load(&R.stop_cancelling);
        pthread_mutex_lock(&R.inbox_mu);
        while (R.inbox_n > 0 && n < MAX_HELD)
            held[n++] = R.inbox[--R.inbox_n];
        pthread_mutex_unlock(&R.inbox_mu);
        for (int i = 0; i < n; i++)
            if (rnd(&seed) % 2)
                dbp_request_cancel(held[i]);
        while (n > 0 && (stopping || n > MAX_HELD / 2 || rnd(&seed) % 4 == 0)) {
            int i = (int)(rnd(&seed) % (unsigned)n);
            dbp_request_cancel(held[i]);
            dbp_request_unref(held[i]);
            held[i] = held[--n];
        }
        if (stopping)
            return NULL;
        if (rnd(&seed) % 4 == 0)
            sleep_us(rnd(&seed) % 500);
        else
            sched_yield();
    }
}

/* ---- rounds ------------------------------------------------------------------- */

static dbp_pool_options stress_options(void)
{
    dbp_pool_options o;
    dbp_pool_options_init(&o);
    o.min_size = 1; /* warm-ups run, and are closed, along the way */
    o.max_size = 3;
    o.max_waiting = 32;
    o.acquire_timeout_ms = 200;
    o.validate_after_ms = -1;
    o.cancel_grace_ms = 20; /* stuck calls are answered early, soon */
    return o;
}

static void create_pools(dbp_manager *mgr)
{
    dbp_pool_options o = stress_options();
    dbp_error err;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "lite", "sqlite", memory_db, 1, &o, &err), DBP_OK);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "fault", "fault", NULL, 0, &o, &err), DBP_OK);
}

/* Lets every HANG and BLOCK go until the condition holds. */
#define UNSTUCK(cond) EVENTUALLY((fault_open_gate(), (cond)), WAIT_MS)

static int pool_idle(dbp_manager *mgr, const char *pool)
{
    dbp_pool_stats s;
    if (dbp_manager_pool_stats(mgr, pool, &s, NULL, 0, NULL) != DBP_OK)
        return 0;
    return s.in_use == 0 && s.waiting == 0;
}

/* Closes a pool with a tiny timeout in the middle of its work, and creates
 * it again under the same name while its old requests may still run (a
 * shutdown may have taken it, or refuse the new one). */
static void close_and_recreate(dbp_manager *mgr, unsigned *seed)
{
    const char *pool = rnd(seed) % 2 ? "lite" : "fault";
    int lite = strcmp(pool, "lite") == 0;
    dbp_error err;
    int rc = dbp_manager_close_pool(mgr, pool, rnd(seed) % 20, &err);
    CHECK(rc == DBP_OK || rc == DBP_E_TIMEOUT || rc == DBP_E_NOT_FOUND);
    dbp_pool_options o = stress_options();
    rc = dbp_manager_create_pool(mgr, pool, lite ? "sqlite" : "fault", lite ? memory_db : NULL,
                                 lite ? 1 : 0, &o, &err);
    CHECK(rc == DBP_OK || rc == DBP_E_CLOSED);
}

/* Stops the submitters and the closer and waits for them. */
static void stop_submitters(pthread_t *actors)
{
    atomic_store(&R.stop_submitting, 1);
    for (int i = 0; i < N_SUBMITTERS + 1; i++)
        pthread_join(actors[i], NULL);
}

/* Every request of the round that went through the shared queue came out
 * of it exactly once. Returns how many requests the round made. */
static int check_tracks(void)
{
    int n = atomic_load(&n_tracks);
    n = n < MAX_TRACKED ? n : MAX_TRACKED;
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(atomic_load(&tracks[i].drained), tracks[i].with_cq);
    memset(tracks, 0, sizeof tracks);
    return n;
}

/* Closes and re-creates pools, and lets HANGs go, now and then, until the
 * submitters stop: through the shutdown too. */
static void *closer_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    dbp_manager *mgr = R.mgr; /* a reference of this thread's, taken for it */
    while (!atomic_load(&R.stop_submitting)) {
        sleep_ms(5 + (int)(rnd(&seed) % 25));
        if (rnd(&seed) % 2)
            close_and_recreate(mgr, &seed);
        else
            fault_open_gate();
    }
    dbp_manager_unref(mgr);
    return NULL;
}

/* One round; returns how many requests it made. */
static int run_round(int round, unsigned seed)
{
    fault_reset();
    atomic_store(&n_tracks, 0);
    atomic_store(&R.submitted_cq, 0);
    atomic_store(&R.drained, 0);
    atomic_store(&R.stop_submitting, 0);
    atomic_store(&R.stop_cancelling, 0);
    atomic_store(&R.stop_draining, 0);
    R.mgr = new_manager();
    dbp_error err;
    CHECK_EQ_INT(dbp_completion_queue_new(&R.cq, &err), DBP_OK);
    create_pools(R.mgr);

    /* the submitters, then the closer; each holds a manager reference */
    pthread_t drainer, canceller, actors[N_SUBMITTERS + 1];
    pthread_create(&drainer, NULL, drainer_main, NULL);
    pthread_create(&canceller, NULL, canceller_main, (void *)(uintptr_t)(seed | 1));
    for (int i = 0; i <= N_SUBMITTERS; i++) {
        dbp_manager_ref(R.mgr);
        pthread_create(&actors[i], NULL, i < N_SUBMITTERS ? submitter_main : closer_main,
                       (void *)(uintptr_t)((seed + 977u * (unsigned)(i + 1)) | 1));
    }
    sleep_ms(50 + (int)(rnd(&seed) % 250));

    int kind = round % 3;
    if (kind == 0 || kind == 1) {
        /* shut down with requests in every state and HANGs stuck; the
         * canceller keeps cancelling through it. Submitters and the closer
         * go on through it (their references keep the manager's memory),
         * or stop just before, so the manager can be freed under the
         * canceller. */
        if (kind == 1)
            stop_submitters(actors);
        int rc = dbp_manager_shutdown(R.mgr, rnd(&seed) % 30);
        CHECK(rc == DBP_OK || rc == DBP_E_TIMEOUT);
        if (kind == 0)
            stop_submitters(actors);
        atomic_store(&R.stop_cancelling, 1);
        pthread_join(canceller, NULL);
    } else {
        stop_submitters(actors);
        atomic_store(&R.stop_cancelling, 1); /* frees the leases its requests hold */
        pthread_join(canceller, NULL);
        /* every connection comes back once the engine lets go */
        CHECK(UNSTUCK(pool_idle(R.mgr, "lite") && pool_idle(R.mgr, "fault")));
        CHECK_EQ_INT(dbp_manager_shutdown(R.mgr, 5000), DBP_OK);
    }
    /* every request given a queue is on it by now, or about to be */
    CHECK(EVENTUALLY(atomic_load(&R.drained) == atomic_load(&R.submitted_cq), WAIT_MS));
    atomic_store(&R.stop_draining, 1);
    pthread_join(drainer, NULL);
    dbp_completion_queue_free(R.cq);
    R.cq = NULL;
    CHECK(UNSTUCK(FAULT_GET(open) == 0 && FAULT_GET(blocked) == 0));
    return check_tracks();
}

/* ---- race 1, aimed at ------------------------------------------------------------ */

static atomic_int spin_stop;

/* Cancels one request over and over from the moment its statement was
 * interrupted (by the shutdown) until told to stop. */
static void *cancel_spinner(void *arg)
{
    dbp_request *req = arg;
    while (FAULT_GET(interrupts) == 0)
        sched_yield();
    while (!atomic_load(&spin_stop))
        dbp_request_cancel(req);
    return NULL;
}

/* A request is cancelled again and again from another thread while the
 * manager shuts down under it. Its engine is slow to close the connection,
 * so the request finishes after the shutdown returned, and its worker, the
 * manager's last holder but the request, lets go of the manager right
 * after: no cancel may find the manager gone while the request was still
 * unfinished a moment before. */
static void test_cancel_while_the_manager_goes(void)
{
    for (int i = 0; i < 5; i++) {
        fault_reset();
        dbp_manager *mgr = new_manager();
        dbp_pool_options o = stress_options();
        o.min_size = 0;
        o.max_size = 1;
        dbp_error err;
        CHECK_EQ_INT(dbp_manager_create_pool(mgr, "fault", "fault", NULL, 0, &o, &err), DBP_OK);
        dbp_request *req = new_request(DBP_OP_EXECUTE, "BLOCK", NULL);
        CHECK_EQ_INT(dbp_submit(mgr, "fault", req, NULL, &err), DBP_OK);
        CHECK(EVENTUALLY(FAULT_GET(blocked) == 1, WAIT_MS));
        FAULT_SET(disconnect_delay_ms, 30);
        atomic_store(&spin_stop, 0);
        pthread_t spinner;
        pthread_create(&spinner, NULL, cancel_spinner, req);
        /* stops the statement, then (unless this thread was held up for
         * longer, as under valgrind) gives up waiting for its worker, which
         * is closing the connection */
        int rc = dbp_manager_shutdown(mgr, 5);
        CHECK(rc == DBP_E_TIMEOUT || rc == DBP_OK);
        CHECK_EQ_INT(dbp_request_wait(req, WAIT_MS), DBP_OK);
        CHECK_EQ_INT(dbp_request_status(req, NULL), DBP_E_CLOSED);
        sleep_ms(5); /* cancels after the manager's end are harmless too */
        atomic_store(&spin_stop, 1);
        pthread_join(spinner, NULL);
        dbp_request_unref(req);
        CHECK(EVENTUALLY(FAULT_GET(open) == 0, WAIT_MS));
    }
}

int main(void)
{
    CHECK_EQ_INT(fault_register(), DBP_OK);
    RUN(test_cancel_while_the_manager_goes);
    const char *env = getenv("DBP_STRESS_SECONDS");
    double seconds = env ? atof(env) : 3.0;
    unsigned seed = (unsigned)fault_now_ns() | 1u;
    fprintf(stderr, "-- lifetime stress: %.1f s, seed %u\n", seconds, seed);
    int64_t until = now_ms() + (int64_t)(seconds * 1000);
    int rounds = 0, requests = 0;
    while (rounds < 3 || now_ms() < until) /* at least one round of each kind */
        requests += run_round(rounds++, rnd(&seed));
    fprintf(stderr, "-- %d rounds, %d requests, %d refused; outcomes:", rounds, requests,
            atomic_load(&refusals));
    for (int c = 0; c <= DBP_E_QUERY_TIMEOUT; c++)
        if (atomic_load(&outcomes[c]))
            fprintf(stderr, " %s %d", dbp_category_name(c), atomic_load(&outcomes[c]));
    fprintf(stderr, "\n");
    /* the run reached completion, cancels, deadlines and closes */
    CHECK(outcomes[DBP_OK] > 0 && outcomes[DBP_E_CANCELLED] > 0);
    CHECK(outcomes[DBP_E_QUERY_TIMEOUT] > 0 && outcomes[DBP_E_CLOSED] > 0);
    return check_exit();
}
