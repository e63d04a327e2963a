/* core.h - the structures shared by the manager, pools, workers and requests.
 *
 * Locking: one mutex per manager (mgr->mu) guards every pool, connection,
 * wait queue and the worker queue. The critical sections are a few list
 * operations each while the work itself (connecting, running statements)
 * happens outside the lock, so one lock is simpler than a hierarchy and costs
 * nothing measurable at the request rates one process reaches. Each request
 * has its own small lock for waiting on completion; completion queues have
 * their own. Order: mgr->mu, then a request's lock, then a queue's lock (a
 * request is pushed under its own lock), never the reverse. */
#ifndef DBP_CORE_H
#define DBP_CORE_H

#include <pthread.h>
#include <sys/types.h>
#include <stdatomic.h>
#include <stdint.h>

#include "arrow_abi.h"
#include "db_pool.h"
#include "driver.h"
#include "metrics.h"
#include "result.h"

typedef struct dbp_pool dbp_pool;
typedef struct dbp_endpoint dbp_endpoint;
typedef struct dbp_conn dbp_conn;

#define MS_TO_NS(ms) ((int64_t)(ms) * 1000000)
/* Time options are validated to at most this many ms (ten years), so that
 * now + MS_TO_NS(option) never overflows. */
#define DBP_MAX_TIME_MS ((int64_t)315360000000)

/* A connection's state is the list it is on: idle or busy (opening, leased
 * or running a request). */
typedef enum conn_state { CONN_OPENING, CONN_IDLE, CONN_BUSY } conn_state;

struct dbp_conn {
    dbp_pool *pool;
    dbp_endpoint *endpoint;
    const dbp_driver *driver; /* to close it without touching the pool */
    uint64_t generation;   /* the endpoint's role generation when opened or probed */
    uint64_t settings_gen; /* the endpoint's settings generation it connected with */
    void *handle;          /* the driver's connection; NULL until opened */
    conn_state state;
    int64_t created_ns;    /* when connected */
    int64_t retire_ns;     /* max_lifetime with jitter; INT64_MAX = never */
    int64_t last_used_ns;  /* when it last went idle */
    int64_t validated_ns;  /* when a ping last proved it alive */
    int must_validate;     /* taken from idle after its endpoint broke: ping first */
    int reused;            /* the running request got it from idle, not newly opened */
    int broken;            /* close instead of reusing */
    int has_cursor;        /* a cursor is open on it */
    int close_why;         /* dbp_close_reason once broken by something other than a failure
                              in use (a failed reset, a closing pool); 0 otherwise */
    dbp_gauge_cell *closing; /* its endpoint's closing gauge, counted in until disconnected */
    int64_t checkout_ns;   /* when a caller's request or lease got it; 0: not a caller's */
    int64_t connect_ns;    /* how long its connect took (for create_time) */
    dbp_request *running;  /* the request running on it, for cancel */
    dbp_conn *prev, *next; /* on endpoint->idle or endpoint->busy */
};

typedef struct conn_list {
    dbp_conn *head, *tail;
    int count;
} conn_list;

typedef struct request_list {
    dbp_request *head, *tail;
    int count;
} request_list;

struct dbp_lease {
    dbp_pool *pool; /* holds a pool reference */
    dbp_conn *conn;
    int busy;       /* a request runs on it */
    int release_pending; /* released while busy: release when it finishes */
    int lost;       /* a request on it was answered before its engine call returned: the
                       session's state is unknown, so the connection is discarded */
};

/* Why a request was asked to stop (dbp_request.stop_reason). */
typedef enum stop_reason { STOP_NONE, STOP_CANCEL, STOP_DEADLINE, STOP_CLOSE } stop_reason;

/* FINISHING: the outcome is set and the request is on its way to
 * completion outside the lock; cancel leaves it alone. */
typedef enum request_state {
    REQ_NEW,
    REQ_WAITING,
    REQ_QUEUED,
    REQ_RUNNING,
    REQ_FINISHING,
    REQ_DONE
} request_state;

struct dbp_request {
    atomic_int refs;
    dbp_op op;
    char *sql;
    size_t sql_len;
    dbp_params *params;
    int64_t batch_rows;
    dbp_copy_mode copy_mode;
    void *user_data;
    struct ArrowArrayStream input; /* WRITE_FRAME rows; release NULL when none */
    char *notices; /* "SEVERITY: text\n" lines the engine sent */
    size_t notices_len;

