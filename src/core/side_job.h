/* side_job.h - a short-lived detached thread doing one blocking call for a
 * driver (a cancel request, which opens a connection of its own and may wait
 * on a server that never answers), whose caller waits for it only until a
 * deadline. The job and its argument live until both sides let go. */
#ifndef DBP_SIDE_JOB_H
#define DBP_SIDE_JOB_H

#include <stdint.h>

typedef struct dbp_side_job dbp_side_job;

/* Runs run(arg) on a new detached thread; free_arg(arg) once both the
 * thread and the caller are done with it. NULL (and arg freed) when too
 * many jobs run at once process-wide (64) or a thread cannot start. */
dbp_side_job *dbp_side_job_start(void (*run)(void *arg), void *arg, void (*free_arg)(void *arg));
/* 1 once the job has run; no waiting, and the caller keeps its side. */
int dbp_side_job_done(dbp_side_job *job);
/* Waits until the job has run or until `until_ns` (dbp_now_ns time);
 * returns 1 when it has run. Lets go of the caller's side either way. */
int dbp_side_job_wait(dbp_side_job *job, int64_t until_ns);

#endif
