/* alloc.h - every allocation in libdbpool goes through these checked
 * wrappers. They never abort: callers handle NULL. Tests can make the n-th
 * allocation from now fail to exercise error paths. */
#ifndef DBP_ALLOC_H
#define DBP_ALLOC_H

#include <stddef.h>

void *dbp_malloc(size_t size);
void *dbp_calloc(size_t count, size_t size); /* checks count * size overflow */
void *dbp_realloc(void *ptr, size_t size);
void dbp_free(void *ptr);
char *dbp_strdup(const char *s);
char *dbp_strndup(const char *s, size_t len);

/* Overwrites `len` bytes at `ptr` with zeros in a way the compiler cannot
 * drop as a dead store (for secrets about to be freed). */
void dbp_wipe(void *ptr, size_t len);
/* Wipes the string `s` (a password, a URL or conninfo holding one), then
 * frees it. NULL is fine. */
void dbp_free_secret(char *s);

/* Test hook: allocation number `n` from now (1 = the next one) and every one
 * after it fail, until dbp_alloc_fail_reset(). */
void dbp_alloc_fail_after(long n);
void dbp_alloc_fail_reset(void);

#endif