    /* routing, guarded by mgr->mu */
    request_state state;
    dbp_pool *pool;        /* set while submitted (holds a pool reference) */
    dbp_lease *on_lease;   /* set when submitted on a lease */
    dbp_conn *conn;        /* the connection it runs on */
    dbp_completion_queue *cq;
    int readonly;          /* dbp_request_set_readonly: -1, 0 or 1 */
    int inline_allowed;    /* dbp_request_set_inline */
    int run_inline;        /* got a connection during dbp_submit: the caller runs it */
    int inline_budget;     /* ... on an event loop (it has a completion queue): a
                            * QUERY the driver may hand back to a worker */
    dbp_endpoint *target;  /* internal requests: the endpoint they are for */
    int attempts;          /* times moved to another endpoint */
    int replied;           /* the driver's dbp_exec_ctx.replied for the running call */
    int64_t enqueued_ns;
    int64_t deadline_ns;      /* acquire_timeout: give up waiting for a connection */
    int64_t timeout_ms;       /* dbp_request_set_timeout; 0: the pool's query_timeout */
    int64_t call_deadline_ns; /* the call's own deadline; INT64_MAX: none */
    dbp_request *prev, *next; /* on a pool's wait queue or the worker queue */
    dbp_manager *mgr;         /* set at submit, with a manager reference kept until the
                                 request is freed (internal requests hold none) */
    atomic_int cancelled;     /* the driver's "stop now" flag */

    /* stopping, guarded by mgr->mu (deadline.c) */
    stop_reason stop;         /* why `cancelled` was set */
    int64_t answer_by_ns;     /* a stopped request's caller is answered by then, even if
                                 its engine call has not returned; INT64_MAX: not stopped */
    int answered;             /* the caller has early_status; the worker still runs */
    int early_status;
    dbp_error early_error;

    /* outcome, written by the worker before completion */
    int status;
    dbp_error error;
    int64_t rows_affected;
    int cursor_done;
    dbp_result *result;
    dbp_reply *reply;      /* COMMAND */
    dbp_lease *lease_out;

    /* completion */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    int done;
    dbp_request *cq_next;
};

/* One server of a logical pool, with its own connections, health and role.
 * Single-endpoint pools never probe: their one endpoint takes everything. */
struct dbp_endpoint {
    dbp_pool *pool;
    int index;
    char label[128];        /* from the driver: host, port, database; no password */
    void *config;           /* the driver's parsed settings; a reconfigure replaces it and
                               keeps the old one (pool->retired) for connects under way */
    uint64_t settings_hash; /* of the settings it was made from, to tell a change */
    uint64_t settings_gen;  /* bumped when its settings change; older connections retire */
    int removed;            /* dropped by a reconfigure: no new work, its connections
                               close when they come back; revived if added again */
    conn_list idle;         /* most recently used first */
    conn_list busy;
    int opening;
    dbp_role role;
    dbp_health health;
    uint64_t generation;    /* bumped when the role changes; older connections retire */
    double lag_s;           /* replica replay lag from the last probe; < 0 unknown */
    int failures;           /* consecutive failed connects or probes */
    int64_t health_since_ns; /* when health last changed */
    int64_t break_ns;       /* when a connection to it last broke or failed: idle
                               connections older than that are validated before use */
    int64_t retry_ns;       /* circuit breaker: while down, no attempt before this */
    int64_t probed_ns;      /* when the last probe answered */
    int64_t next_probe_ns;
    int probing;            /* a probe is queued or running */
    int reprobe;            /* probe again as soon as the running probe is done */
    char last_error[256];
    uint64_t failed_total;  /* failed connects and probes (stats(): "failed") */
    dbp_endpoint_counters m; /* metrics.h */
};

