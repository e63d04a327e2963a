/* tds_types.c - SQL Server values through db-lib <-> Arrow and RPC
 * parameters (see tds_types.h and docs/mssql.md for the type table). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "tds_types.h"
#include "textparse.h"

/* ---- result columns ------------------------------------------------------ */

int tds_plan_column(int dbtype, const DBTYPEINFO *info, const char *column, tds_column_plan *out,
                    dbp_error *err)
{
    memset(out, 0, sizeof *out);
    out->dbtype = dbtype;
    dbp_type t = {DBP_T_NULL, 0, 0, NULL};
    tds_decoder d;
    const char *name;
    switch (dbtype) {
    case SYBINT1:
        d = TDSD_UINT8, t.id = DBP_T_UINT8, name = "tinyint";
        break;
    case SYBINT2:
        d = TDSD_INT16, t.id = DBP_T_INT16, name = "smallint";
        break;
    case SYBINT4:
        d = TDSD_INT32, t.id = DBP_T_INT32, name = "int";
        break;
    case SYBINT8:
        d = TDSD_INT64, t.id = DBP_T_INT64, name = "bigint";
        break;
    case SYBBIT:
    case SYBBITN:
        d = TDSD_BIT, t.id = DBP_T_BOOL, name = "bit";
        break;
    case SYBREAL:
        d = TDSD_REAL, t.id = DBP_T_FLOAT32, name = "real";
        break;
    case SYBFLT8:
        d = TDSD_FLOAT, t.id = DBP_T_FLOAT64, name = "float";
        break;
    case SYBDECIMAL:
    case SYBNUMERIC:
        if (!info || info->precision < 1 || info->precision > 38 || info->scale < 0 ||
            info->scale > info->precision)
            return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                 "column '%s': decimal with precision %d and scale %d", column,
                                 info ? info->precision : -1, info ? info->scale : -1);
        d = TDSD_DECIMAL, name = "decimal";
        t = (dbp_type){DBP_T_DECIMAL128, info->precision, info->scale, NULL};
        break;
    case SYBMONEY:
        d = TDSD_MONEY, name = "money";
        t = (dbp_type){DBP_T_DECIMAL128, 19, 4, NULL};
        break;
    case SYBMONEY4:
        d = TDSD_MONEY4, name = "smallmoney";
        t = (dbp_type){DBP_T_DECIMAL128, 10, 4, NULL};
        break;
    case SYBMSDATE:
        d = TDSD_DATE, t.id = DBP_T_DATE32, name = "date";
        break;
    case SYBMSTIME:
        d = TDSD_TIME, t.id = DBP_T_TIME64_US, name = "time";
        break;
    case SYBDATETIME:
        d = TDSD_DATETIME, t.id = DBP_T_TIMESTAMP_US, name = "datetime";
        break;
    case SYBDATETIME4:
        d = TDSD_DATETIME4, t.id = DBP_T_TIMESTAMP_US, name = "smalldatetime";
        break;
    case SYBMSDATETIME2:
        d = TDSD_DATETIME2, t.id = DBP_T_TIMESTAMP_US, name = "datetime2";
        break;
    case SYBMSDATETIMEOFFSET:
        d = TDSD_DATETIMEOFFSET, t.id = DBP_T_TIMESTAMP_UTC, name = "datetimeoffset";
        break;
    case SYBUNIQUE:
        d = TDSD_GUID, t.id = DBP_T_STRING, name = "uniqueidentifier";
        break;
    case SYBCHAR:
    case SYBVARCHAR:
    case SYBNVARCHAR:
    case SYBTEXT:
    case SYBNTEXT:
    case SYBMSXML:
    case TDS_XSYBCHAR:
    case TDS_XSYBVARCHAR:
    case TDS_XSYBNCHAR:
    case TDS_XSYBNVARCHAR:
        d = TDSD_TEXT, t.id = DBP_T_STRING, name = "character";
        break;
    case SYBBINARY:
    case SYBVARBINARY:
    case SYBIMAGE:
    case SYBMSUDT:
    case TDS_XSYBBINARY:
    case TDS_XSYBVARBINARY:
        d = TDSD_BINARY, t.id = DBP_T_BINARY, name = "binary";
        break;
    case SYBVARIANT:
        return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                             "column '%s' is sql_variant, whose values have no single Arrow "
                             "type; CAST(%s AS nvarchar(max)) or to the type it holds",
                             column, column);
    default:
        return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                             "column '%s' has a type db-lib reports as %d (%s), which this "
                             "driver cannot read; CAST it to a standard type",
                             column, dbtype, dbprtype(dbtype) ? dbprtype(dbtype) : "?");
    }
    out->decoder = d;
    out->type = t;
    out->sql_name = name;
    return DBP_OK;
}

