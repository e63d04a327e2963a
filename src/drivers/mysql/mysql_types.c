/* mysql_types.c - MySQL / MariaDB column types and values in the binary
 * protocol <-> Arrow (docs/mysql.md has the table). Integers keep their
 * width and signedness (BIGINT UNSIGNED is UInt64), DECIMAL is Decimal128
 * with its own precision and scale, TIMESTAMP is UTC (the session runs in
 * '+00:00'), TIME is a Duration (negative and past 24 h survive), BIT is
 * UInt64, text is UTF-8 checked, binary collations are Binary. Nothing is
 * rounded: a value that does not fit is DBP_E_DATA naming the column. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "mysql_internal.h"
#include "textparse.h"

#define BINARY_CHARSET 63 /* charsetnr of binary strings and BLOBs */

static int integer(my_column_plan *out, int bytes, int is_unsigned, enum enum_field_types field)
{
    static const dbp_type_id signed_ids[] = {0, DBP_T_INT8, DBP_T_INT16, 0, DBP_T_INT32,
                                             0, 0,          0,           DBP_T_INT64};
    static const dbp_type_id unsigned_ids[] = {0, DBP_T_UINT8, DBP_T_UINT16, 0, DBP_T_UINT32,
                                               0, 0,           0,            DBP_T_UINT64};
    out->decoder = is_unsigned ? MYD_UINT : MYD_INT;
    out->type.id = is_unsigned ? unsigned_ids[bytes] : signed_ids[bytes];
    out->field = field;
    out->fixed_size = (unsigned long)bytes;
    return DBP_OK;
}

int my_plan_column(const MYSQL_FIELD *f, const my_config *cfg, my_column_plan *out,
                   dbp_error *err)
{
    memset(out, 0, sizeof *out);
    int is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
    int binary = f->charsetnr == BINARY_CHARSET;
    switch (f->type) {
    case MYSQL_TYPE_TINY:
        if (f->length == 1 && cfg->tinyint1_bool) {
            out->decoder = MYD_BOOL, out->type.id = DBP_T_BOOL;
            out->field = MYSQL_TYPE_TINY, out->fixed_size = 1;
            return DBP_OK;
        }
        return integer(out, 1, is_unsigned, MYSQL_TYPE_TINY);
    case MYSQL_TYPE_SHORT:
        return integer(out, 2, is_unsigned, MYSQL_TYPE_SHORT);
    case MYSQL_TYPE_YEAR:
        return integer(out, 2, 0, MYSQL_TYPE_SHORT);
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
        return integer(out, 4, is_unsigned, MYSQL_TYPE_LONG);
    case MYSQL_TYPE_LONGLONG:
        return integer(out, 8, is_unsigned, MYSQL_TYPE_LONGLONG);
    case MYSQL_TYPE_FLOAT:
        out->decoder = MYD_FLOAT, out->type.id = DBP_T_FLOAT32;
        out->field = MYSQL_TYPE_FLOAT, out->fixed_size = 4;
        return DBP_OK;
    case MYSQL_TYPE_DOUBLE:
        out->decoder = MYD_DOUBLE, out->type.id = DBP_T_FLOAT64;
        out->field = MYSQL_TYPE_DOUBLE, out->fixed_size = 8;
        return DBP_OK;
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL: {
        /* the display length counts the sign (signed) and the point (scale > 0) */
        int scale = (int)f->decimals;
        int precision = (int)f->length - (scale > 0) - !is_unsigned;
        if (precision < 1)
            precision = 1;
        if (scale > 38)
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "column '%s' is DECIMAL(%d,%d): more fraction digits than the "
                                 "38 of Decimal128; CAST it to fewer in the query",
                                 f->name, precision, scale);
        /* wider columns (SUM() of BIGINT is DECIMAL(41,0)) take Decimal128's
         * 38 digits: a value that needs more is an error, never rounded */
        if (precision > 38)
            precision = 38;
        if (scale > precision)
            precision = scale;
        out->decoder = MYD_DECIMAL;
        out->type = (dbp_type){DBP_T_DECIMAL128, precision, scale, NULL};
        out->field = MYSQL_TYPE_NEWDECIMAL;
        return DBP_OK;
    }
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
        out->decoder = MYD_DATE, out->type.id = DBP_T_DATE32, out->field = MYSQL_TYPE_DATE;
        out->fixed_size = sizeof(MYSQL_TIME);
        return DBP_OK;
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_DATETIME2:
        out->decoder = MYD_DATETIME, out->type.id = DBP_T_TIMESTAMP_US;
        out->field = MYSQL_TYPE_DATETIME, out->fixed_size = sizeof(MYSQL_TIME);
        return DBP_OK;
    case MYSQL_TYPE_TIMESTAMP:
    case MYSQL_TYPE_TIMESTAMP2:
        out->decoder = MYD_TIMESTAMP, out->type.id = DBP_T_TIMESTAMP_UTC;
        out->field = MYSQL_TYPE_TIMESTAMP, out->fixed_size = sizeof(MYSQL_TIME);
        return DBP_OK;
    case MYSQL_TYPE_TIME:
    case MYSQL_TYPE_TIME2:
        out->decoder = MYD_TIME, out->type.id = DBP_T_DURATION_US;
        out->field = MYSQL_TYPE_TIME, out->fixed_size = sizeof(MYSQL_TIME);
        return DBP_OK;
    case MYSQL_TYPE_BIT:
        out->decoder = MYD_BIT, out->type.id = DBP_T_UINT64, out->field = MYSQL_TYPE_BIT;
        return DBP_OK;
    case MYSQL_TYPE_NULL:
        out->decoder = MYD_TEXT, out->type.id = DBP_T_NULL, out->field = MYSQL_TYPE_NULL;
        return DBP_OK;
    case MYSQL_TYPE_GEOMETRY:
        binary = 1;
        /* fall through */
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_ENUM:
    case MYSQL_TYPE_SET:
    case MYSQL_TYPE_JSON:
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB:
        out->decoder = binary ? MYD_BINARY : MYD_TEXT;
        out->type.id = binary ? DBP_T_BINARY : DBP_T_STRING;
        out->field = MYSQL_TYPE_STRING;
        return DBP_OK;
    default:
        return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                             "column '%s' has MySQL type %d, which this driver cannot read "
                             "exactly; CAST it to a standard type in the query",
                             f->name, (int)f->type);
    }
}