struct dbp_pool {
    dbp_manager *mgr;
    int refs;               /* manager's + leases' + in-flight requests' */
    char *id;
    const dbp_driver *driver;
    /* Replaced whole by a reconfigure, the old copy kept in `retired`, so
     * workers read it without the lock: use dbp_pool_opts(). */
    _Atomic(dbp_pool_options *) live_opts;
    struct dbp_retired *retired; /* settings and options replaced while the pool lives */
    int topology;           /* roles and health are tracked: it has or had several endpoints */
    int closed;
    request_list waiting;   /* FIFO of requests waiting for a connection */
    dbp_endpoint **endpoints; /* in the order first given; removed ones stay (flagged) */
    int n_endpoints;
    dbp_endpoint *primary;  /* where writes go; NULL while none is known (without
                               topology: the one endpoint not removed) */
    dbp_endpoint *last_primary; /* the latest non-NULL primary, to count failovers */
    int starved;            /* a waiting request has no endpoint in its role: probe fast */
    unsigned next_rr;       /* round-robin position */
    dbp_pool_counters m;    /* metrics.h; stats() derives its counters from them */
    unsigned rng;           /* for lifetime jitter and backoff */
    dbp_request *submitting; /* being submitted and may run on its caller's thread */
    dbp_pool *next_dead;    /* chains pools to destroy after unlocking */
};

struct dbp_manager {
    pthread_mutex_t mu;
    unsigned fork_count;    /* forks counted when it was made: a forked child has no
                               workers (dbp_manager_forked) */
    int refs;               /* the owner's, plus one per pool not yet destroyed, worker
                               thread and submitted request not yet freed */
    int closing;
    dbp_pool **pools;
    size_t n_pools, pools_capacity;

    /* workers (detached threads, each holding a manager reference) run
     * requests that have a connection assigned */
    request_list work;
    pthread_cond_t work_cv;
    int n_workers, idle_workers;
    /* broadcast whenever a request ends or a worker exits: close waits on it */
    pthread_cond_t ended_cv;

    /* the janitor expires waiters, watches deadlines of running requests
     * and keeps pools within their limits */
    pthread_t janitor;
    pthread_cond_t janitor_cv;
    int64_t janitor_next_ns; /* when it wakes next */

    /* endpoint events, a ring of the latest EVENT_RING */
    dbp_event *events;
    size_t events_head, events_count;
    pthread_cond_t events_cv;
};

/* The pool's options, read with or without mgr->mu. */
static inline const dbp_pool_options *dbp_pool_opts(const dbp_pool *pool)
{
    return atomic_load_explicit(&((dbp_pool *)pool)->live_opts, memory_order_acquire);
}

/* list helpers (caller holds mgr->mu) */
void dbp_request_list_push(request_list *l, dbp_request *r);
void dbp_request_list_remove(request_list *l, dbp_request *r);
dbp_request *dbp_request_list_pop(request_list *l);
void dbp_conn_list_push_front(conn_list *l, dbp_conn *c);
void dbp_conn_list_remove(conn_list *l, dbp_conn *c);

/* request.c */
void dbp_request_ref(dbp_request *req);
/* Submission: the in-flight reference, the completion queue, and a manager
 * reference the request keeps until it is freed. */
void dbp_request_bind_locked(dbp_request *req, dbp_manager *mgr, dbp_completion_queue *cq);
/* Undoes dbp_request_bind_locked for a submission that was refused. */
void dbp_request_unbind_locked(dbp_request *req);
/* dbp_exec_ctx.notice for requests: keeps up to 64 KiB of messages. */
void dbp_request_add_notice(void *req, const char *severity, const char *text);
/* A request of an internal kind with its one (in-flight) reference; NULL
 * when out of memory. */
dbp_request *dbp_request_new_internal(int op, dbp_manager *mgr);
/* Detaches a request whose outcome is set from its pool (counting it in the
 * pool's stats and dropping its pool reference), closes the `to_close`
 * chain, then wakes the waiter or pushes the request onto its completion
 * queue and drops the in-flight reference. Call without mgr->mu held. */
void dbp_request_finish(dbp_request *req, dbp_conn *to_close);
/* dbp_request_finish in two halves, for a caller that already holds the
 * lock: the first counts the outcome in the pool's stats and returns the
 * pool if that was its last reference; the second (unlocked) closes
 * `to_close`, destroys `dead` and completes the request. */
dbp_pool *dbp_request_detach_locked(dbp_request *req);
void dbp_request_complete(dbp_request *req, dbp_conn *to_close, dbp_pool *dead);
/* Counts a finished request with this outcome in the pool's stats. */
void dbp_request_count_locked(dbp_pool *pool, const dbp_request *req, int status);
/* Wakes the caller of a request answered early (its early_status is set);
 * the worker still holds its in-flight reference. */