static int wrong_size(const tds_column_plan *plan, const char *column, DBINT len, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                         "column '%s' (%s): db-lib returned a value of %d bytes", column,
                         plan->sql_name, (int)len);
}

/* A 100 ns digit Arrow's microseconds cannot hold: refuse, never round. */
static int sub_microsecond(const tds_column_plan *plan, const char *column, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                         "column '%s' (%s(7)) holds a value with a non-zero 100-nanosecond "
                         "digit, which microsecond Arrow types cannot hold exactly; "
                         "CAST(%s AS %s(6)) to round it in the query",
                         column, plan->sql_name, column, plan->sql_name);
}

/* SQL Server's dates: 0001-01-01 to 9999-12-31 in days since 1900 (datetime
 * from 1753-01-01); a datetimeoffset's UTC instant may lie a day beyond. */
#define TDS_FIRST_DAY (-693595)
#define TDS_FIRST_DATETIME_DAY (-53690)
#define TDS_LAST_DAY 2958463
#define TDS_TICKS_PER_DAY 864000000000ULL /* 100 ns */

/* A value no server sends (a day or time of day outside its type's range):
 * refused before the arithmetic on it could overflow. */
static int out_of_range(const tds_column_plan *plan, const char *column, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                         "column '%s' (%s): db-lib returned a value outside the type's range",
                         column, plan->sql_name);
}

static int64_t datetimeall_us(const DBDATETIMEALL *v)
{
    return ((int64_t)v->date - TDS_DAYS_1900_TO_1970) * TDS_US_PER_DAY + (int64_t)(v->time / 10);
}

static int decode_decimal(DBPROCESS *proc, const tds_column_plan *plan, const BYTE *data,
                          DBINT len, dbp_column *out, const char *column, dbp_error *err)
{
    char text[96];
    if (len != (DBINT)sizeof(DBNUMERIC)) /* db-lib hands decimals over as a DBNUMERIC */
        return wrong_size(plan, column, len, err);
    DBINT n = dbconvert(proc, plan->dbtype, data, len, SYBCHAR, (BYTE *)text,
                        (DBINT)sizeof text - 1);
    __int128 v;
    if (n < 0 || n >= (DBINT)sizeof text ||
        dbp_parse_decimal(text, (size_t)n, plan->type.precision, plan->type.scale, &v) != DBP_OK)
        return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                             "column '%s' (decimal(%d,%d)): db-lib's text of a value does not "
                             "read back as decimal(%d,%d)",
                             column, plan->type.precision, plan->type.scale,
                             plan->type.precision, plan->type.scale);
    return dbp_column_append_decimal(out, v);
}

