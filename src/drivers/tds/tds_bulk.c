/* tds_bulk.c - write_frame for mssql through db-lib's bulk copy (bcp_init,
 * bcp_bind, bcp_sendrow, bcp_done: INSERT BULK and a BULK LOAD stream),
 * all or nothing inside a transaction (or a savepoint of the caller's).
 *
 * db-lib 1.3's bulk copy sends program text unconverted and cannot tell
 * nvarchar from varchar (both read as SYBCHAR; DBCOL2.ServerType stays 0),
 * and it sends a zero-length value as NULL. So the frame goes first into a
 * staging temp table whose types are the target's, except that text is
 * nvarchar(max) (converted to UTF-16 here) and binary varbinary(max), with
 * a bit column per text/binary column marking empty values; then one
 * INSERT INTO target SELECT ... FROM the staging table lets the server
 * convert text to the target's code page exactly as an INSERT would.
 *
 * Every other value is converted here, exactly, into the column's own
 * db-lib form (db-lib's conversions round decimals and times silently);
 * values the column cannot hold are DataErrors, never approximated. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "arrow_input.h"
#include "error.h"
#include "tds_bulk.h"
#include "textbuf.h"
#include "textparse.h"

typedef struct table_col {
    char name[MAXCOLNAMELEN + 2];
    int dbtype; /* dbcoltype(): the form db-lib keeps values in */
    int precision, scale;
} table_col;

typedef struct frame_col {
    const table_col *target;
    int ordinal;       /* its staging column, 1-based */
    int empty_ordinal; /* its empty-value marker column, 0 if none */
    DBBIT empty;       /* the marker's value for the current row */
    union {
        DBTINYINT i1;
        DBSMALLINT i2;
        DBINT i4;
        DBBIGINT i8;
        DBBIT bit;
        DBREAL r4;
        DBFLT8 f8;
        DBNUMERIC num;
        DBMONEY money;
        DBMONEY4 money4;
        DBDATETIME dt;
        DBDATETIME4 dt4;
        DBDATETIMEALL dta;
        BYTE guid[16];
    } v;
    dbp_textbuf wide; /* UTF-16LE of the current text value */
} frame_col;

#define STAGING "#dbp_write_frame"

typedef struct bulk_state {
    tds_conn *c;
    const char *table;
    char *quoted;
    dbp_textbuf insert; /* INSERT INTO target (...) SELECT ... FROM staging */
    table_col *tcols;
    int n_tcols;
    frame_col *cols;
    size_t n_cols;
    int started; /* bcp_init succeeded: bcp_done must follow */
    int64_t row; /* the frame row being sent */
} bulk_state;

/* ---- the table ------------------------------------------------------------ */

/* The table's columns, from the metadata of an empty SELECT. */
static int describe_table(bulk_state *b, dbp_error *err)
{
    tds_conn *c = b->c;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "SELECT * FROM ");
    dbp_textbuf_str(&sql, b->quoted);
    dbp_textbuf_str(&sql, " WHERE 1 = 0");
    if (sql.failed) {
        dbp_textbuf_free(&sql);
        return dbp_error_nomem(err);
    }
    tds_send_batch(c, sql.data);
    dbp_textbuf_free(&sql);
    int rc = DBP_OK, found = 0, fails = 0;
    while (!tds_failed(c) && !found) {
        RETCODE r = dbresults(c->proc);
        if (r == NO_MORE_RESULTS)
            break;
        if (r == FAIL) {
            if (DBDEAD(c->proc) || ++fails > 1000)
                break;
            continue;
        }
        int n = dbnumcols(c->proc);
        if (n <= 0)
            continue;
        found = 1;
        b->tcols = dbp_calloc((size_t)n, sizeof *b->tcols);
        if (!b->tcols) {
            rc = dbp_error_nomem(err);
            break;
        }
        b->n_tcols = n;
        for (int i = 0; i < n; i++) {
            table_col *t = &b->tcols[i];
            t->dbtype = dbcoltype(c->proc, i + 1);
            DBTYPEINFO *ti = dbcoltypeinfo(c->proc, i + 1);
            if (ti) {
                t->precision = ti->precision;
                t->scale = ti->scale;
            }
            const char *name = dbcolname(c->proc, i + 1);
            snprintf(t->name, sizeof t->name, "%s", name ? name : "");
        }
    }
    if (!tds_failed(c))
        tds_drain(c, NULL);
    if (rc == DBP_OK && tds_failed(c))
        rc = tds_call_error(c, err);
    else if (rc == DBP_OK && !found)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "'%s' returned no columns to load into",
                           b->table);
    return rc;
}

