/* error.h - filling dbp_error. */
#ifndef DBP_ERROR_H
#define DBP_ERROR_H

#include "db_pool.h"

/* Fills `err` (which may be NULL) and returns `category`, so a failing path
 * reads `return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "...", ...);`. */
int dbp_error_set(dbp_error *err, int category, int native_code, const char *sqlstate,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Shorthand for the out-of-memory error. */
int dbp_error_nomem(dbp_error *err);

/* Resets `err` to "no error". */
void dbp_error_clear(dbp_error *err);
/* Drops a UTF-8 sequence left incomplete at the end of `text` (text cut to
 * fit a buffer), so that it still decodes. */
void dbp_utf8_trim(char *text);

#endif