void dbp_request_answer_locked(dbp_request *req);

/* completion.c */
void dbp_completion_queue_push(dbp_completion_queue *cq, dbp_request *req);

/* pool.c (caller holds mgr->mu unless the name says otherwise) */
/* Takes over `configs` (one per endpoint) even when it fails. */
int dbp_pool_new(dbp_manager *mgr, const char *id, const dbp_driver *driver, void **configs,
                 int n_endpoints, const dbp_pool_options *opts, dbp_pool **out, dbp_error *err);
/* Drops a reference; returns the pool when that was the last one, for the
 * caller to dbp_pool_destroy after unlocking (and after closing the
 * connections it got back), else NULL. */
dbp_pool *dbp_pool_unref_locked(dbp_pool *pool);
void dbp_pool_destroy(dbp_pool *pool);
/* Frees a pool that never took its manager reference (dbp_pool_new failed). */
void dbp_pool_destroy_unregistered(dbp_pool *pool);
int dbp_pool_submit_locked(dbp_pool *pool, dbp_request *req, dbp_error *err);
/* Hands connections to waiters and opens new ones while allowed. */
void dbp_pool_dispatch_locked(dbp_pool *pool);
/* A connection comes back from a request or lease. Returns connections the
 * caller must disconnect after unlocking (linked through ->next). */
dbp_conn *dbp_pool_return_conn_locked(dbp_pool *pool, dbp_conn *conn);
/* Expires waiters, retires idle connections, keeps min_size. Requests to
 * complete and connections to close are handed back for after unlocking.
 * Returns the next time (ns) it wants to run. */
int64_t dbp_pool_maintain_locked(dbp_pool *pool, int64_t now, request_list *expired,
                                 dbp_conn **to_close);
/* Marks the pool closed: waiters move to `failed`, idle connections to
 * *to_close. */
void dbp_pool_close_locked(dbp_pool *pool, request_list *failed, dbp_conn **to_close);
/* Records that a slot is connected (called by the worker); its connect
 * took conn->connect_ns. */
void dbp_pool_conn_opened_locked(dbp_pool *pool, dbp_conn *conn, void *handle, int64_t now);
/* Puts a request whose connection attempt failed, or whose endpoint turned
 * out to have the wrong role, back in the wait queue in its original place,
 * then dispatches. It was never sent, so this is always safe. */
void dbp_pool_requeue_locked(dbp_pool *pool, dbp_request *req);
/* Moves an endpoint's idle connections to *to_close, counted as closed for
 * `why` (dbp_close_reason). */
void dbp_endpoint_close_idle_locked(dbp_endpoint *ep, dbp_conn **to_close, int why);
/* Counts a connection about to be disconnected outside the lock: closed
 * for `why`, and closing until dbp_conns_destroy or dbp_conn_closed. */
void dbp_conn_count_close_locked(dbp_conn *conn, int why);
/* The disconnect of a connection counted by dbp_conn_count_close_locked is
 * done (no lock needed). */
void dbp_conn_closed(dbp_conn *conn);
/* An idle connection of `ep` moved to busy, else a new unconnected slot
 * when the endpoint has room; NULL when neither (or out of memory). */
dbp_conn *dbp_endpoint_take_conn_locked(dbp_endpoint *ep);
int dbp_endpoint_size(const dbp_endpoint *ep);
/* A new endpoint of `pool` (not yet in its array) owning `config`; NULL
 * when out of memory (config is not freed then). */
dbp_endpoint *dbp_endpoint_new(dbp_pool *pool, int index, void *config);
void dbp_endpoint_free(dbp_endpoint *ep);

/* manager.c: DBP_E_CONFIG with the reason when the options are out of range. */
int dbp_pool_options_validate(const dbp_pool_options *o, dbp_error *err);

/* manager.c: parses each endpoint's settings into configs[i]; on failure
 * none is left (the message names the endpoint when there are several). */
int dbp_parse_endpoint_configs(const dbp_driver *driver, const dbp_endpoint_config *endpoints,
                               size_t n, void **configs, dbp_error *err);