/* ---- values ------------------------------------------------------------------ */

static int64_t read_signed(const void *buf, unsigned long size)
{
    switch (size) {
    case 1: return *(const int8_t *)buf;
    case 2: return *(const int16_t *)buf;
    case 4: return *(const int32_t *)buf;
    default: return *(const int64_t *)buf;
    }
}

static uint64_t read_unsigned(const void *buf, unsigned long size)
{
    switch (size) {
    case 1: return *(const uint8_t *)buf;
    case 2: return *(const uint16_t *)buf;
    case 4: return *(const uint32_t *)buf;
    default: return *(const uint64_t *)buf;
    }
}

/* A date the calendar has (MySQL stores 0000-00-00 and, with
 * ALLOW_INVALID_DATES, 2021-02-31). */
static int real_date(const MYSQL_TIME *t, int64_t *days)
{
    if (t->month < 1 || t->month > 12 || t->day < 1 || t->day > 31)
        return 0;
    *days = dbp_days_from_civil(t->year, t->month, t->day);
    int64_t y;
    unsigned m, d;
    dbp_civil_from_days(*days, &y, &m, &d);
    return y == (int64_t)t->year && m == t->month && d == t->day;
}

static int not_a_date(const my_config *cfg, const MYSQL_TIME *t, dbp_column *out,
                      const char *column, dbp_error *err)
{
    if (cfg->zero_dates_null)
        return dbp_column_append_null(out);
    return dbp_error_set(err, DBP_E_DATA, 0, "22007",
                         "column '%s' holds %04u-%02u-%02u, which is not a calendar date "
                         "(a zero or invalid MySQL date); set zero_dates='null' to read such "
                         "values as NULL, or filter them in the query",
                         column, t->year, t->month, t->day);
}

