/* events.c - endpoint events (up, suspect, down, role changes, a new
 * primary) kept in a small ring per manager for whoever drains them (the
 * Python package logs them). Pushing never blocks: when nobody drains, the
 * oldest events are overwritten. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

#define EVENT_RING 256

void dbp_event_push_locked(dbp_manager *mgr, dbp_event_kind kind, const dbp_endpoint *ep,
                           dbp_role old_role, const char *message)
{
    if (!mgr->events) {
        mgr->events = dbp_calloc(EVENT_RING, sizeof *mgr->events);
        if (!mgr->events)
            return; /* out of memory: the event is lost, the state is still in stats */
    }
    size_t slot = (mgr->events_head + mgr->events_count) % EVENT_RING;
    if (mgr->events_count == EVENT_RING)
        mgr->events_head = (mgr->events_head + 1) % EVENT_RING;
    else
        mgr->events_count++;
    dbp_event *ev = &mgr->events[slot];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev->kind = kind;
    ev->unix_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    snprintf(ev->pool_id, sizeof ev->pool_id, "%s", ep->pool->id);
    snprintf(ev->endpoint, sizeof ev->endpoint, "%s", ep->label);
    ev->role = ep->role;
    ev->old_role = old_role;
    snprintf(ev->message, sizeof ev->message, "%s", message ? message : "");
    pthread_cond_broadcast(&mgr->events_cv);
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int dbp_manager_wait_events(dbp_manager *mgr, int64_t timeout_ms, dbp_event *out, size_t max,
                            size_t *n)
{
    *n = 0;
    if (dbp_manager_forked(mgr))
        return dbp_error_set(NULL, DBP_E_CLOSED, 0, NULL, "forked");
    struct timespec deadline;
    if (timeout_ms >= 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&mgr->mu);
    int timed_out = 0;
    while (!mgr->closing && mgr->events_count == 0 && !timed_out) {
        if (timeout_ms < 0)
            pthread_cond_wait(&mgr->events_cv, &mgr->mu);
        else
            timed_out = pthread_cond_timedwait(&mgr->events_cv, &mgr->mu, &deadline) != 0;
    }
    while (*n < max && mgr->events_count > 0) {
        out[(*n)++] = mgr->events[mgr->events_head];
        mgr->events_head = (mgr->events_head + 1) % EVENT_RING;
        mgr->events_count--;
    }
    int closing = mgr->closing;
    pthread_mutex_unlock(&mgr->mu);
    return closing && *n == 0 ? DBP_E_CLOSED : DBP_OK;
}
