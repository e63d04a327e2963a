/* side_job.c - see side_job.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "alloc.h"
#include "side_job.h"

/* Jobs running at once, process-wide; beyond that none starts, and the
 * caller's wait simply runs out. */
#define MAX_IN_FLIGHT 64

static atomic_int in_flight;

struct dbp_side_job {
    void (*run)(void *arg);
    void (*free_arg)(void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC, the clock of dbp_now_ns */
    int done;
    int refs; /* the thread's and the caller's */
};

static void release(dbp_side_job *job)
{
    pthread_mutex_lock(&job->mu);
    int last = --job->refs == 0;
    pthread_mutex_unlock(&job->mu);
    if (!last)
        return;
    job->free_arg(job->arg);
    pthread_cond_destroy(&job->cv);
    pthread_mutex_destroy(&job->mu);
    dbp_free(job);
}

static void *job_main(void *p)
{
    dbp_side_job *job = p;
    job->run(job->arg);
    pthread_mutex_lock(&job->mu);
    job->done = 1;
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
    release(job);
    atomic_fetch_sub(&in_flight, 1);
    return NULL;
}

dbp_side_job *dbp_side_job_start(void (*run)(void *arg), void *arg, void (*free_arg)(void *arg))
{
    if (atomic_fetch_add(&in_flight, 1) >= MAX_IN_FLIGHT) {
        atomic_fetch_sub(&in_flight, 1);
        free_arg(arg);
        return NULL;
    }
    dbp_side_job *job = dbp_calloc(1, sizeof *job);
    if (!job) {
        atomic_fetch_sub(&in_flight, 1);
        free_arg(arg);
        return NULL;
    }
    *job = (dbp_side_job){.run = run, .free_arg = free_arg, .arg = arg, .refs = 2};
    pthread_mutex_init(&job->mu, NULL);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cv, &cattr);
    pthread_condattr_destroy(&cattr);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    int started = pthread_create(&thread, &attr, job_main, job) == 0;
    pthread_attr_destroy(&attr);
    if (started)
        return job;
    atomic_fetch_sub(&in_flight, 1);
    job->refs = 1;
    release(job);
    return NULL;
}

int dbp_side_job_done(dbp_side_job *job)
{
    pthread_mutex_lock(&job->mu);
    int done = job->done;
    pthread_mutex_unlock(&job->mu);
    return done;
}

int dbp_side_job_wait(dbp_side_job *job, int64_t until_ns)
{
    struct timespec ts = {.tv_sec = until_ns / 1000000000, .tv_nsec = until_ns % 1000000000};
    pthread_mutex_lock(&job->mu);
    while (!job->done && pthread_cond_timedwait(&job->cv, &job->mu, &ts) == 0)
        ;
    int done = job->done;
    pthread_mutex_unlock(&job->mu);
    release(job);
    return done;
}