/* reconfigure.c */
/* A copy of `opts` with its own init_sql; NULL when out of memory. */
dbp_pool_options *dbp_pool_options_copy(const dbp_pool_options *opts);
/* Frees what reconfigures replaced (at pool destruction). */
void dbp_retired_free(dbp_pool *pool);
/* An order-independent hash of an endpoint's settings. */
uint64_t dbp_settings_hash(const dbp_setting *settings, size_t n);

/* endpoint.c: health, circuit breaker and roles (caller holds mgr->mu) */
/* 1 when the pool tracks roles and health (it has several endpoints). */
int dbp_pool_has_topology(const dbp_pool *pool);
/* Connecting to or probing `ep` failed: down, with a backoff before the next
 * attempt; its idle connections go to *to_close. */
void dbp_endpoint_failed_locked(dbp_endpoint *ep, const dbp_error *err, dbp_conn **to_close);
/* A connection to `ep` broke while in use: suspect, probe soon. */
void dbp_endpoint_suspect_locked(dbp_endpoint *ep, const dbp_error *err);
/* dbp_endpoint_suspect_locked, and every idle connection opened before now
 * is validated before its next use (any pool). */
void dbp_endpoint_broke_locked(dbp_endpoint *ep, const dbp_error *err);
/* A connection to `ep` opened: a single-endpoint pool's endpoint is up. */
void dbp_endpoint_connected_locked(dbp_endpoint *ep);
/* A probe over `conn` answered: up, with this role and lag. A role change
 * retires the endpoint's other connections (idle ones to *to_close). */
void dbp_endpoint_probed_locked(dbp_endpoint *ep, dbp_conn *conn, dbp_role role, double lag_s,
                                dbp_conn **to_close);
/* Starts due probes; returns when the next one is due. */
int64_t dbp_pool_schedule_probes_locked(dbp_pool *pool, int64_t now);

/* route.c: which endpoint serves a request (caller holds mgr->mu) */
/* The endpoints whose role and health fit `req`, whether full or not;
 * returns how many were written to `out` (room for pool->n_endpoints). */
int dbp_route_candidates(const dbp_pool *pool, const dbp_request *req, dbp_endpoint **out);
/* One of the candidates with a free or openable connection, by the pool's
 * balance policy; NULL when all are full. */
dbp_endpoint *dbp_route_choose(dbp_pool *pool, dbp_endpoint **cands, int n);
/* 1 when the request is a read for routing purposes. */
int dbp_route_is_read(const dbp_request *req);
/* Describes each endpoint's state into `buf`, for errors. */
void dbp_route_describe(const dbp_pool *pool, char *buf, size_t size);

/* failover.c: what happens to a request when its endpoint fails (called
 * by the worker without the lock, for pools with several endpoints) */
typedef struct dbp_probe_result {
    int ok;        /* the role was asked and answered */
    dbp_role role;
    double lag_s;
} dbp_probe_result;
/* After connecting (and probing): records the endpoint's health and role;
 * a request that found its endpoint unreachable or in the wrong role goes
 * back to the wait queue, which is safe because nothing was sent. Returns 1
 * when requeued: the caller must not touch the request again. */
int dbp_failover_after_connect(dbp_pool *pool, dbp_request *req, int rc,
                               const dbp_probe_result *probe);
/* After the connection broke during the statement (any pool): the endpoint
 * becomes suspect, its older idle connections are validated before use, and
 * a read that cannot have written goes back to the wait queue. Returns 1
 * when requeued. */
int dbp_failover_after_broken_conn(dbp_pool *pool, dbp_request *req);
/* After a request failed with DBP_E_UNAVAILABLE before anything ran (*replied
 * still 0): its server refused it for its role (a demoted Redis master
 * answers READONLY). In pools of several endpoints the endpoint counts as a
 * replica from then on (a probe follows at once) and the request goes back
 * to wait for the primary (1); else 0. */
int dbp_failover_after_wrong_role(dbp_pool *pool, dbp_request *req);
/* The category for a request whose connection broke: DBP_E_OUTCOME_UNKNOWN
 * (with an explaining message) when it may have written, else
 * DBP_E_NETWORK. Any pool. */
int dbp_failover_classify_lost(dbp_request *req);
/* 1 when the request may have changed data if it ran (any pool). */
int dbp_request_may_have_written(const dbp_request *req);

