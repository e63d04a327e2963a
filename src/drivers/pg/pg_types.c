/* pg_types.c - PostgreSQL binary wire format -> Arrow builders (see
 * pg_types.h).
 *
 * Every reader checks the length it was given before touching a byte; the
 * formats are those of the types' send functions (all integers big-endian).
 * Values PostgreSQL can hold but Arrow cannot hold exactly are refused with
 * DBP_E_DATA and a hint at the SQL that would make them fit; nothing is ever
 * rounded or clamped. */
#include "pg_types.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pg_decode.h"
#include "textparse.h"

/* Built-in type OIDs (fixed in PostgreSQL's catalog). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_CHAR = 18,
    OID_NAME = 19,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_JSON = 114,
    OID_XML = 142,
    OID_CIDR = 650,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_UNKNOWN = 705,
    OID_MACADDR8 = 774,
    OID_MONEY = 790,
    OID_MACADDR = 829,
    OID_INET = 869,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
    OID_DATE = 1082,
    OID_TIME = 1083,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_INTERVAL = 1186,
    OID_TIMETZ = 1266,
    OID_NUMERIC = 1700,
    OID_UUID = 2950,
    OID_JSONB = 3802,
};

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)
/* PostgreSQL counts dates and timestamps from 2000-01-01. */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_US (INT64_C(946684800) * US_PER_SEC)


#define PG_MAXDIM 6 /* PostgreSQL's limit on array dimensions */

/* ---- type table ---------------------------------------------------------- */

static const struct {
    uint32_t array_oid;
    uint32_t element_oid;
} array_types[] = {
    {1000, OID_BOOL},      {1001, OID_BYTEA},       {1002, OID_CHAR},     {1003, OID_NAME},
    {1016, OID_INT8},      {1005, OID_INT2},        {1007, OID_INT4},     {1009, OID_TEXT},
    {1028, OID_OID},       {199, OID_JSON},         {143, OID_XML},       {651, OID_CIDR},
    {1021, OID_FLOAT4},    {1022, OID_FLOAT8},      {775, OID_MACADDR8},  {791, OID_MONEY},
    {1040, OID_MACADDR},   {1041, OID_INET},        {1014, OID_BPCHAR},   {1015, OID_VARCHAR},
    {1182, OID_DATE},      {1183, OID_TIME},        {1115, OID_TIMESTAMP},
    {1185, OID_TIMESTAMPTZ}, {1187, OID_INTERVAL},  {1270, OID_TIMETZ},   {1231, OID_NUMERIC},
    {2951, OID_UUID},      {3807, OID_JSONB},
};

uint32_t pg_array_element_oid(uint32_t array_oid)
{
    for (size_t i = 0; i < sizeof array_types / sizeof array_types[0]; i++) {
        if (array_types[i].array_oid == array_oid)
            return array_types[i].element_oid;
    }
    return 0;
}

/* What error messages call a decoder's values. */
static const char *decoder_name(pg_decoder decoder)
{
    switch (decoder) {
    case PGD_RAW: return "raw";
    case PGD_BOOL: return "bool";
    case PGD_INT2: return "int2";
    case PGD_INT4: return "int4";
    case PGD_INT8: return "int8";
    case PGD_OID: return "oid";
    case PGD_FLOAT4: return "float4";
    case PGD_FLOAT8: return "float8";
    case PGD_NUMERIC: return "numeric";
    case PGD_TEXT: return "text";
    case PGD_JSONB: return "jsonb";
    case PGD_CHAR: return "\"char\"";
    case PGD_BYTEA: return "bytea";
    case PGD_DATE: return "date";
    case PGD_TIME: return "time";
    case PGD_TIMETZ: return "timetz";
    case PGD_TIMESTAMP: return "timestamp";
    case PGD_TIMESTAMPTZ: return "timestamptz";
    case PGD_INTERVAL: return "interval";
    case PGD_UUID: return "uuid";
    case PGD_INET: return "inet";
    case PGD_MACADDR: return "macaddr";
    case PGD_MACADDR8: return "macaddr8";
    case PGD_MONEY: return "money";
    case PGD_ARRAY: return "array";
    }
    return "?";
}

/* ---- planning ------------------------------------------------------------ */