static int is_text(int dbtype)
{
    return dbtype == SYBCHAR || dbtype == SYBVARCHAR || dbtype == SYBTEXT || dbtype == SYBNTEXT ||
           dbtype == SYBMSXML;
}

static int is_binary(int dbtype)
{
    return dbtype == SYBBINARY || dbtype == SYBVARBINARY || dbtype == SYBIMAGE;
}

/* The staging column's SQL type for a target column; NULL when write_frame
 * cannot load that type. */
static const char *staging_type(const table_col *t, char *buf, size_t size)
{
    switch (t->dbtype) {
    case SYBINT1:
        return "tinyint";
    case SYBINT2:
        return "smallint";
    case SYBINT4:
        return "int";
    case SYBINT8:
        return "bigint";
    case SYBBIT:
    case SYBBITN:
        return "bit";
    case SYBREAL:
        return "real";
    case SYBFLT8:
        return "float";
    case SYBDECIMAL:
    case SYBNUMERIC:
        snprintf(buf, size, "decimal(%d,%d)", t->precision, t->scale);
        return buf;
    case SYBMONEY:
        return "money";
    case SYBMONEY4:
        return "smallmoney";
    /* db-lib 1.3 bulk-copies date and time wrongly, and its INSERT BULK
     * declares datetime2/datetimeoffset without a scale (7): all stage at
     * scale 7 and the INSERT converts them, exactly, as put_value checked. */
    case SYBMSDATE:
    case SYBMSTIME:
    case SYBMSDATETIME2:
        return "datetime2(7)";
    case SYBMSDATETIMEOFFSET:
        return "datetimeoffset(7)";
    case SYBDATETIME:
        return "datetime";
    case SYBDATETIME4:
        return "smalldatetime";
    case SYBUNIQUE:
        return "uniqueidentifier";
    default:
        if (is_text(t->dbtype))
            return "nvarchar(max)";
        if (is_binary(t->dbtype))
            return "varbinary(max)";
        return NULL;
    }
}

/* Maps the frame's columns to the target's, creates the staging table and
 * starts the bulk copy into it. */
