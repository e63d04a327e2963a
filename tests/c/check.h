/* check.h - a minimal test harness for the C tests: CHECK records a failure
 * with file and line and goes on; RUN runs one test function; each test
 * program returns check_exit() from main. */
#ifndef DBP_CHECK_H
#define DBP_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            check_failures++;                                                             \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                \
    do {                                                                                  \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
        if (check_a_ != check_b_) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,    \
                    __LINE__, #a, #b, check_a_, check_b_);                                \
            check_failures++;                                                             \
        }                                                                                 \
    } while (0)

#define RUN(test)                                                                         \
    do {                                                                                  \
        fprintf(stderr, "-- %s\n", #test);                                                \
        test();                                                                           \
    } while (0)

static inline int check_exit(void)
{
    if (check_failures)
        fprintf(stderr, "%d check(s) failed\n", check_failures);
    else
        fprintf(stderr, "all checks passed\n");
    return check_failures ? 1 : 0;
}

#endif
