/* pg_numeric.c - PostgreSQL's binary numeric (base-10000 digits, a weight
 * and a display scale) into Arrow decimal128, exactly or not at all: a
 * value that would lose a digit or outgrow 38 digits is refused with a hint
 * at the cast that would make it fit. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pg_decode.h"

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define NUMERIC_DSCALE_MAX 0x3FFF

/* A numeric's digits (base 10000, most significant first) with the zero
 * digits at both ends stripped, so it is 0 when first > last. */
typedef struct numeric_digits {
    const unsigned char *raw; /* 2 bytes per digit */
    int first, last;
    int weight; /* power of 10000 of digit `first` */
    int negative;
    int fraction_digits; /* decimal digits after the point up to the last non-zero one */
    int integer_digits;  /* decimal digits before the point */
} numeric_digits;

static int digit_at(const numeric_digits *nd, int i)
{
    return pg_read16(nd->raw + 2 * i);
}

static int decimal_width(int v) /* digits of 1..9999 */
{
    return v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1;
}

static __int128 pow10_i128(int k) /* 0 <= k <= 38 */
{
    __int128 v = 1;
    while (k-- > 0)
        v *= 10;
    return v;
}

/* acc * mul + add when it stays below `limit`; 0 otherwise. */
static int grow(__int128 *acc, __int128 mul, __int128 add, __int128 limit)
{
    if (*acc > (limit - 1 - add) / mul)
        return 0;
    *acc = *acc * mul + add;
    return 1;
}

/* The value as an integer with `scale` fraction digits (scale >= the
 * value's fraction_digits), or 0 when it reaches 10^precision. */
static int numeric_unscaled(const numeric_digits *nd, int scale, int precision, __int128 *out)
{
    *out = 0;
    if (nd->first > nd->last)
        return 1;
    if (scale > DECIMAL_MAX_PRECISION)
        return 0;
    __int128 limit = pow10_i128(precision);
    /* power of ten of the last digit's units in the scaled integer (>= -3) */
    int64_t k_last = 4 * ((int64_t)nd->weight - (nd->last - nd->first)) + scale;
    if (k_last < -3)
        return 0; /* a non-zero digit below the scale: callers rule that out */
    __int128 acc = 0;
    for (int i = nd->first; i <= nd->last; i++) {
        int d = digit_at(nd, i);
        int ok;
        if (i < nd->last || k_last >= 0)
            ok = grow(&acc, 10000, d, limit);
        else /* the last digit reaches below the scale: its low digits are 0 */
            ok = grow(&acc, pow10_i128(4 + (int)k_last), d / (int)pow10_i128((int)-k_last),
                      limit);
        if (!ok)
            return 0;
    }
    if (k_last > 0) {
        if (k_last > DECIMAL_MAX_PRECISION || !grow(&acc, pow10_i128((int)k_last), 0, limit))
            return 0;
    }
    *out = nd->negative ? -acc : acc;
    return 1;
}