int tds_decode_value(DBPROCESS *proc, const tds_column_plan *plan, const BYTE *data, DBINT len,
                     dbp_column *out, const char *column, dbp_error *err)
{
    if (!data)
        return dbp_column_append_null(out);
    switch (plan->decoder) {
    case TDSD_UINT8:
        if (len != 1)
            return wrong_size(plan, column, len, err);
        return dbp_column_append_int(out, data[0]);
    case TDSD_BIT:
        if (len != 1)
            return wrong_size(plan, column, len, err);
        return dbp_column_append_bool(out, data[0] != 0);
    case TDSD_INT16: {
        DBSMALLINT v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        return dbp_column_append_int(out, v);
    }
    case TDSD_INT32: {
        DBINT v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        return dbp_column_append_int(out, v);
    }
    case TDSD_INT64: {
        DBBIGINT v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        return dbp_column_append_int(out, v);
    }
    case TDSD_REAL: {
        DBREAL v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        return dbp_column_append_double(out, v);
    }
    case TDSD_FLOAT: {
        DBFLT8 v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        return dbp_column_append_double(out, v);
    }
    case TDSD_DECIMAL:
        return decode_decimal(proc, plan, data, len, out, column, err);
    case TDSD_MONEY: { /* 1/10000 units, high word first */
        DBMONEY v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        uint64_t bits = ((uint64_t)(uint32_t)v.mnyhigh << 32) | v.mnylow;
        return dbp_column_append_decimal(out, (int64_t)bits);
    }
    case TDSD_MONEY4: {
        DBMONEY4 v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        return dbp_column_append_decimal(out, v.mny4);
    }
    case TDSD_DATETIME: { /* days since 1900, 1/300 s ticks: nearest microsecond */
        DBDATETIME v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        if (v.dtdays < TDS_FIRST_DATETIME_DAY || v.dtdays > TDS_LAST_DAY || v.dttime < 0 ||
            v.dttime >= 300 * 86400)
            return out_of_range(plan, column, err);
        int64_t us = ((int64_t)v.dttime * 10000 + 1) / 3;
        return dbp_column_append_int(
            out, ((int64_t)v.dtdays - TDS_DAYS_1900_TO_1970) * TDS_US_PER_DAY + us);
    }
    case TDSD_DATETIME4: {
        DBDATETIME4 v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        if (v.minutes >= 24 * 60)
            return out_of_range(plan, column, err);
        return dbp_column_append_int(out, ((int64_t)v.days - TDS_DAYS_1900_TO_1970) *
                                                   TDS_US_PER_DAY +
                                               (int64_t)v.minutes * 60000000);
    }
    case TDSD_DATE:
    case TDSD_TIME:
    case TDSD_DATETIME2:
    case TDSD_DATETIMEOFFSET: {
        DBDATETIMEALL v;
        if (len != (DBINT)sizeof v)
            return wrong_size(plan, column, len, err);
        memcpy(&v, data, sizeof v);
        int slack = plan->decoder == TDSD_DATETIMEOFFSET;
        if (v.date < TDS_FIRST_DAY - slack || v.date > TDS_LAST_DAY + slack ||
            v.time >= TDS_TICKS_PER_DAY)
            return out_of_range(plan, column, err);
        if (v.time % 10 != 0)
            return sub_microsecond(plan, column, err);
        if (plan->decoder == TDSD_DATE)
            return dbp_column_append_int(out, (int64_t)v.date - TDS_DAYS_1900_TO_1970);
        if (plan->decoder == TDSD_TIME)
            return dbp_column_append_int(out, (int64_t)(v.time / 10));
        /* datetimeoffset: db-lib keeps the UTC instant; the offset is dropped */
        return dbp_column_append_int(out, datetimeall_us(&v));
    }
    case TDSD_GUID: { /* Data1-3 are little-endian on the wire, host order here */
        if (len != 16)
            return wrong_size(plan, column, len, err);
        uint32_t d1;
        uint16_t d2, d3;
        memcpy(&d1, data, 4);
        memcpy(&d2, data + 4, 2);
        memcpy(&d3, data + 6, 2);
        const BYTE *d4 = data + 8;
        char text[40];
        int n = snprintf(text, sizeof text,
                         "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", (unsigned)d1,
                         (unsigned)d2, (unsigned)d3, d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
                         d4[6], d4[7]);
        return dbp_column_append_bytes(out, text, (size_t)n);
    }
    case TDSD_TEXT:
        if (len < 0)
            return wrong_size(plan, column, len, err);
        if (!dbp_utf8_valid(data, (size_t)len))
            return dbp_error_set(err, DBP_E_DATA, 0, "22021",
                                 "column '%s' holds text that is not valid UTF-8 after "
                                 "FreeTDS's conversion", column);
        return dbp_column_append_bytes(out, data, (size_t)len);
    case TDSD_BINARY:
        if (len < 0)
            return wrong_size(plan, column, len, err);
        return dbp_column_append_bytes(out, data, (size_t)len);
    }
    return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "column '%s': no decoder", column);
}

/* ---- parameters ------------------------------------------------------------ */

/* Rewrites decimal text ("-1.5E+3", "0.0010") as plain digits ("-1500",
 * "0.0010") and finds the smallest decimal(p,s) holding it exactly. */