/* events.c */
void dbp_event_push_locked(dbp_manager *mgr, dbp_event_kind kind, const dbp_endpoint *ep,
                           dbp_role old_role, const char *message);
/* Disconnects and frees a chain of connections. No lock needed, but the
 * pool may be gone: counted ones (dbp_conn_count_close_locked) hold their
 * closing gauge themselves. */
void dbp_conns_destroy(dbp_conn *chain);

/* worker.c */
/* Runs the pool's init_sql, if any, on a connection just opened or reset. */
int dbp_conn_init(const dbp_pool *pool, void *handle, const dbp_exec_ctx *ctx, dbp_error *err);
/* Leaves a connection that goes back to the pool as a new one would be:
 * closes its cursor and rolls back, within connect_timeout; marks it broken
 * when that fails. Call without the lock, on a connection nobody else uses. */
void dbp_conn_reset(dbp_conn *conn);
/* Queues a request whose connection is assigned; starts a worker if all
 * are busy. */
void dbp_worker_enqueue_locked(dbp_manager *mgr, dbp_request *req);
/* Runs a request with its connection assigned on the calling thread, as a
 * worker would (dbp_request_set_inline). */
void dbp_worker_run(dbp_request *req);
/* Starts workers while queued requests outnumber idle workers. */
void dbp_worker_spawn_locked(dbp_manager *mgr);

/* deadline.c: stopping running requests and answering their callers on
 * time (caller holds mgr->mu) */
/* The call deadline of a request submitted now. */
void dbp_deadline_start_locked(dbp_pool *pool, dbp_request *req, int64_t now);
/* Asks a queued or running request to stop: its driver call is interrupted
 * and its caller will be answered within the grace even if that call never
 * returns. Does nothing to a request already stopping. */
void dbp_request_stop_locked(dbp_request *req, stop_reason why, int64_t now);
/* Stops running requests past their deadline and answers the callers of
 * those stopped too long ago; returns when it wants to look again. With
 * `force`, answers every running request of the pool now. */
int64_t dbp_pool_watch_running_locked(dbp_pool *pool, int64_t now, int force);
/* The final status of a request whose driver call returned `rc` after it
 * was stopped: a cancel becomes a timeout or a closed pool as the reason
 * says. */
int dbp_request_stopped_status(dbp_request *req, int rc);
/* Whether any request of the pool is assigned to or running on a worker. */
int dbp_pool_has_running_locked(const dbp_pool *pool);

/* lease.c */
/* Puts a request on the lease's connection (caller holds mgr->mu). */
void dbp_lease_enqueue_locked(dbp_lease *lease, dbp_request *req);
/* Resets a leased connection (closes a cursor, rolls back) and returns it
 * to its pool; frees the lease. Call without the lock. */
void dbp_lease_return(dbp_lease *lease);

/* manager.c */
void dbp_janitor_wake_locked(dbp_manager *mgr);
/* The index of the pool named `id` in mgr->pools, SIZE_MAX if none. */
size_t dbp_manager_find_pool_locked(const dbp_manager *mgr, const char *id);
/* Completes each request of the list (their outcome is set). No lock held. */
void dbp_requests_finish(request_list *reqs);
/* DBP_E_CLOSED for a manager used in a forked child. */
int dbp_manager_forked_error(dbp_error *err);
/* Wakes the janitor if it would sleep past `when`. */
void dbp_janitor_wake_by_locked(dbp_manager *mgr, int64_t when);
/* 1 in a child process forked after the manager was created. */
int dbp_manager_forked(const dbp_manager *mgr);
/* dbp_manager_unref (db_pool.h): the last reference frees the manager.
 * Pools hold one so that a lease released after dbp_manager_free still
 * finds its lock. */

/* Requests the library makes for itself; nobody waits for them and they do
 * not count in the pool's request statistics. */
#define DBP_OP_WARM_UP 100     /* open a connection to keep a pool at min_size */
#define DBP_OP_RESET_LEASE 101 /* roll back / close the cursor of a released lease */
#define DBP_OP_PROBE 102       /* ask an endpoint its role (req->target) */
#define DBP_OP_IS_INTERNAL(op) ((int)(op) >= DBP_OP_WARM_UP)

#endif
