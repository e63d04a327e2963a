/* core.h - the structures shared by the manager, pools, workers and requests.
 *
 * Locking: one mutex per manager (mgr->mu) guards every pool, connection,
 * wait queue and the worker queue. The critical sections are a few list
 * operations each while the work itself (connecting, running statements)
 * happens outside the lock, so one lock is simpler than a hierarchy and costs
 * nothing measurable at the request rates one process reaches. Each request
 * has its own small lock for waiting on completion; completion queues have
 * their own. Order: mgr->mu, then request or queue locks, never the reverse. */
#ifndef DBP_CORE_H
#define DBP_CORE_H

#include <pthread.h>
#include <sys/types.h>
#include <stdatomic.h>
#include <stdint.h>

#include "arrow_abi.h"
#include "db_pool.h"
#include "driver.h"
#include "result.h"

typedef struct dbp_pool dbp_pool;
typedef struct dbp_conn dbp_conn;

/* Monotonic clock in nanoseconds. */
int64_t dbp_now_ns(void);

/* A connection's state is the list it is on: idle or busy (opening, leased
 * or running a request). */
typedef enum conn_state { CONN_OPENING, CONN_IDLE, CONN_BUSY } conn_state;

struct dbp_conn {
    dbp_pool *pool;
    const dbp_driver *driver; /* to close it without touching the pool */
    void *handle;          /* the driver's connection; NULL until opened */
    conn_state state;
    int64_t created_ns;    /* when connected */
    int64_t retire_ns;     /* max_lifetime with jitter; INT64_MAX = never */
    int64_t last_used_ns;  /* when it last went idle */
    int broken;            /* close instead of reusing */
    int has_cursor;        /* a cursor is open on it */
    dbp_request *running;  /* the request running on it, for cancel */
    dbp_conn *prev, *next; /* on pool->idle or pool->busy */
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
};

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
    int64_t enqueued_ns;
    int64_t deadline_ns;
    dbp_request *prev, *next; /* on a pool's wait queue or the worker queue */
    dbp_manager *mgr;         /* set at submit; outlives the request's work */
    atomic_int cancelled;

    /* outcome, written by the worker before completion */
    int status;
    dbp_error error;
    int64_t rows_affected;
    int cursor_done;
    dbp_result *result;
    dbp_lease *lease_out;

    /* completion */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    int done;
    dbp_request *cq_next;
};

struct dbp_pool {
    dbp_manager *mgr;
    int refs;               /* manager's + leases' + in-flight requests' */
    char *id;
    const dbp_driver *driver;
    void *config;           /* driver's parsed settings */
    dbp_pool_options opts;
    int closed;
    request_list waiting;   /* FIFO of requests waiting for a connection */
    conn_list idle;         /* most recently used first */
    conn_list busy;
    int opening;
    dbp_pool_stats stats;   /* counters; gauges are filled on read */
    unsigned rng;           /* for lifetime jitter */
    dbp_pool *next_dead;    /* chains pools to destroy after unlocking */
};

struct dbp_manager {
    pthread_mutex_t mu;
    pid_t pid;              /* the creating process: a forked child has no workers */
    int refs;               /* the owner's, plus one per pool not yet destroyed */
    int closing;
    dbp_pool **pools;
    size_t n_pools, pools_capacity;

    /* workers run requests that have a connection assigned */
    request_list work;
    pthread_cond_t work_cv;
    pthread_t *workers;
    int n_workers, idle_workers, workers_capacity;
    int running_jobs;

    /* the janitor expires waiters and keeps pools within their limits */
    pthread_t janitor;
    int janitor_started;
    pthread_cond_t janitor_cv;
};

/* list helpers (caller holds mgr->mu) */
void dbp_request_list_push(request_list *l, dbp_request *r);
void dbp_request_list_remove(request_list *l, dbp_request *r);
dbp_request *dbp_request_list_pop(request_list *l);
void dbp_conn_list_push_front(conn_list *l, dbp_conn *c);
void dbp_conn_list_remove(conn_list *l, dbp_conn *c);

/* request.c */
void dbp_request_ref(dbp_request *req);
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

/* completion.c */
void dbp_completion_queue_push(dbp_completion_queue *cq, dbp_request *req);

/* pool.c (caller holds mgr->mu unless the name says otherwise) */
int dbp_pool_new(dbp_manager *mgr, const char *id, const dbp_driver *driver, void *config,
                 const dbp_pool_options *opts, dbp_pool **out, dbp_error *err);
/* Drops a reference; returns the pool when that was the last one, for the
 * caller to dbp_pool_destroy after unlocking (and after closing the
 * connections it got back), else NULL. */
dbp_pool *dbp_pool_unref_locked(dbp_pool *pool);
void dbp_pool_destroy(dbp_pool *pool);
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
/* Records that a slot is connected (called by the worker). */
void dbp_pool_conn_opened_locked(dbp_pool *pool, dbp_conn *conn, void *handle, int64_t now);
/* Disconnects and frees a chain of connections. No lock needed. */
void dbp_conns_destroy(dbp_conn *chain);

/* worker.c */
/* Queues a request whose connection is assigned; starts a worker if all
 * are busy. */
void dbp_worker_enqueue_locked(dbp_manager *mgr, dbp_request *req);
/* Starts workers while queued requests outnumber idle workers. */
void dbp_worker_spawn_locked(dbp_manager *mgr);

/* lease.c */
/* Puts a request on the lease's connection (caller holds mgr->mu). */
void dbp_lease_enqueue_locked(dbp_lease *lease, dbp_request *req);
/* Resets a leased connection (closes a cursor, rolls back) and returns it
 * to its pool; frees the lease. Call without the lock. */
void dbp_lease_return(dbp_lease *lease);

/* manager.c */
void dbp_janitor_wake_locked(dbp_manager *mgr);
/* 1 in a child process forked after the manager was created. */
int dbp_manager_forked(const dbp_manager *mgr);
/* Drops a manager reference (call without the lock); the last one frees it.
 * Pools hold one so that a lease released after dbp_manager_free still
 * finds its lock. */
void dbp_manager_unref(dbp_manager *mgr);

/* Requests the library makes for itself; nobody waits for them and they do
 * not count in the pool's request statistics. */
#define DBP_OP_WARM_UP 100     /* open a connection to keep a pool at min_size */
#define DBP_OP_RESET_LEASE 101 /* roll back / close the cursor of a released lease */
#define DBP_OP_IS_INTERNAL(op) ((int)(op) >= DBP_OP_WARM_UP)

#endif