/* numeric(p,s): PostgreSQL packs ((p << 16) | (s & 0x7ff)) + 4 into the
 * typmod; since version 15 s may be negative or exceed p, so the scale field
 * is an 11-bit signed number (older servers only send 0 <= s <= p, which
 * reads the same). */
static int plan_numeric(int32_t typmod, dbp_type *type, dbp_error *err)
{
    if (typmod < 4) {
        /* unconstrained: the scale follows the values */
        *type = (dbp_type){.id = DBP_T_DECIMAL128, .precision = DECIMAL_MAX_PRECISION};
        return DBP_OK;
    }
    int precision = (int)(((uint32_t)(typmod - 4) >> 16) & 0xffff);
    int scale = (int)(((uint32_t)(typmod - 4) & 0x7ff) ^ 0x400) - 0x400;
    /* Arrow wants 0 <= scale <= precision: a negative scale means whole
     * numbers with that many more digits, and a scale above the precision
     * means values below 1 that need `scale` digits. */
    int arrow_precision = precision;
    int arrow_scale = scale;
    if (scale < 0) {
        arrow_precision = precision - scale;
        arrow_scale = 0;
    } else if (scale > precision) {
        arrow_precision = scale;
    }
    if (precision < 1 || arrow_precision > DECIMAL_MAX_PRECISION)
        return dbp_error_set(err, DBP_E_DATA, 0, NULL,
                             "numeric(%d,%d) needs more than the %d digits of Arrow's "
                             "decimal128; cast the column to text (or to float8 if "
                             "approximate values will do)",
                             precision, scale, DECIMAL_MAX_PRECISION);
    *type = (dbp_type){.id = DBP_T_DECIMAL128, .precision = arrow_precision, .scale = arrow_scale};
    return DBP_OK;
}

/* Plans a type that is not an array. Returns 0 when the OID is unknown. */
static int plan_known_scalar(uint32_t oid, int32_t typmod, pg_column_plan *out, int *rc,
                             dbp_error *err)
{
    pg_decoder decoder;
    dbp_type_id id;
    switch (oid) {
    case OID_BOOL: decoder = PGD_BOOL; id = DBP_T_BOOL; break;
    case OID_INT2: decoder = PGD_INT2; id = DBP_T_INT16; break;
    case OID_INT4: decoder = PGD_INT4; id = DBP_T_INT32; break;
    case OID_INT8: decoder = PGD_INT8; id = DBP_T_INT64; break;
    case OID_OID: decoder = PGD_OID; id = DBP_T_UINT32; break;
    case OID_FLOAT4: decoder = PGD_FLOAT4; id = DBP_T_FLOAT32; break;
    case OID_FLOAT8: decoder = PGD_FLOAT8; id = DBP_T_FLOAT64; break;
    case OID_NUMERIC: decoder = PGD_NUMERIC; id = DBP_T_DECIMAL128; break;
    case OID_TEXT:
    case OID_VARCHAR:
    case OID_BPCHAR:
    case OID_NAME:
    case OID_JSON:
    case OID_XML:
    case OID_UNKNOWN:
        decoder = PGD_TEXT;
        id = DBP_T_STRING;
        break;
    case OID_JSONB: decoder = PGD_JSONB; id = DBP_T_STRING; break;
    case OID_CHAR: decoder = PGD_CHAR; id = DBP_T_STRING; break;
    case OID_BYTEA: decoder = PGD_BYTEA; id = DBP_T_BINARY; break;
    case OID_DATE: decoder = PGD_DATE; id = DBP_T_DATE32; break;
    case OID_TIME: decoder = PGD_TIME; id = DBP_T_TIME64_US; break;
    case OID_TIMETZ: decoder = PGD_TIMETZ; id = DBP_T_TIME64_US; break;
    case OID_TIMESTAMP: decoder = PGD_TIMESTAMP; id = DBP_T_TIMESTAMP_US; break;
    case OID_TIMESTAMPTZ: decoder = PGD_TIMESTAMPTZ; id = DBP_T_TIMESTAMP_UTC; break;
    case OID_INTERVAL: decoder = PGD_INTERVAL; id = DBP_T_DURATION_US; break;
    case OID_UUID: decoder = PGD_UUID; id = DBP_T_STRING; break;
    case OID_INET:
    case OID_CIDR:
        decoder = PGD_INET;
        id = DBP_T_STRING;
        break;
    case OID_MACADDR: decoder = PGD_MACADDR; id = DBP_T_STRING; break;
    case OID_MACADDR8: decoder = PGD_MACADDR8; id = DBP_T_STRING; break;
    case OID_MONEY: decoder = PGD_MONEY; id = DBP_T_DECIMAL128; break;
    default:
        return 0;
    }
    out->decoder = decoder;
    out->type = (dbp_type){.id = id};
    *rc = DBP_OK;
    if (decoder == PGD_NUMERIC)
        *rc = plan_numeric(typmod, &out->type, err);
    else if (decoder == PGD_MONEY)
        /* int64 in the currency's smallest unit: cents with the usual
         * lc_monetary (and with C/POSIX, which PostgreSQL treats as 2). */
        out->type = (dbp_type){.id = DBP_T_DECIMAL128, .precision = 19, .scale = 2};
    return 1;
}

