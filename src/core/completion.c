/* completion.c - finished requests queued for an event loop. One eventfd
 * signals "not empty"; the loop drains everything per wake-up, so a burst of
 * completions costs one wake-up, not one each. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

struct dbp_completion_queue {
    pthread_mutex_t mu;
    dbp_request *head, *tail;
    int fd;
    int signalled; /* the eventfd holds a count the loop has not read */
};

int dbp_completion_queue_new(dbp_completion_queue **out, dbp_error *err)
{
    dbp_completion_queue *cq = dbp_calloc(1, sizeof *cq);
    if (!cq)
        return dbp_error_nomem(err);
    cq->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cq->fd < 0) {
        int e = errno;
        dbp_free(cq);
        return dbp_error_set(err, DBP_E_NOMEM, e, NULL, "eventfd failed (errno %d)", e);
    }
    pthread_mutex_init(&cq->mu, NULL);
    *out = cq;
    return DBP_OK;
}

void dbp_completion_queue_free(dbp_completion_queue *cq)
{
    if (!cq)
        return;
    dbp_request *req;
    while (dbp_completion_queue_drain(cq, &req, 1) == 1)
        dbp_request_unref(req);
    close(cq->fd);
    pthread_mutex_destroy(&cq->mu);
    dbp_free(cq);
}

int dbp_completion_queue_fd(const dbp_completion_queue *cq) { return cq->fd; }

void dbp_completion_queue_push(dbp_completion_queue *cq, dbp_request *req)
{
    pthread_mutex_lock(&cq->mu);
    req->cq_next = NULL;
    if (cq->tail)
        cq->tail->cq_next = req;
    else
        cq->head = req;
    cq->tail = req;
    /* Written under the lock: a drain between unlocking and writing would
     * otherwise leave the fd readable with the queue empty. */
    if (!cq->signalled) {
        uint64_t one = 1;
        /* Cannot fail short of a bad fd: the counter never nears its limit. */
        ssize_t n = write(cq->fd, &one, sizeof one);
        (void)n;
        cq->signalled = 1;
    }
    pthread_mutex_unlock(&cq->mu);
}

size_t dbp_completion_queue_drain(dbp_completion_queue *cq, dbp_request **out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&cq->mu);
    while (n < max && cq->head) {
        dbp_request *req = cq->head;
        cq->head = req->cq_next;
        if (!cq->head)
            cq->tail = NULL;
        req->cq_next = NULL;
        out[n++] = req;
    }
    if (!cq->head && cq->signalled) {
        uint64_t count;
        ssize_t r = read(cq->fd, &count, sizeof count); /* clears readability */
        (void)r;
        cq->signalled = 0;
    }
    pthread_mutex_unlock(&cq->mu);
    return n;
}