static int frame_columns(void *arg, size_t n, const char *const *names,
                         const dbp_value_kind *kinds, dbp_error *err)
{
    (void)kinds;
    bulk_state *b = arg;
    tds_conn *c = b->c;
    b->cols = dbp_calloc(n, sizeof *b->cols);
    if (!b->cols)
        return dbp_error_nomem(err);
    b->n_cols = n;
    dbp_textbuf create = {0}, select = {0};
    dbp_textbuf_str(&create, "CREATE TABLE " STAGING " (");
    dbp_textbuf_str(&b->insert, "INSERT INTO ");
    dbp_textbuf_str(&b->insert, b->quoted);
    dbp_textbuf_str(&b->insert, " (");
    int ordinal = 0, rc = DBP_OK;
    for (size_t i = 0; i < n && rc == DBP_OK; i++) {
        frame_col *f = &b->cols[i];
        for (int t = 0; t < b->n_tcols && !f->target; t++)
            if (strcasecmp(b->tcols[t].name, names[i]) == 0)
                f->target = &b->tcols[t];
        if (!f->target) {
            rc = dbp_error_set(err, DBP_E_MISUSE, 0, "42S22",
                               "the frame's column '%s' is not a column of %s", names[i],
                               b->table);
            break;
        }
        for (size_t k = 0; k < i; k++)
            if (b->cols[k].target == f->target)
                rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                   "the frame's columns '%s' and '%s' are the same column of %s",
                                   names[k], names[i], b->table);
        char type_buf[32];
        const char *type = staging_type(f->target, type_buf, sizeof type_buf);
        if (!type)
            rc = dbp_error_set(err, DBP_E_DATA, 0, NULL,
                               "column '%s' of %s has a type (db-lib %d) write_frame cannot load",
                               f->target->name, b->table, f->target->dbtype);
        if (rc != DBP_OK)
            break;
        f->ordinal = ++ordinal;
        dbp_textbuf_printf(&create, "%sc%zu %s NULL", i ? ", " : "", i, type);
        dbp_textbuf_str(&b->insert, i ? ", " : "");
        dbp_textbuf_identifier(&b->insert, f->target->name, '[', ']', 0);
        dbp_textbuf_str(&select, i ? ", " : "");
        if (is_text(f->target->dbtype) || is_binary(f->target->dbtype)) {
            f->empty_ordinal = ++ordinal;
            dbp_textbuf_printf(&create, ", e%zu bit NULL", i);
            dbp_textbuf_printf(&select, "CASE WHEN e%zu = 1 THEN %s ELSE c%zu END", i,
                               is_text(f->target->dbtype) ? "N''" : "0x", i);
        } else {
            dbp_textbuf_printf(&select, "c%zu", i);
        }
    }
    dbp_textbuf_str(&create, ")");
    dbp_textbuf_str(&b->insert, ") SELECT ");
    dbp_textbuf_add(&b->insert, select.data ? select.data : "", select.len);
    dbp_textbuf_str(&b->insert, " FROM " STAGING "; DROP TABLE " STAGING);
    if (rc == DBP_OK && (create.failed || select.failed || b->insert.failed))
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK) {
        tds_run_own(c, create.data, NULL);
        if (tds_failed(c))
            rc = tds_call_error(c, err);
    }
    dbp_textbuf_free(&create);
    dbp_textbuf_free(&select);
    if (rc != DBP_OK)
        return rc;
    if (bcp_init(c->proc, STAGING, NULL, NULL, DB_IN) == FAIL)
        return tds_failed(c) ? tds_call_error(c, err)
                             : dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                             "db-lib's bcp_init failed for %s", b->table);
    b->started = 1;
    for (size_t i = 0; i < n; i++) {
        frame_col *f = &b->cols[i];
        int type = f->target->dbtype;
        if (type == SYBMSDATE || type == SYBMSTIME)
            type = SYBMSDATETIME2; /* staged as datetime2 */
        else if (is_text(type))
            type = SYBCHAR; /* UTF-16 bytes, passed through */
        else if (is_binary(type))
            type = SYBBINARY;
        if (bcp_bind(c->proc, (BYTE *)&f->v, 0, 0, NULL, 0, type, f->ordinal) == FAIL ||
            (f->empty_ordinal &&
             bcp_bind(c->proc, &f->empty, 0, -1, NULL, 0, SYBBIT, f->empty_ordinal) == FAIL))
            return tds_failed(c) ? tds_call_error(c, err)
                                 : dbp_error_set(err, DBP_E_DATA, 0, NULL,
                                                 "db-lib cannot bulk-load column '%s' (type %d)",
                                                 f->target->name, f->target->dbtype);
    }
    return DBP_OK;
}

/* ---- values ------------------------------------------------------------------ */

static const char *kind_name(dbp_value_kind kind)
{
    static const char *const names[] = {"null", "bool", "integer", "float", "text", "bytes",
                                        "date", "time", "timestamp", "timestamp with time zone",
                                        "decimal", "uuid", "json", "inet", "duration", "array"};
    return (size_t)kind < sizeof names / sizeof *names ? names[kind] : "value";
}