static int plain_decimal(const char *s, size_t n, char *out, size_t out_size, int *precision,
                         int *scale)
{
    char digits[96];
    size_t nd = 0, i = 0;
    int negative = 0, frac = 0, seen_dot = 0, any = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        negative = s[i++] == '-';
    for (; i < n; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            if (nd == sizeof digits)
                return -1;
            digits[nd++] = ch;
            frac += seen_dot;
            any = 1;
        } else if (ch == '.' && !seen_dot) {
            seen_dot = 1;
        } else {
            break;
        }
    }
    if (!any)
        return -1;
    long exponent = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i == n)
            return -1;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if ((exponent = exponent * 10 + (s[i] - '0')) > 1000)
                return -1;
        if (eneg)
            exponent = -exponent;
    }
    if (i != n)
        return -1;
    long sc = frac - exponent;
    while (sc < 0) { /* a positive exponent: append zeros */
        if (nd == sizeof digits)
            return -1;
        digits[nd++] = '0';
        sc++;
    }
    size_t lead = 0; /* leading zeros of the integer part carry nothing */
    while (lead < nd && (long)(nd - lead) > sc && digits[lead] == '0')
        lead++;
    long int_digits, p;
    for (;;) { /* trailing fraction zeros only go when decimal(38) needs them gone */
        if (nd == 0) /* they were all zeros (0E-50): the value is 0 */
            sc = 0;
        int_digits = (long)(nd - lead) - sc;
        p = (int_digits > 0 ? int_digits : 0) + sc;
        if ((sc <= 38 && p <= 38) || sc == 0 || digits[nd - 1] != '0')
            break;
        nd--;
        sc--;
    }
    if (p == 0)
        p = 1;
    if (sc > 38 || p > 38 || out_size < 64)
        return -1;
    size_t o = 0;
    if (negative)
        out[o++] = '-';
    if (int_digits > 0) {
        memcpy(out + o, digits + lead, (size_t)int_digits);
        o += (size_t)int_digits;
    } else {
        out[o++] = '0';
    }
    if (sc > 0) {
        out[o++] = '.';
        for (long z = int_digits; z < 0; z++)
            out[o++] = '0';
        size_t from = int_digits > 0 ? lead + (size_t)int_digits : lead;
        memcpy(out + o, digits + from, nd - from);
        o += nd - from;
    }
    out[o] = '\0';
    *precision = (int)p;
    *scale = (int)sc;
    return (int)o;
}

static void set_datetimeall(DBDATETIMEALL *dt, int64_t days_1970, int64_t time_us, int has_date,
                            int has_time)
{
    memset(dt, 0, sizeof *dt);
    dt->date = (DBINT)(days_1970 + TDS_DAYS_1900_TO_1970);
    dt->time = (DBUBIGINT)time_us * 10;
    dt->time_prec = 7;
    dt->has_date = has_date ? 1 : 0;
    dt->has_time = has_time ? 1 : 0;
}

static void split_timestamp(int64_t us, int64_t *days, int64_t *time_us)
{
    *days = us / TDS_US_PER_DAY;
    *time_us = us % TDS_US_PER_DAY;
    if (*time_us < 0) {
        *time_us += TDS_US_PER_DAY;
        (*days)--;
    }
}

static int outside_years(size_t position, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                         "parameter %zu is outside SQL Server's years 1 to 9999", position);
}

