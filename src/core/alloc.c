#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Countdown to the first failing allocation; negative = never fail. */
static atomic_long fail_countdown = -1;

static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0)
        return 0;
    if (n <= 1) {
        atomic_store(&fail_countdown, 0);
        return 1;
    }
    return atomic_fetch_sub(&fail_countdown, 1) <= 1;
}

void dbp_alloc_fail_after(long n) { atomic_store(&fail_countdown, n < 1 ? 1 : n); }
void dbp_alloc_fail_reset(void) { atomic_store(&fail_countdown, -1); }

void *dbp_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *dbp_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *dbp_realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void dbp_free(void *ptr) { free(ptr); }

void dbp_wipe(void *ptr, size_t len)
{
    if (ptr)
        explicit_bzero(ptr, len);
}

void dbp_free_secret(char *s)
{
    if (s)
        dbp_wipe(s, strlen(s));
    free(s);
}

char *dbp_strndup(const char *s, size_t len)
{
    char *copy = dbp_malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *dbp_strdup(const char *s) { return dbp_strndup(s, strlen(s)); }