static int refuse(const bulk_state *b, const frame_col *f, const dbp_cell *cell, const char *why,
                  dbp_error *err)
{
    return dbp_error_set(err, DBP_E_DATA, 0, "22018",
                         "column '%s': the %s value of frame row %lld %s", f->target->name,
                         kind_name(cell->kind), (long long)b->row, why);
}

/* Decimal digits of an integer-valued cell or a decimal's text, as an
 * unscaled value with `scale` fraction digits within `precision`. */
static int exact_decimal(const dbp_cell *cell, int precision, int scale, __int128 *out)
{
    char digits[32];
    const char *s = cell->data;
    size_t n = cell->len;
    if (cell->kind == DBP_V_INT64 || cell->kind == DBP_V_BOOL) {
        n = (size_t)snprintf(digits, sizeof digits, "%lld", (long long)cell->i);
        s = digits;
    } else if (cell->kind != DBP_V_DECIMAL) {
        return DBP_E_DATA;
    }
    return dbp_parse_decimal(s, n, precision, scale, out);
}

/* The unscaled value as text with `scale` fraction digits. */
static int decimal_text(__int128 v, int scale, char *buf, size_t size)
{
    char digits[48];
    int n = 0;
    unsigned __int128 m = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    while (n <= scale)
        digits[n++] = '0';
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    for (int i = n - 1; i >= 0 && o + 2 < size; i--) {
        buf[o++] = digits[i];
        if (i == scale && scale > 0)
            buf[o++] = '.';
    }
    buf[o] = '\0';
    return (int)o;
}

/* Appends `s` (UTF-8) to `out` as UTF-16LE; 0 when `s` is not UTF-8. */
static int utf16le(const unsigned char *s, size_t n, dbp_textbuf *out)
{
    if (!dbp_utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        unsigned char ch = s[i];
        if (ch < 0x80)
            cp = ch, i += 1;
        else if (ch < 0xE0)
            cp = ((uint32_t)(ch & 0x1F) << 6) | (s[i + 1] & 0x3F), i += 2;
        else if (ch < 0xF0)
            cp = ((uint32_t)(ch & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
                 (s[i + 2] & 0x3F),
            i += 3;
        else
            cp = ((uint32_t)(ch & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                 ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F),
            i += 4;
        char unit[4];
        size_t len = 2;
        if (cp >= 0x10000) {
            uint32_t hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 0x3FF);
            unit[0] = (char)(hi & 0xFF), unit[1] = (char)(hi >> 8);
            unit[2] = (char)(lo & 0xFF), unit[3] = (char)(lo >> 8);
            len = 4;
        } else {
            unit[0] = (char)(cp & 0xFF), unit[1] = (char)(cp >> 8);
        }
        dbp_textbuf_add(out, unit, len);
    }
    return 1;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (optionally in braces) into db-lib's
 * GUID layout: Data1-3 in host order, then 8 bytes. */
static int parse_guid(const char *s, size_t n, BYTE out[16])
{
    if (n == 38 && s[0] == '{' && s[37] == '}')
        s++, n -= 2;
    if (n != 36)
        return 0;
    BYTE raw[16];
    size_t k = 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
            continue;
        }
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        raw[k++] = (BYTE)(hi << 4 | lo);
        i++;
    }
    uint32_t d1 = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3];
    uint16_t d2 = (uint16_t)(raw[4] << 8 | raw[5]), d3 = (uint16_t)(raw[6] << 8 | raw[7]);
    memcpy(out, &d1, 4);
    memcpy(out + 4, &d2, 2);
    memcpy(out + 6, &d3, 2);
    memcpy(out + 8, raw + 8, 8);
    return 1;
}