int tds_param_bind(DBPROCESS *proc, const dbp_cell *cell, int null_binary, size_t position,
                   tds_param *out, dbp_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t days, time_us;
    switch (cell->kind) {
    case DBP_V_NULL:
        out->type = null_binary ? SYBIMAGE : SYBNTEXT;
        snprintf(out->decl, sizeof out->decl, "%s", null_binary ? "varbinary(max)"
                                                                : "nvarchar(max)");
        return DBP_OK; /* datalen 0, value NULL */
    case DBP_V_BOOL:
        out->type = SYBBIT;
        out->store.bit = cell->i != 0;
        out->value = &out->store.bit;
        out->datalen = -1;
        snprintf(out->decl, sizeof out->decl, "bit");
        return DBP_OK;
    case DBP_V_INT64:
        out->type = SYBINT8;
        out->store.i8 = cell->i;
        out->value = (const BYTE *)&out->store.i8;
        out->datalen = -1;
        snprintf(out->decl, sizeof out->decl, "bigint");
        return DBP_OK;
    case DBP_V_DOUBLE:
        if (!isfinite(cell->d))
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "parameter %zu is %s, which SQL Server's float cannot hold",
                                 position, isnan(cell->d) ? "NaN" : "infinite");
        out->type = SYBFLT8;
        out->store.f8 = cell->d;
        out->value = (const BYTE *)&out->store.f8;
        out->datalen = -1;
        snprintf(out->decl, sizeof out->decl, "float");
        return DBP_OK;
    case DBP_V_TEXT:
    case DBP_V_UUID:
    case DBP_V_JSON: /* SQL Server's JSON functions read nvarchar */
    case DBP_V_INET:
    case DBP_V_BLOB: {
        int text = cell->kind != DBP_V_BLOB;
        if (cell->len > INT32_MAX)
            return dbp_error_set(err, DBP_E_DATA, 0, "22001",
                                 "parameter %zu is larger than 2 GiB", position);
        /* db-lib 1.3 cuts SYBVARCHAR/SYBVARBINARY parameters to 4000
         * characters / 8000 bytes without a word; its blob types go as
         * nvarchar(max) / varbinary(max) (UTF-8 converted to UTF-16). */
        out->type = text ? SYBNTEXT : SYBIMAGE;
        out->datalen = (DBINT)cell->len;
        out->value = cell->len ? (const BYTE *)cell->data : NULL;
        snprintf(out->decl, sizeof out->decl, "%s", text ? "nvarchar(max)" : "varbinary(max)");
        /* db-lib 1.3 cannot send SYBUNIQUE (fixed-size yet nullable): the
         * text goes and the declaration makes the server convert it. */
        if (cell->kind == DBP_V_UUID)
            snprintf(out->decl, sizeof out->decl, "uniqueidentifier");
        if (!cell->len)
            out->empty_literal = text ? "N''" : "0x";
        return DBP_OK;
    }
    case DBP_V_DECIMAL: {
        char plain[100];
        int p, s;
        int n = plain_decimal(cell->data, cell->len, plain, sizeof plain, &p, &s);
        if (n < 0)
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "parameter %zu: the decimal %.*s does not fit SQL Server's "
                                 "decimal(38) exactly",
                                 position, (int)(cell->len > 60 ? 60 : cell->len), cell->data);
        DBTYPEINFO info = {.precision = p, .scale = s};
        DBINT got = dbconvert_ps(proc, SYBCHAR, (const BYTE *)plain, n, SYBNUMERIC,
                                 (BYTE *)&out->store.num, (DBINT)sizeof out->store.num, &info);
        if (got < 0 || out->store.num.precision != p || out->store.num.scale != s)
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "parameter %zu: db-lib cannot convert the decimal %s", position,
                                 plain);
        out->type = SYBNUMERIC;
        out->value = (const BYTE *)&out->store.num;
        out->datalen = (DBINT)sizeof out->store.num;
        snprintf(out->decl, sizeof out->decl, "decimal(%d,%d)", p, s);
        return DBP_OK;
    }
    case DBP_V_DATE:
        /* Checked before db-lib's 32-bit day count could cut it short. */
        if (cell->i < TDS_FIRST_DAY - TDS_DAYS_1900_TO_1970 ||
            cell->i > TDS_LAST_DAY - TDS_DAYS_1900_TO_1970)
            return outside_years(position, err);
        /* db-lib 1.3 refuses SYBMSDATE in dbrpcparam: the date goes as a
         * datetime2 at midnight and the declaration makes it a date. */
        set_datetimeall(&out->store.dt, cell->i, 0, 1, 1);
        out->type = SYBMSDATETIME2;
        snprintf(out->decl, sizeof out->decl, "date");
        break;
    case DBP_V_TIME:
        if (cell->i < 0 || cell->i >= TDS_US_PER_DAY)
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "parameter %zu is not a time of day (00:00 to 24:00)",
                                 position);
        set_datetimeall(&out->store.dt, -TDS_DAYS_1900_TO_1970, cell->i, 0, 1);
        out->type = SYBMSTIME;
        snprintf(out->decl, sizeof out->decl, "time(7)");
        break;
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ:
        split_timestamp(cell->i, &days, &time_us);
        set_datetimeall(&out->store.dt, days, time_us, 1, 1);
        if (cell->kind == DBP_V_TIMESTAMP_TZ) {
            out->store.dt.has_offset = 1; /* a UTC instant, offset +00:00 */
            out->type = SYBMSDATETIMEOFFSET;
            snprintf(out->decl, sizeof out->decl, "datetimeoffset(7)");
        } else {
            out->type = SYBMSDATETIME2;
            snprintf(out->decl, sizeof out->decl, "datetime2(7)");
        }
        break;
    default:
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "parameter %zu: SQL Server has no type for %s; %s", position,
                             dbp_value_kind_name(cell->kind), dbp_value_kind_hint(cell->kind));
    }
    if (out->store.dt.date < TDS_FIRST_DAY || out->store.dt.date > TDS_LAST_DAY)
        return outside_years(position, err);
    out->value = (const BYTE *)&out->store.dt;
    out->datalen = (DBINT)sizeof out->store.dt;
    return DBP_OK;
}