static int decode_temporal(const my_column_plan *plan, const my_config *cfg, const MYSQL_TIME *t,
                           dbp_column *out, const char *column, dbp_error *err)
{
    /* the connector fills these from the wire: nothing outside MySQL's ranges
     * is taken (TIME: up to 838:59:59.999999) */
    uint64_t hours = plan->decoder == MYD_TIME ? (uint64_t)t->day * 24 + t->hour : t->hour;
    if (hours > (plan->decoder == MYD_TIME ? 838u : 23u) || t->minute > 59 || t->second > 59 ||
        t->second_part > 999999 || t->year > 9999)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                             "column '%s': the server sent a time out of range", column);
    int64_t us_of_day = (((int64_t)t->hour * 60 + t->minute) * 60 + t->second) * 1000000 +
                        (int64_t)t->second_part;
    if (plan->decoder == MYD_TIME) {
        /* the connector may fold the days of a TIME into its hours */
        int64_t us = (int64_t)t->day * 86400000000LL + us_of_day;
        return dbp_column_append_int(out, t->neg ? -us : us);
    }
    int64_t days;
    if (!real_date(t, &days))
        return not_a_date(cfg, t, out, column, err);
    if (plan->decoder == MYD_DATE)
        return dbp_column_append_int(out, days);
    return dbp_column_append_int(out, days * 86400000000LL + us_of_day);
}

static int decode_bit(const unsigned char *buf, unsigned long len, dbp_column *out,
                      const char *column, dbp_error *err)
{
    if (len > 8)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                             "column '%s' (BIT): %lu bytes from the server", column, len);
    uint64_t v = 0;
    for (unsigned long i = 0; i < len; i++)
        v = v << 8 | buf[i]; /* big-endian, as the server sends it */
    return dbp_column_append_int(out, (int64_t)v);
}

int my_decode_value(const my_column_plan *plan, const my_config *cfg, const void *buf,
                    unsigned long len, dbp_column *out, const char *column, dbp_error *err)
{
    int rc;
    switch (plan->decoder) {
    case MYD_INT:
        rc = dbp_column_append_int(out, read_signed(buf, plan->fixed_size));
        break;
    case MYD_UINT:
        rc = dbp_column_append_int(out, (int64_t)read_unsigned(buf, plan->fixed_size));
        break;
    case MYD_BOOL: {
        int8_t v = *(const int8_t *)buf;
        if (v != 0 && v != 1) /* TINYINT(1) holds any byte: never squashed to true */
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "column '%s' is TINYINT(1), read as Boolean, but holds %d; set "
                                 "tinyint1_bool=false to read it as an integer",
                                 column, (int)v);
        rc = dbp_column_append_bool(out, v);
        break;
    }
    case MYD_FLOAT:
        rc = dbp_column_append_double(out, *(const float *)buf);
        break;
    case MYD_DOUBLE:
        rc = dbp_column_append_double(out, *(const double *)buf);
        break;
    case MYD_DECIMAL: {
        __int128 v;
        if (dbp_parse_decimal(buf, len, plan->type.precision, plan->type.scale, &v) != DBP_OK)
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "column '%s': '%.*s' does not fit DECIMAL(%d,%d)", column,
                                 (int)(len < 80 ? len : 80), (const char *)buf,
                                 plan->type.precision, plan->type.scale);
        rc = dbp_column_append_decimal(out, v);
        break;
    }
    case MYD_DATE:
    case MYD_DATETIME:
    case MYD_TIMESTAMP:
    case MYD_TIME:
        return decode_temporal(plan, cfg, buf, out, column, err);
    case MYD_BIT:
        return decode_bit(buf, len, out, column, err);
    case MYD_TEXT:
        if (out->type.id == DBP_T_NULL)
            return dbp_column_append_null(out);
        if (!dbp_utf8_valid(buf, len))
            return dbp_error_set(err, DBP_E_DATA, 0, "22021",
                                 "column '%s' holds text that is not valid UTF-8", column);
        /* fall through */
    default: /* MYD_BINARY */
        rc = dbp_column_append_bytes(out, buf, len);
        break;
    }
    return rc == DBP_OK ? DBP_OK
           : rc == DBP_E_NOMEM ? dbp_error_nomem(err)
                               : dbp_error_set(err, rc, 0, NULL, "column '%s': value rejected",
                                               column);
}

/* ---- parameters ---------------------------------------------------------------- */

