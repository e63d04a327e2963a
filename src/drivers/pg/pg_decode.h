/* pg_decode.h - what pg_types.c (planning, scalars, arrays) and
 * pg_numeric.c share while decoding binary values. */
#ifndef DBP_PG_DECODE_H
#define DBP_PG_DECODE_H

#include <stdint.h>

#include "column.h"
#include "error.h"
#include "pg_types.h"

/* Arrow decimal128's widest precision. */
#define DECIMAL_MAX_PRECISION 38

/* The context of one decode, for the messages. */
typedef struct decode_ctx {
    const pg_column_plan *plan;
    const char *column;
    dbp_error *err;
} decode_ctx;

/* A big-endian 16-bit integer. */
uint16_t pg_read16(const unsigned char *p);
/* DBP_E_PROTOCOL naming the column and its type. */
int pg_malformed(const decode_ctx *ctx, const char *why);
int pg_bad_length(const decode_ctx *ctx, int32_t len);
/* A column append's result as the decode's error. */
int pg_appended(const decode_ctx *ctx, int rc);
int pg_decode_numeric(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                      dbp_column *out);

#endif