static int plan_scalar(uint32_t oid, int32_t typmod, int is_text_like, pg_column_plan *out,
                       dbp_error *err)
{
    memset(out, 0, sizeof *out);
    out->oid = oid;
    out->typmod = typmod;
    int rc;
    if (plan_known_scalar(oid, typmod, out, &rc, err))
        return rc;
    if (is_text_like) {
        out->decoder = PGD_TEXT;
        out->type = (dbp_type){.id = DBP_T_STRING};
    } else {
        out->decoder = PGD_RAW;
        out->type = (dbp_type){.id = DBP_T_BINARY};
    }
    return DBP_OK;
}

static int plan_array(uint32_t array_oid, uint32_t element_oid, int32_t typmod,
                      int element_is_text_like, pg_column_plan *out, dbp_error *err)
{
    memset(out, 0, sizeof *out);
    if (pg_array_element_oid(element_oid) != 0)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "array element type %u is itself an array", element_oid);
    pg_column_plan *element = dbp_malloc(sizeof *element);
    if (!element)
        return dbp_error_nomem(err);
    int rc = plan_scalar(element_oid, typmod, element_is_text_like, element, err);
    if (rc != DBP_OK) {
        dbp_free(element);
        return rc;
    }
    out->oid = array_oid;
    out->typmod = typmod;
    out->decoder = PGD_ARRAY;
    out->element = element;
    out->type = (dbp_type){.id = DBP_T_LIST, .element = &element->type};
    return DBP_OK;
}