/* Microseconds since 1970 of a date/timestamp cell; 0 if another kind. A
 * date too far out for microseconds (date32 reaches 5.8 million years)
 * becomes the farthest midnight they hold, which every column refuses as
 * out of its range. */
static int cell_instant(const dbp_cell *cell, int64_t *us)
{
    if (cell->kind == DBP_V_DATE) {
        if (__builtin_mul_overflow(cell->i, TDS_US_PER_DAY, us))
            *us = (cell->i < 0 ? INT64_MIN : INT64_MAX) / TDS_US_PER_DAY * TDS_US_PER_DAY;
    } else if (cell->kind == DBP_V_TIMESTAMP || cell->kind == DBP_V_TIMESTAMP_TZ) {
        *us = cell->i;
    } else {
        return 0;
    }
    return 1;
}

static void split_us(int64_t us, int64_t *days, int64_t *of_day)
{
    *days = us / TDS_US_PER_DAY;
    *of_day = us % TDS_US_PER_DAY;
    if (*of_day < 0)
        *of_day += TDS_US_PER_DAY, (*days)--;
}

/* 1 when `us` needs no more fraction digits than `scale` keeps. */
static int fits_scale(int64_t us_of_day, int scale)
{
    static const int64_t unit[] = {1000000, 100000, 10000, 1000, 100, 10, 1};
    return scale >= 6 || us_of_day % unit[scale < 0 ? 0 : scale] == 0;
}

