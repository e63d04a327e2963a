/* redis_values.c - a Redis value (always bytes) into a typed Arrow column,
 * exactly or not at all: integers in range with nothing around them,
 * floats as strtod reads them whole ("inf", "nan" included), booleans as
 * 1/0/true/false, dates and timestamps in ISO form, text only as valid
 * UTF-8. Fuzzed by tests/fuzz/fuzz_redis_values.c. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_internal.h"
#include "textparse.h"

int rd_type_supported(dbp_type_id id)
{
    switch (id) {
    case DBP_T_BOOL:
    case DBP_T_INT8:
    case DBP_T_INT16:
    case DBP_T_INT32:
    case DBP_T_INT64:
    case DBP_T_UINT8:
    case DBP_T_UINT16:
    case DBP_T_UINT32:
    case DBP_T_UINT64:
    case DBP_T_FLOAT32:
    case DBP_T_FLOAT64:
    case DBP_T_DATE32:
    case DBP_T_TIMESTAMP_US:
    case DBP_T_TIMESTAMP_UTC:
    case DBP_T_STRING:
    case DBP_T_BINARY:
        return 1;
    default:
        return 0;
    }
}

/* Decimal digits with an optional leading '-', nothing else. */
static int parse_int(const char *s, size_t len, int allow_minus, int64_t *out)
{
    size_t i = 0;
    int negative = 0;
    if (len > 0 && s[0] == '-' && allow_minus) {
        negative = 1;
        i = 1;
    }
    if (i == len || len - i > 20)
        return DBP_E_DATA;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return DBP_E_DATA;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return DBP_E_DATA;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return DBP_E_DATA;
        *out = (int64_t)(0 - v);
    } else {
        *out = (int64_t)v; /* UINT64 keeps the bits */
        if (!allow_minus)
            return DBP_OK;
        if (v > INT64_MAX)
            return DBP_E_DATA;
    }
    return DBP_OK;
}

static int append_integer(dbp_column *col, const char *s, size_t len)
{
    static const struct {
        dbp_type_id id;
        int64_t lo, hi;
    } ranges[] = {
        {DBP_T_INT8, INT8_MIN, INT8_MAX},       {DBP_T_INT16, INT16_MIN, INT16_MAX},
        {DBP_T_INT32, INT32_MIN, INT32_MAX},    {DBP_T_INT64, INT64_MIN, INT64_MAX},
        {DBP_T_UINT8, 0, UINT8_MAX},            {DBP_T_UINT16, 0, UINT16_MAX},
        {DBP_T_UINT32, 0, UINT32_MAX},
    };
    int64_t v = 0;
    if (col->type.id == DBP_T_UINT64)
        return parse_int(s, len, 0, &v) == DBP_OK ? dbp_column_append_int(col, v) : DBP_E_DATA;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].id == col->type.id) {
            if (parse_int(s, len, 1, &v) != DBP_OK || v < ranges[i].lo || v > ranges[i].hi)
                return DBP_E_DATA;
            return dbp_column_append_int(col, v);
        }
    return DBP_E_MISUSE;
}

/* strtod over the whole text (the reply's bytes end in a NUL). */
static int append_float(dbp_column *col, const char *s, size_t len)
{
    if (len == 0 || strlen(s) != len || s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return DBP_E_DATA;
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    if (end != s + len || (errno == ERANGE && isinf(d)))
        return DBP_E_DATA; /* "1e309" is no infinity; "inf" is */
    if (col->type.id == DBP_T_FLOAT32 && isfinite(d) && fabs(d) > FLT_MAX)
        return DBP_E_DATA; /* out of Float32's range */
    return dbp_column_append_double(col, d);
}

static int append_bool(dbp_column *col, const char *s, size_t len)
{
    if ((len == 1 && s[0] == '1') || (len == 4 && strncasecmp(s, "true", 4) == 0))
        return dbp_column_append_bool(col, 1);
    if ((len == 1 && s[0] == '0') || (len == 5 && strncasecmp(s, "false", 5) == 0))
        return dbp_column_append_bool(col, 0);
    return DBP_E_DATA;
}

int rd_append_value(dbp_column *col, const char *s, size_t len)
{
    int32_t days;
    int64_t us;
    switch (col->type.id) {
    case DBP_T_BINARY:
        return dbp_column_append_bytes(col, s, len);
    case DBP_T_STRING:
        if (!dbp_utf8_valid((const unsigned char *)s, len))
            return DBP_E_DATA;
        return dbp_column_append_bytes(col, s, len);
    case DBP_T_BOOL:
        return append_bool(col, s, len);
    case DBP_T_FLOAT32:
    case DBP_T_FLOAT64:
        return append_float(col, s, len);
    case DBP_T_DATE32:
        return dbp_parse_date(s, len, &days) == DBP_OK ? dbp_column_append_int(col, days)
                                                       : DBP_E_DATA;
    case DBP_T_TIMESTAMP_US:
    case DBP_T_TIMESTAMP_UTC:
        return dbp_parse_timestamp(s, len, &us) == DBP_OK ? dbp_column_append_int(col, us)
                                                          : DBP_E_DATA;
    default:
        return append_integer(col, s, len);
    }
}