int pg_plan_column(uint32_t oid, int32_t typmod, int is_text_like, pg_column_plan *out,
                   dbp_error *err)
{
    uint32_t element_oid = pg_array_element_oid(oid);
    if (element_oid)
        return plan_array(oid, element_oid, typmod, 0, out, err);
    int rc = plan_scalar(oid, typmod, is_text_like, out, err);
    if (rc != DBP_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pg_plan_array_column(uint32_t array_oid, uint32_t element_oid, int32_t typmod,
                         int element_is_text_like, pg_column_plan *out, dbp_error *err)
{
    return plan_array(array_oid, element_oid, typmod, element_is_text_like, out, err);
}

void pg_plan_free(pg_column_plan *plan)
{
    if (!plan)
        return;
    if (plan->element) {
        pg_plan_free(plan->element);
        dbp_free(plan->element);
    }
    memset(plan, 0, sizeof *plan);
}

/* ---- reading ------------------------------------------------------------- */

uint16_t pg_read16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t read32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t read64(const unsigned char *p)
{
    return (uint64_t)read32(p) << 32 | read32(p + 4);
}


int pg_malformed(const decode_ctx *ctx, const char *why)
{
    return dbp_error_set(ctx->err, DBP_E_PROTOCOL, 0, NULL,
                         "column \"%s\": malformed binary %s value from the server (%s)",
                         ctx->column, decoder_name(ctx->plan->decoder), why);
}

int pg_bad_length(const decode_ctx *ctx, int32_t len)
{
    char why[48];
    snprintf(why, sizeof why, "%d bytes", (int)len);
    return pg_malformed(ctx, why);
}

/* Maps a column append's result to an error. */
int pg_appended(const decode_ctx *ctx, int rc)
{
    if (rc == DBP_OK)
        return DBP_OK;
    if (rc == DBP_E_NOMEM)
        return dbp_error_nomem(ctx->err);
    if (rc == DBP_E_DATA)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": value too large for an Arrow array", ctx->column);
    return dbp_error_set(ctx->err, rc, 0, NULL,
                         "column \"%s\": the builder does not take %s values", ctx->column,
                         decoder_name(ctx->plan->decoder));
}

/* ---- scalars ------------------------------------------------------------- */

static int decode_fixed_int(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                            dbp_column *out)
{
    int64_t v;
    switch (ctx->plan->decoder) {
    case PGD_INT2:
        if (len != 2)
            return pg_bad_length(ctx, len);
        v = (int16_t)pg_read16(p);
        break;
    case PGD_INT4:
        if (len != 4)
            return pg_bad_length(ctx, len);
        v = (int32_t)read32(p);
        break;
    case PGD_OID:
        if (len != 4)
            return pg_bad_length(ctx, len);
        v = read32(p);
        break;
    default:
        if (len != 8)
            return pg_bad_length(ctx, len);
        v = (int64_t)read64(p);
        break;
    }
    return pg_appended(ctx, dbp_column_append_int(out, v));
}

static int decode_float(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                        dbp_column *out)
{
    if (ctx->plan->decoder == PGD_FLOAT4) {
        if (len != 4)
            return pg_bad_length(ctx, len);
        uint32_t bits = read32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        return pg_appended(ctx, dbp_column_append_double(out, f));
    }
    if (len != 8)
        return pg_bad_length(ctx, len);
    uint64_t bits = read64(p);
    double d;
    memcpy(&d, &bits, sizeof d);
    return pg_appended(ctx, dbp_column_append_double(out, d));
}

static int decode_text(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                       dbp_column *out)
{
    if (!dbp_utf8_valid(p, (size_t)len))
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": %s value is not valid UTF-8 (is client_encoding "
                             "UTF8?); cast it to bytea to read the bytes",
                             ctx->column, decoder_name(ctx->plan->decoder));
    return pg_appended(ctx, dbp_column_append_bytes(out, p, (size_t)len));
}

/* "char" is one byte. PostgreSQL (15 and later) prints a byte of 128 or more
 * as a backslash and three octal digits, and 0 as the empty string; we build
 * that same text, so the column is always valid UTF-8 and reads like psql. */
static int decode_char(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                       dbp_column *out)
{
    if (len != 1)
        return pg_bad_length(ctx, len);
    char text[4];
    size_t n = 0;
    if (p[0] >= 0x80) {
        text[0] = '\\';
        text[1] = (char)('0' + (p[0] >> 6));
        text[2] = (char)('0' + ((p[0] >> 3) & 7));
        text[3] = (char)('0' + (p[0] & 7));
        n = 4;
    } else if (p[0] != 0) {
        text[0] = (char)p[0];
        n = 1;
    }
    return pg_appended(ctx, dbp_column_append_bytes(out, text, n));
}

static int decode_date(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                       dbp_column *out)
{
    if (len != 4)
        return pg_bad_length(ctx, len);
    int32_t pg_days = (int32_t)read32(p);
    if (pg_days == INT32_MAX || pg_days == INT32_MIN)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": infinite date ('%sinfinity') has no Arrow form; "
                             "filter it out or select CASE WHEN isfinite(%s) THEN %s END",
                             ctx->column, pg_days == INT32_MIN ? "-" : "", ctx->column,
                             ctx->column);
    int64_t days = (int64_t)pg_days + PG_EPOCH_DAYS;
    if (days > INT32_MAX)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": date beyond Arrow's date32 range", ctx->column);
    return pg_appended(ctx, dbp_column_append_int(out, days));
}