/* Converts one cell into the column's form and points db-lib at it. */
static int put_value(bulk_state *b, frame_col *f, const dbp_cell *cell, dbp_error *err)
{
    DBPROCESS *proc = b->c->proc;
    const table_col *t = f->target;
    f->empty = 0;
    if (cell->kind == DBP_V_NULL)
        return bcp_collen(proc, 0, f->ordinal) == SUCCEED ? DBP_OK : tds_call_error(b->c, err);
    BYTE *ptr = (BYTE *)&f->v;
    DBINT len;
    int64_t i = cell->i;
    int is_int = cell->kind == DBP_V_INT64 || cell->kind == DBP_V_BOOL;
    int64_t us, days, of_day;
    switch (t->dbtype) {
    case SYBINT1:
    case SYBINT2:
    case SYBINT4:
    case SYBINT8: {
        static const int64_t lo[] = {0, -32768, -2147483647LL - 1, INT64_MIN};
        static const int64_t hi[] = {255, 32767, 2147483647LL, INT64_MAX};
        int k = t->dbtype == SYBINT1 ? 0 : t->dbtype == SYBINT2 ? 1 : t->dbtype == SYBINT4 ? 2 : 3;
        if (cell->kind == DBP_V_DOUBLE && cell->d == floor(cell->d) && fabs(cell->d) < 9e15)
            i = (int64_t)cell->d, is_int = 1;
        if (!is_int)
            return refuse(b, f, cell, "is not an integer", err);
        if (i < lo[k] || i > hi[k])
            return refuse(b, f, cell, "is out of the column's integer range", err);
        if (k == 0)
            f->v.i1 = (DBTINYINT)i, len = 1;
        else if (k == 1)
            f->v.i2 = (DBSMALLINT)i, len = 2;
        else if (k == 2)
            f->v.i4 = (DBINT)i, len = 4;
        else
            f->v.i8 = i, len = 8;
        break;
    }
    case SYBBIT:
    case SYBBITN:
        if (!is_int || (i != 0 && i != 1))
            return refuse(b, f, cell, "is not a boolean (or 0/1)", err);
        f->v.bit = (DBBIT)i, len = 1;
        break;
    case SYBREAL:
    case SYBFLT8: {
        double d = cell->d;
        if (is_int && i >= -(1LL << 53) && i <= (1LL << 53))
            d = (double)i;
        else if (cell->kind != DBP_V_DOUBLE)
            return refuse(b, f, cell, "is not a number a float holds exactly", err);
        if (!isfinite(d))
            return refuse(b, f, cell, "is NaN or infinite, which SQL Server cannot store", err);
        if (t->dbtype == SYBREAL) {
            if ((double)(float)d != d)
                return refuse(b, f, cell,
                              "needs more precision than the real column holds; use float", err);
            f->v.r4 = (DBREAL)d, len = 4;
        } else {
            f->v.f8 = d, len = 8;
        }
        break;
    }
    case SYBDECIMAL:
    case SYBNUMERIC: {
        __int128 v;
        if (exact_decimal(cell, t->precision, t->scale, &v) != DBP_OK)
            return refuse(b, f, cell, "does not fit the column's decimal type exactly", err);
        char text[64];
        int n = decimal_text(v, t->scale, text, sizeof text);
        DBTYPEINFO info = {.precision = t->precision, .scale = t->scale};
        if (dbconvert_ps(proc, SYBCHAR, (BYTE *)text, n, t->dbtype, (BYTE *)&f->v.num,
                         (DBINT)sizeof f->v.num, &info) < 0)
            return refuse(b, f, cell, "could not be converted by db-lib", err);
        len = (DBINT)sizeof f->v.num;
        break;
    }
    case SYBMONEY:
    case SYBMONEY4: {
        __int128 v;
        int small = t->dbtype == SYBMONEY4;
        if (exact_decimal(cell, small ? 10 : 19, 4, &v) != DBP_OK ||
            v < (small ? INT32_MIN : INT64_MIN) || v > (small ? INT32_MAX : INT64_MAX))
            return refuse(b, f, cell, "does not fit the money column exactly", err);
        if (small) {
            f->v.money4.mny4 = (DBINT)v, len = 4;
        } else {
            uint64_t bits = (uint64_t)(int64_t)v;
            f->v.money.mnyhigh = (DBINT)(int32_t)(uint32_t)(bits >> 32);
            f->v.money.mnylow = (DBUINT)(bits & 0xFFFFFFFFu);
            len = 8;
        }
        break;
    }
    case SYBMSDATE:
    case SYBMSDATETIME2:
    case SYBMSDATETIMEOFFSET:
        if (!cell_instant(cell, &us))
            return refuse(b, f, cell, "is not a date or timestamp", err);
        split_us(us, &days, &of_day);
        if (t->dbtype == SYBMSDATE && of_day != 0)
            return refuse(b, f, cell, "has a time of day, which a date column drops", err);
        if (!fits_scale(of_day, t->scale))
            return refuse(b, f, cell, "has more fraction digits than the column's scale keeps",
                          err);
        if (days < -719162 || days > 2932896) /* 0001-01-01 .. 9999-12-31 */
            return refuse(b, f, cell, "is outside years 1 to 9999", err);
        memset(&f->v.dta, 0, sizeof f->v.dta);
        f->v.dta.date = (DBINT)(days + TDS_DAYS_1900_TO_1970);
        f->v.dta.time = (DBUBIGINT)of_day * 10;
        f->v.dta.time_prec = 7;
        f->v.dta.has_date = 1;
        f->v.dta.has_time = 1;
        f->v.dta.has_offset = t->dbtype == SYBMSDATETIMEOFFSET;
        len = (DBINT)sizeof f->v.dta;
        break;
    case SYBMSTIME:
        if (cell->kind != DBP_V_TIME)
            return refuse(b, f, cell, "is not a time of day", err);
        if (!fits_scale(i, t->scale))
            return refuse(b, f, cell, "has more fraction digits than the column's scale keeps",
                          err);
        memset(&f->v.dta, 0, sizeof f->v.dta); /* 1900-01-01 plus the time */
        f->v.dta.time = (DBUBIGINT)i * 10;
        f->v.dta.time_prec = 7;
        f->v.dta.has_date = 1;
        f->v.dta.has_time = 1;
        len = (DBINT)sizeof f->v.dta;
        break;
    case SYBDATETIME: { /* 1/300 s ticks: rounded, as SQL Server converts */
        if (!cell_instant(cell, &us))
            return refuse(b, f, cell, "is not a date or timestamp", err);
        split_us(us, &days, &of_day);
        int64_t ticks = (of_day * 3 + 5000) / 10000;
        if (ticks == 300LL * 86400)
            ticks = 0, days++;
        days += TDS_DAYS_1900_TO_1970;
        if (days < -53690 || days > 2958463) /* 1753-01-01 .. 9999-12-31 */
            return refuse(b, f, cell, "is outside datetime's years 1753 to 9999", err);
        f->v.dt.dtdays = (DBINT)days;
        f->v.dt.dttime = (DBINT)ticks;
        len = 8;
        break;
    }
    case SYBDATETIME4: { /* whole minutes, rounded */
        if (!cell_instant(cell, &us))
            return refuse(b, f, cell, "is not a date or timestamp", err);
        split_us(us, &days, &of_day);
        int64_t minutes = (of_day + 30000000) / 60000000;
        if (minutes == 1440)
            minutes = 0, days++;
        days += TDS_DAYS_1900_TO_1970;
        if (days < 0 || days > 65535)
            return refuse(b, f, cell, "is outside smalldatetime's range", err);
        f->v.dt4.days = (DBUSMALLINT)days;
        f->v.dt4.minutes = (DBUSMALLINT)minutes;
        len = 4;
        break;
    }
    case SYBUNIQUE:
        if (cell->kind != DBP_V_TEXT || !parse_guid(cell->data, cell->len, f->v.guid))
            return refuse(b, f, cell, "is not a GUID text", err);
        len = 16;
        break;
    default:
        if (is_text(t->dbtype)) {
            if (cell->kind != DBP_V_TEXT)
                return refuse(b, f, cell, "is not text", err);
            dbp_textbuf_clear(&f->wide);
            if (!utf16le((const unsigned char *)cell->data, cell->len, &f->wide))
                return refuse(b, f, cell, "is not valid UTF-8", err);
            if (f->wide.failed)
                return dbp_error_nomem(err);
            if (f->wide.len > INT32_MAX)
                return refuse(b, f, cell, "is larger than 2 GiB", err);
            ptr = (BYTE *)f->wide.data, len = (DBINT)f->wide.len;
        } else if (is_binary(t->dbtype)) {
            if (cell->kind != DBP_V_BLOB)
                return refuse(b, f, cell, "is not bytes", err);
            if (cell->len > INT32_MAX)
                return refuse(b, f, cell, "is larger than 2 GiB", err);
            ptr = (BYTE *)cell->data, len = (DBINT)cell->len;
        } else {
            return dbp_error_set(err, DBP_E_DATA, 0, NULL,
                                 "column '%s' has a type (db-lib %d) write_frame cannot load",
                                 t->name, t->dbtype);
        }
        /* zero bytes would be NULL: the marker column says empty instead */
        f->empty = len == 0;
        if (len == 0)
            return bcp_collen(proc, 0, f->ordinal) == SUCCEED ? DBP_OK
                                                             : tds_call_error(b->c, err);
        break;
    }
    switch (t->dbtype) { /* db-lib's fixed-size types take -1 */
    case SYBINT1:
    case SYBINT2:
    case SYBINT4:
    case SYBINT8:
    case SYBBIT:
    case SYBBITN:
    case SYBREAL:
    case SYBFLT8:
    case SYBMONEY:
    case SYBMONEY4:
    case SYBDATETIME:
    case SYBDATETIME4:
        len = -1;
        break;
    default:
        break;
    }
    if (bcp_colptr(proc, ptr, f->ordinal) == FAIL || bcp_collen(proc, len, f->ordinal) == FAIL)
        return tds_call_error(b->c, err);
    return DBP_OK;
}

