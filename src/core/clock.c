/* clock.c - the monotonic clock every deadline and budget is measured on
 * (its own file so that drivers linked without the manager, as the fuzz
 * harnesses are, still have it). */
#include <time.h>

#include "driver.h"

int64_t dbp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