static int decode_time(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                       dbp_column *out)
{
    int timetz = ctx->plan->decoder == PGD_TIMETZ;
    if (len != (timetz ? 12 : 8))
        return pg_bad_length(ctx, len);
    int64_t us = (int64_t)read64(p);
    if (us < 0 || us > US_PER_DAY)
        return pg_malformed(ctx, "time of day out of range");
    if (!timetz) {
        /* PostgreSQL allows 24:00:00; Arrow's time of day ends before it. */
        if (us == US_PER_DAY)
            return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                                 "column \"%s\": time 24:00:00 is past the end of Arrow's "
                                 "time of day; cast it to interval or text",
                                 ctx->column);
        return pg_appended(ctx, dbp_column_append_int(out, us));
    }
    /* The zone is in seconds west of UTC, so UTC = local + zone. PostgreSQL
     * keeps it within 16 hours; anything beyond a day is not a time zone. */
    int32_t zone = (int32_t)read32(p + 8);
    if (zone < -86400 || zone > 86400)
        return pg_malformed(ctx, "time zone offset out of range");
    int64_t utc = (us + zone * US_PER_SEC) % US_PER_DAY;
    if (utc < 0)
        utc += US_PER_DAY;
    return pg_appended(ctx, dbp_column_append_int(out, utc));
}

static int decode_timestamp(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                            dbp_column *out)
{
    if (len != 8)
        return pg_bad_length(ctx, len);
    int64_t pg_us = (int64_t)read64(p);
    if (pg_us == INT64_MAX || pg_us == INT64_MIN)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": infinite timestamp ('%sinfinity') has no Arrow "
                             "form; filter it out or select CASE WHEN isfinite(%s) THEN %s END",
                             ctx->column, pg_us == INT64_MIN ? "-" : "", ctx->column,
                             ctx->column);
    int64_t us;
    if (__builtin_add_overflow(pg_us, PG_EPOCH_US, &us))
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": timestamp beyond Arrow's 64-bit microseconds",
                             ctx->column);
    return pg_appended(ctx, dbp_column_append_int(out, us));
}

static int decode_interval(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                           dbp_column *out)
{
    if (len != 16)
        return pg_bad_length(ctx, len);
    int64_t time_us = (int64_t)read64(p);
    int32_t days = (int32_t)read32(p + 8);
    int32_t months = (int32_t)read32(p + 12);
    /* PostgreSQL 17 spells +-infinity with every field at its extreme. */
    if ((months == INT32_MAX && days == INT32_MAX && time_us == INT64_MAX) ||
        (months == INT32_MIN && days == INT32_MIN && time_us == INT64_MIN))
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": infinite interval has no Arrow duration; filter "
                             "it out or select CASE WHEN isfinite(%s) THEN %s END",
                             ctx->column, ctx->column, ctx->column);
    if (months != 0)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": interval of %d month(s) has no fixed length, so "
                             "no exact Arrow duration; select extract(epoch from %s) for "
                             "seconds, or justify_interval(%s) / to_char for a text form",
                             ctx->column, (int)months, ctx->column, ctx->column);
    int64_t day_us, total;
    if (__builtin_mul_overflow((int64_t)days, US_PER_DAY, &day_us) ||
        __builtin_add_overflow(day_us, time_us, &total))
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": interval beyond Arrow's 64-bit microseconds",
                             ctx->column);
    return pg_appended(ctx, dbp_column_append_int(out, total));
}

static const char hex_digits[] = "0123456789abcdef";

static int decode_uuid(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                       dbp_column *out)
{
    if (len != 16)
        return pg_bad_length(ctx, len);
    char text[36];
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text[n++] = '-';
        text[n++] = hex_digits[p[i] >> 4];
        text[n++] = hex_digits[p[i] & 15];
    }
    return pg_appended(ctx, dbp_column_append_bytes(out, text, n));
}

static int decode_macaddr(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                          dbp_column *out)
{
    int32_t want = ctx->plan->decoder == PGD_MACADDR8 ? 8 : 6;
    if (len != want)
        return pg_bad_length(ctx, len);
    char text[8 * 3];
    size_t n = 0;
    for (int i = 0; i < want; i++) {
        if (i)
            text[n++] = ':';
        text[n++] = hex_digits[p[i] >> 4];
        text[n++] = hex_digits[p[i] & 15];
    }
    return pg_appended(ctx, dbp_column_append_bytes(out, text, n));
}

