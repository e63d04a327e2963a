/* result.h - a query result: a fixed set of named columns, built batch by
 * batch, exported as an Arrow C stream of struct arrays. */
#ifndef DBP_RESULT_H
#define DBP_RESULT_H

#include "column.h"

typedef struct dbp_result dbp_result;

/* Creates a result with `n_columns` columns of type DBP_T_NULL named by
 * `names` (copied; a name that repeats an earlier one gets the first free
 * suffix: id, id_1, id_2). Types are set afterwards through
 * dbp_result_column. Free with dbp_result_free unless exported. */
int dbp_result_new(dbp_result **out, size_t n_columns, const char *const *names,
                   dbp_error *err);
void dbp_result_free(dbp_result *res);

size_t dbp_result_n_columns(const dbp_result *res);
dbp_column *dbp_result_column(dbp_result *res, size_t i);
/* Rows in the batch being built. */
int64_t dbp_result_pending_rows(const dbp_result *res);
/* Bytes held by the batch being built. */
size_t dbp_result_pending_memory(const dbp_result *res);
/* Rows in finished batches plus the pending ones. */
int64_t dbp_result_total_rows(const dbp_result *res);
/* Bytes of the finished batches plus the pending ones. */
size_t dbp_result_total_memory(const dbp_result *res);

/* Closes the batch being built (when it has rows) and keeps it. Column types
 * are fixed by the first batch: a later batch whose column has another type
 * fails with DBP_E_DATA, except DBP_T_NULL columns, which take the
 * established type (all their values are NULL), and decimals of the same
 * precision whose scale grew: earlier batches are rescaled exactly. */
int dbp_result_finish_batch(dbp_result *res, dbp_error *err);

/* Finishes the pending batch and moves the result into `out`; the result is
 * consumed (freed) whether or not this succeeds. A result with no rows yields
 * a stream with the schema and no batches. */
int dbp_result_export(dbp_result *res, struct ArrowArrayStream *out, dbp_error *err);

#endif
