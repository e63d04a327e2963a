/* tds_bulk.h - write_frame for mssql: rows of an Arrow stream into a table
 * through db-lib's bulk copy (bcp_*), all or nothing. */
#ifndef DBP_TDS_BULK_H
#define DBP_TDS_BULK_H

#include <stdint.h>

#include "arrow_abi.h"
#include "tds_internal.h"

int tds_bulk_load(tds_conn *c, const char *table, struct ArrowArrayStream *rows,
                  const dbp_exec_ctx *ctx, int64_t *loaded, dbp_error *err);

#endif