/* IPv6 text as PostgreSQL prints it: lowercase hex groups without leading
 * zeros; the first longest run of two or more zero groups becomes "::"; an
 * address whose first 96 bits are zero (or ::ffff: then 32 bits) ends in
 * dotted IPv4 form. Returns the length written. */
static size_t format_ipv6(const unsigned char *a, char *buf)
{
    unsigned words[8];
    for (int i = 0; i < 8; i++)
        words[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (words[i] != 0) {
            i++;
            continue;
        }
        int start = i;
        while (i < 8 && words[i] == 0)
            i++;
        if (i - start > best_len) {
            best = start;
            best_len = i - start;
        }
    }
    if (best_len < 2)
        best = -1;
    int embedded_v4 = best == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff));

    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + best_len) {
            if (i == best)
                buf[n++] = ':';
            continue;
        }
        if (i != 0)
            buf[n++] = ':';
        if (i == 6 && embedded_v4) {
            n += (size_t)sprintf(buf + n, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
            return n;
        }
        n += (size_t)sprintf(buf + n, "%x", words[i]);
    }
    if (best >= 0 && best + best_len == 8)
        buf[n++] = ':';
    return n;
}

/* inet/cidr: family (2 = IPv4, 3 = IPv6), bits, is_cidr, address length,
 * address. inet prints "/bits" only when it is not the whole address;
 * cidr always does. */
static int decode_inet(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                       dbp_column *out)
{
    if (len < 4)
        return pg_bad_length(ctx, len);
    unsigned family = p[0], bits = p[1], is_cidr = p[2], size = p[3];
    unsigned max_bits;
    if (family == 2 && size == 4)
        max_bits = 32;
    else if (family == 3 && size == 16)
        max_bits = 128;
    else
        return pg_malformed(ctx, "unknown address family");
    if ((uint32_t)len != 4 + size || bits > max_bits || is_cidr > 1)
        return pg_malformed(ctx, "bad address length or mask");
    char text[64];
    size_t n;
    if (family == 2)
        n = (size_t)sprintf(text, "%u.%u.%u.%u", p[4], p[5], p[6], p[7]);
    else
        n = format_ipv6(p + 4, text);
    if (ctx->plan->oid == OID_CIDR || bits != max_bits)
        n += (size_t)sprintf(text + n, "/%u", bits);
    return pg_appended(ctx, dbp_column_append_bytes(out, text, n));
}

static int decode_money(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                        dbp_column *out)
{
    if (len != 8)
        return pg_bad_length(ctx, len);
    return pg_appended(ctx, dbp_column_append_decimal(out, (int64_t)read64(p)));
}

/* ---- arrays -------------------------------------------------------------- */

/* One-dimensional arrays: ndim, has-null flag, element OID, then per
 * dimension its size and lower bound, then each element as a length (-1 for
 * NULL) and bytes. The whole layout is checked before anything is appended;
 * an element that fails takes the earlier ones back out of the child. */