static void civil_time(int64_t days, MYSQL_TIME *t)
{
    int64_t y;
    unsigned m, d;
    dbp_civil_from_days(days, &y, &m, &d);
    t->year = (unsigned)y, t->month = m, t->day = d;
}

static int temporal_param(const dbp_cell *cell, size_t position, my_param *store,
                          MYSQL_BIND *bind, dbp_error *err)
{
    MYSQL_TIME *t = &store->time;
    memset(t, 0, sizeof *t);
    int64_t us = cell->i;
    switch (cell->kind) {
    case DBP_V_DATE:
        civil_time(us, t);
        t->time_type = MYSQL_TIMESTAMP_DATE;
        bind->buffer_type = MYSQL_TYPE_DATE;
        break;
    case DBP_V_TIME:
    case DBP_V_INTERVAL: {
        uint64_t mag = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
        t->neg = us < 0;
        t->hour = (unsigned)(mag / 3600000000ULL);
        t->minute = (unsigned)(mag / 60000000ULL % 60);
        t->second = (unsigned)(mag / 1000000ULL % 60);
        t->second_part = (unsigned long)(mag % 1000000ULL);
        if (t->hour > 838)
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "parameter %zu: a duration beyond MySQL TIME's 838:59:59",
                                 position);
        t->time_type = MYSQL_TIMESTAMP_TIME;
        bind->buffer_type = MYSQL_TYPE_TIME;
        break;
    }
    default: { /* TIMESTAMP (naive) and TIMESTAMP_TZ (UTC: the session's zone) */
        int64_t days = us >= 0 ? us / 86400000000LL : -((-us + 86400000000LL - 1) / 86400000000LL);
        int64_t rest = us - days * 86400000000LL;
        civil_time(days, t);
        t->hour = (unsigned)(rest / 3600000000LL);
        t->minute = (unsigned)(rest / 60000000LL % 60);
        t->second = (unsigned)(rest / 1000000LL % 60);
        t->second_part = (unsigned long)(rest % 1000000LL);
        t->time_type = MYSQL_TIMESTAMP_DATETIME;
        bind->buffer_type = MYSQL_TYPE_DATETIME;
        break;
    }
    }
    bind->buffer = t;
    return DBP_OK;
}

int my_param_bind(const dbp_cell *cell, size_t position, my_param *store, MYSQL_BIND *bind,
                  dbp_error *err)
{
    memset(bind, 0, sizeof *bind);
    memset(store, 0, sizeof *store);
    switch (cell->kind) {
    case DBP_V_NULL:
        bind->buffer_type = MYSQL_TYPE_NULL;
        return DBP_OK;
    case DBP_V_BOOL:
    case DBP_V_INT64:
        store->i = cell->i;
        bind->buffer_type = MYSQL_TYPE_LONGLONG;
        bind->buffer = &store->i;
        return DBP_OK;
    case DBP_V_DOUBLE:
        store->d = cell->d;
        bind->buffer_type = MYSQL_TYPE_DOUBLE;
        bind->buffer = &store->d;
        return DBP_OK;
    case DBP_V_TEXT:
    case DBP_V_UUID:
    case DBP_V_JSON:
    case DBP_V_INET:
    case DBP_V_DECIMAL:
    case DBP_V_BLOB:
        store->length = (unsigned long)cell->len;
        bind->buffer_type = cell->kind == DBP_V_BLOB      ? MYSQL_TYPE_BLOB
                            : cell->kind == DBP_V_DECIMAL ? MYSQL_TYPE_NEWDECIMAL
                                                              : MYSQL_TYPE_STRING;
        bind->buffer = (void *)cell->data;
        bind->buffer_length = store->length;
        bind->length = &store->length;
        return DBP_OK;
    case DBP_V_DATE:
    case DBP_V_TIME:
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ:
    case DBP_V_INTERVAL:
        return temporal_param(cell, position, store, bind, err);
    default:
        return dbp_error_set(err, DBP_E_MISUSE, 0, "07006",
                             "parameter %zu is %s, which MySQL has no type for; %s", position,
                             dbp_value_kind_name(cell->kind), dbp_value_kind_hint(cell->kind));
    }
}