/* Parses and checks the header and digits; fills *nd and *dscale. */
static int numeric_read(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                        numeric_digits *nd, int *dscale)
{
    if (len < 8)
        return pg_bad_length(ctx, len);
    int ndigits = (int16_t)pg_read16(p);
    int weight = (int16_t)pg_read16(p + 2);
    unsigned sign = pg_read16(p + 4);
    *dscale = (int16_t)pg_read16(p + 6);
    if (ndigits < 0 || len != 8 + 2 * ndigits)
        return pg_malformed(ctx, "digit count does not match the length");
    if (sign == NUMERIC_NAN || sign == NUMERIC_PINF || sign == NUMERIC_NINF)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": numeric %s has no decimal128 form; cast the "
                             "column to float8 (which has NaN and infinities) or to text",
                             ctx->column,
                             sign == NUMERIC_NAN ? "NaN" : sign == NUMERIC_PINF ? "Infinity"
                                                                                 : "-Infinity");
    if (sign != NUMERIC_POS && sign != NUMERIC_NEG)
        return pg_malformed(ctx, "unknown sign");
    if (*dscale < 0 || *dscale > NUMERIC_DSCALE_MAX)
        return pg_malformed(ctx, "bad display scale");
    nd->raw = p + 8;
    for (int i = 0; i < ndigits; i++) {
        if (pg_read16(nd->raw + 2 * i) > 9999)
            return pg_malformed(ctx, "digit above 9999");
    }
    nd->first = 0;
    nd->last = ndigits - 1;
    nd->weight = weight;
    while (nd->first <= nd->last && digit_at(nd, nd->first) == 0) {
        nd->first++;
        nd->weight--;
    }
    while (nd->last >= nd->first && digit_at(nd, nd->last) == 0)
        nd->last--;
    nd->negative = sign == NUMERIC_NEG;
    nd->fraction_digits = 0;
    nd->integer_digits = 0;
    if (nd->first <= nd->last) {
        int last_power = nd->weight - (nd->last - nd->first);
        if (last_power < 0) {
            int d = digit_at(nd, nd->last), zeros = 0;
            while (d % 10 == 0) {
                d /= 10;
                zeros++;
            }
            nd->fraction_digits = 4 * -last_power - zeros;
        }
        if (nd->weight >= 0)
            nd->integer_digits = 4 * nd->weight + decimal_width(digit_at(nd, nd->first));
    }
    return DBP_OK;
}

static int numeric_too_wide(const decode_ctx *ctx, const dbp_column *out, const numeric_digits *nd,
                            int scale, int with_earlier)
{
    return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                         "column \"%s\": numeric values need more than the %d digits of "
                         "Arrow's decimal128 (%d integer digits with %d fraction digits%s); "
                         "cast the column to a numeric(p,s) with p <= %d, to float8, or to "
                         "text",
                         ctx->column, out->type.precision, nd->integer_digits, scale,
                         with_earlier ? ", counting earlier values" : "", DECIMAL_MAX_PRECISION);
}

int pg_decode_numeric(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                          dbp_column *out)
{
    numeric_digits nd = {0};
    int dscale = 0;
    int rc = numeric_read(ctx, p, len, &nd, &dscale);
    if (rc != DBP_OK)
        return rc;
    __int128 v;
    if (ctx->plan->typmod >= 4) {
        /* numeric(p,s): the server rounded to s already; never round here */
        if (nd.fraction_digits > out->type.scale)
            return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                                 "column \"%s\": numeric value has %d fraction digits, more "
                                 "than the column's scale of %d",
                                 ctx->column, nd.fraction_digits, out->type.scale);
        if (!numeric_unscaled(&nd, out->type.scale, out->type.precision, &v))
            return numeric_too_wide(ctx, out, &nd, out->type.scale, 0);
        return pg_appended(ctx, dbp_column_append_decimal(out, v));
    }
    /* Unconstrained: the column's scale is the most fraction digits any value
     * needs, so it only grows, and only when a digit would otherwise be lost.
     * The display scale is not followed (1.50 reads 1.5): trailing zeros of
     * one value would otherwise crowd out the integer digits of another. */
    int scale = out->type.scale > nd.fraction_digits ? out->type.scale : nd.fraction_digits;
    if (scale > out->type.precision || !numeric_unscaled(&nd, scale, out->type.precision, &v))
        return numeric_too_wide(ctx, out, &nd, scale, 0);
    if (scale > out->type.scale) {
        rc = dbp_column_rescale_decimal(out, scale);
        if (rc == DBP_E_DATA) /* earlier values would outgrow the precision */
            return numeric_too_wide(ctx, out, &nd, scale, 1);
        if (rc != DBP_OK)
            return pg_appended(ctx, rc);
    }
    return pg_appended(ctx, dbp_column_append_decimal(out, v));
}