static int decode_array(const decode_ctx *ctx, const unsigned char *p, int32_t len,
                        dbp_column *out)
{
    const pg_column_plan *element = ctx->plan->element;
    dbp_column *child = dbp_column_list_child(out);
    if (!element || element->decoder == PGD_ARRAY || !child)
        return dbp_error_set(ctx->err, DBP_E_MISUSE, 0, NULL,
                             "column \"%s\": array plan or column is not a list", ctx->column);
    if (len < 12)
        return pg_bad_length(ctx, len);
    int32_t ndim = (int32_t)read32(p);
    int32_t flags = (int32_t)read32(p + 4);
    uint32_t element_oid = read32(p + 8);
    if (ndim < 0 || ndim > PG_MAXDIM || (flags & ~1))
        return pg_malformed(ctx, "bad header");
    if (element_oid != element->oid)
        return pg_malformed(ctx, "unexpected element type");
    if (ndim > 1)
        return dbp_error_set(ctx->err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": %d-dimensional array; only one-dimensional arrays "
                             "become lists: select unnest(%s), or array_to_json(%s) for text",
                             ctx->column, (int)ndim, ctx->column, ctx->column);
    if (ndim == 0) {
        if (len != 12)
            return pg_malformed(ctx, "bytes after an empty array");
        return pg_appended(ctx, dbp_column_append_list(out));
    }
    if (len < 20)
        return pg_bad_length(ctx, len);
    int32_t count = (int32_t)read32(p + 12);
    /* the lower bound (p + 16) is not kept: a list always starts at 0 */
    if (count < 0 || count > (len - 20) / 4)
        return pg_malformed(ctx, "element count does not fit the length");

    size_t size = (size_t)len, pos = 20;
    for (int32_t i = 0; i < count; i++) {
        if (size - pos < 4)
            return pg_malformed(ctx, "truncated element");
        int32_t element_len = (int32_t)read32(p + pos);
        pos += 4;
        if (element_len < -1 || (element_len > 0 && (size_t)element_len > size - pos))
            return pg_malformed(ctx, "element length past the end");
        if (element_len > 0)
            pos += (size_t)element_len;
    }
    if (pos != size)
        return pg_malformed(ctx, "bytes after the last element");

    int64_t before = child->length;
    pos = 20;
    for (int32_t i = 0; i < count; i++) {
        int32_t element_len = (int32_t)read32(p + pos);
        pos += 4;
        int rc = pg_decode_value(element, (const char *)p + pos, element_len, child, ctx->column,
                                 ctx->err);
        if (rc != DBP_OK) {
            dbp_column_truncate(child, before);
            return rc;
        }
        if (element_len > 0)
            pos += (size_t)element_len;
    }
    int rc = dbp_column_append_list(out);
    if (rc != DBP_OK)
        dbp_column_truncate(child, before);
    return pg_appended(ctx, rc);
}

/* ---- entry point --------------------------------------------------------- */

int pg_decode_value(const pg_column_plan *plan, const char *data, int32_t len, dbp_column *out,
                    const char *column, dbp_error *err)
{
    decode_ctx ctx = {.plan = plan, .column = column ? column : "?", .err = err};
    if (out->type.id != plan->type.id)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "column \"%s\": the builder's type does not match the plan",
                             ctx.column);
    if (len < 0)
        return pg_appended(&ctx, dbp_column_append_null(out));
    const unsigned char *p = (const unsigned char *)data;
    switch (plan->decoder) {
    case PGD_RAW:
    case PGD_BYTEA:
        return pg_appended(&ctx, dbp_column_append_bytes(out, p, (size_t)len));
    case PGD_BOOL:
        if (len != 1)
            return pg_bad_length(&ctx, len);
        if (p[0] > 1)
            return pg_malformed(&ctx, "not 0 or 1");
        return pg_appended(&ctx, dbp_column_append_bool(out, p[0]));
    case PGD_INT2:
    case PGD_INT4:
    case PGD_INT8:
    case PGD_OID:
        return decode_fixed_int(&ctx, p, len, out);
    case PGD_FLOAT4:
    case PGD_FLOAT8:
        return decode_float(&ctx, p, len, out);
    case PGD_NUMERIC:
        return pg_decode_numeric(&ctx, p, len, out);
    case PGD_TEXT:
        return decode_text(&ctx, p, len, out);
    case PGD_JSONB:
        if (len < 1 || p[0] != 1)
            return pg_malformed(&ctx, "unknown jsonb version");
        return decode_text(&ctx, p + 1, len - 1, out);
    case PGD_CHAR:
        return decode_char(&ctx, p, len, out);
    case PGD_DATE:
        return decode_date(&ctx, p, len, out);
    case PGD_TIME:
    case PGD_TIMETZ:
        return decode_time(&ctx, p, len, out);
    case PGD_TIMESTAMP:
    case PGD_TIMESTAMPTZ:
        return decode_timestamp(&ctx, p, len, out);
    case PGD_INTERVAL:
        return decode_interval(&ctx, p, len, out);
    case PGD_UUID:
        return decode_uuid(&ctx, p, len, out);
    case PGD_INET:
        return decode_inet(&ctx, p, len, out);
    case PGD_MACADDR:
    case PGD_MACADDR8:
        return decode_macaddr(&ctx, p, len, out);
    case PGD_MONEY:
        return decode_money(&ctx, p, len, out);
    case PGD_ARRAY:
        return decode_array(&ctx, p, len, out);
    }
    return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "column \"%s\": unknown decoder", ctx.column);
}