static int frame_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    bulk_state *b = arg;
    for (size_t i = 0; i < n; i++) {
        int rc = put_value(b, &b->cols[i], &cells[i], err);
        if (rc != DBP_OK)
            return rc;
    }
    if (bcp_sendrow(b->c->proc) == FAIL)
        return tds_failed(b->c) ? tds_call_error(b->c, err)
                                : dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                                "db-lib's bcp_sendrow failed at frame row %lld",
                                                (long long)b->row);
    b->row++;
    return DBP_OK;
}

/* ---- the load ------------------------------------------------------------------ */

int tds_bulk_load(tds_conn *c, const char *table, struct ArrowArrayStream *rows,
                  const dbp_exec_ctx *ctx, int64_t *loaded, dbp_error *err)
{
    *loaded = 0;
    bulk_state b = {.c = c, .table = table};
    dbp_textbuf quoted = {0};
    dbp_textbuf_identifier(&quoted, table, '[', ']', 1);
    if (quoted.failed)
        return dbp_error_nomem(err);
    b.quoted = quoted.data;
    int nested = c->trancount > 0;
    tds_run_own(c, nested ? "SAVE TRANSACTION dbp_write_frame" : "BEGIN TRANSACTION", NULL);
    int rc = tds_failed(c) ? tds_call_error(c, err) : DBP_OK;
    if (rc == DBP_OK && !nested)
        c->trancount = 1;
    if (rc == DBP_OK)
        rc = describe_table(&b, err);
    int64_t fed = 0;
    if (rc == DBP_OK) {
        dbp_frame_sink sink = {.columns = frame_columns, .row = frame_row, .arg = &b};
        rc = dbp_arrow_walk(rows, &sink, ctx->cancelled, &fed, err);
    }
    if (b.started && !c->dead && b.row == 0) {
        /* Nothing was sent (db-lib starts INSERT BULK at the first row):
         * bcp_done only frees its state, and fails. */
        tds_failure saved = c->fail;
        bcp_done(c->proc);
        c->fail = saved;
    } else if (b.started && !c->dead) {
        /* Ends the BULK LOAD; what the server rejects shows up here. */
        DBINT done = bcp_done(c->proc);
        if (rc == DBP_OK && (done < 0 || tds_failed(c)))
            rc = tds_failed(c) ? tds_call_error(c, err)
                               : dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                               "db-lib's bcp_done failed");
    }
    if (rc == DBP_OK && b.started) { /* staging -> target, by the server's rules */
        int64_t inserted = 0;
        tds_send_batch(c, b.insert.data);
        tds_drain(c, &inserted);
        if (tds_failed(c))
            rc = tds_call_error(c, err);
        *loaded = inserted;
    }
    if (rc == DBP_OK && !nested) {
        tds_run_own(c, "COMMIT TRANSACTION; SELECT @@TRANCOUNT", &c->trancount);
        if (tds_failed(c))
            rc = tds_call_error(c, err);
    } else if (rc != DBP_OK && !c->dead) {
        if (err && rc != DBP_E_CANCELLED) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof err->message - used,
                     " (write_frame of %lld row(s); no row was written)", (long long)fed);
        }
        tds_failure saved = c->fail;
        int attention = c->attention_sent;
        c->fail = (tds_failure){0};
        c->attention_sent = 0;
        tds_cancel_results(c); /* anything still pending from a failed load */
        c->attention_sent = 0;
        tds_run_own(c, nested ? "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION dbp_write_frame"
                              : "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION",
                    NULL);
        c->fail = saved;
        c->attention_sent = attention;
    }
    if (rc != DBP_OK) {
        *loaded = 0;
        tds_refresh_trancount(c);
    }
    for (size_t i = 0; i < b.n_cols; i++)
        dbp_textbuf_free(&b.cols[i].wide);
    dbp_free(b.cols);
    dbp_free(b.tcols);
    dbp_textbuf_free(&b.insert);
    dbp_textbuf_free(&quoted);
    return rc;
}
