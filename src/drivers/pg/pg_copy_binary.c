/* pg_copy_binary.c - write_frame cells in COPY's binary format: each value
 * in the type's own wire form (big-endian integers, microseconds since
 * 2000-01-01, base-10000 numeric digits), so the server parses nothing.
 * Only pairs of (frame value kind, column type) whose binary form is the
 * exact same value as the text form the text path would send are encoded;
 * for anything else the whole write stays on the text format. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pg_internal.h"
#include "textparse.h"

/* Built-in type OIDs (pg_type.dat). */
enum {
    BOOL_OID = 16, BYTEA_OID = 17, NAME_OID = 19, INT8_OID = 20, INT2_OID = 21, INT4_OID = 23,
    TEXT_OID = 25, JSON_OID = 114, FLOAT4_OID = 700, FLOAT8_OID = 701, BPCHAR_OID = 1042,
    VARCHAR_OID = 1043, DATE_OID = 1082, TIME_OID = 1083, TIMESTAMP_OID = 1114,
    TIMESTAMPTZ_OID = 1184, INTERVAL_OID = 1186, NUMERIC_OID = 1700, UUID_OID = 2950,
    JSONB_OID = 3802,
};

#define DAYS_1970_TO_2000 10957
#define US_1970_TO_2000 (INT64_C(10957) * 86400 * 1000000)

pg_binary_encoder pg_binary_encoder_for(dbp_value_kind kind, uint32_t oid)
{
    switch (kind) {
    case DBP_V_NULL:
        return PGB_NULLS; /* a column of nulls goes into any type */
    case DBP_V_BOOL:
        return oid == BOOL_OID ? PGB_BOOL : PGB_NONE;
    case DBP_V_INT64:
        return oid == INT2_OID ? PGB_INT2 : oid == INT4_OID ? PGB_INT4
             : oid == INT8_OID ? PGB_INT8 : oid == NUMERIC_OID ? PGB_NUMERIC : PGB_NONE;
    case DBP_V_DOUBLE:
        return oid == FLOAT8_OID ? PGB_FLOAT8 : oid == FLOAT4_OID ? PGB_FLOAT4 : PGB_NONE;
    case DBP_V_DECIMAL:
        return oid == NUMERIC_OID ? PGB_NUMERIC : PGB_NONE;
    case DBP_V_TEXT:
        return oid == TEXT_OID || oid == VARCHAR_OID || oid == BPCHAR_OID || oid == NAME_OID ||
                       oid == JSON_OID
                   ? PGB_TEXT
               : oid == JSONB_OID ? PGB_JSONB
               : oid == UUID_OID  ? PGB_UUID
                                  : PGB_NONE;
    case DBP_V_BLOB:
        return oid == BYTEA_OID ? PGB_TEXT : PGB_NONE; /* both are the bytes themselves */
    case DBP_V_DATE:
        return oid == DATE_OID ? PGB_DATE : PGB_NONE;
    case DBP_V_TIME:
        return oid == TIME_OID ? PGB_TIME : PGB_NONE;
    case DBP_V_TIMESTAMP: /* into timestamptz the text path means the session's zone */
        return oid == TIMESTAMP_OID ? PGB_TIMESTAMP : PGB_NONE;
    case DBP_V_TIMESTAMP_TZ:
        return oid == TIMESTAMPTZ_OID || oid == TIMESTAMP_OID ? PGB_TIMESTAMP : PGB_NONE;
    case DBP_V_INTERVAL:
        return oid == INTERVAL_OID ? PGB_INTERVAL : PGB_NONE;
    default:
        return PGB_NONE;
    }
}

static void put16(dbp_textbuf *t, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    dbp_textbuf_add(t, (const char *)b, 2);
}

static void put32(dbp_textbuf *t, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    dbp_textbuf_add(t, (const char *)b, 4);
}

static void put64(dbp_textbuf *t, uint64_t v)
{
    put32(t, (uint32_t)(v >> 32));
    put32(t, (uint32_t)v);
}

void pg_binary_header(dbp_textbuf *t)
{
    dbp_textbuf_add(t, "PGCOPY\n\377\r\n", 11); /* the signature, its NUL included */
    put32(t, 0);                                /* flags */
    put32(t, 0);                                /* header extension length */
}

void pg_binary_row_start(dbp_textbuf *t, size_t n_fields) { put16(t, (uint16_t)n_fields); }

void pg_binary_trailer(dbp_textbuf *t) { put16(t, 0xffff); }

/* numeric's binary form: digit groups of base 10000 around the point. */
static int put_numeric(dbp_textbuf *t, const char *s, size_t n)
{
    int negative = n && s[0] == '-';
    if (negative || (n && s[0] == '+')) {
        s++;
        n--;
    }
    const char *point = memchr(s, '.', n);
    size_t int_len = point ? (size_t)(point - s) : n;
    size_t frac_len = point ? n - int_len - 1 : 0;
    if (int_len + frac_len > 1000)
        return DBP_E_DATA;
    for (size_t i = 0; i < n; i++)
        if ((s[i] < '0' || s[i] > '9') && s + i != point)
            return DBP_E_DATA;
    /* Digits padded on the left of the point to a multiple of 4, and on the
     * right likewise: each 4 of them make one base-10000 group. */
    size_t lead = (4 - int_len % 4) % 4, int_groups = (int_len + lead) / 4;
    size_t frac_groups = (frac_len + 3) / 4;
    uint16_t groups[260];
    for (size_t g = 0; g < int_groups + frac_groups; g++) {
        uint16_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            size_t pos = g * 4 + k; /* in the padded digit string */
            int digit = 0;
            if (pos >= lead && pos < lead + int_len)
                digit = s[pos - lead] - '0';
            else if (pos >= lead + int_len && pos - lead - int_len < frac_len)
                digit = point[1 + pos - lead - int_len] - '0';
            v = (uint16_t)(v * 10 + digit);
        }
        groups[g] = v;
    }
    size_t first = 0, end = int_groups + frac_groups;
    while (first < end && groups[first] == 0)
        first++;
    while (end > first && groups[end - 1] == 0)
        end--;
    int weight = first == end ? 0 : (int)int_groups - 1 - (int)first;
    put32(t, (uint32_t)(8 + 2 * (end - first)));
    put16(t, (uint16_t)(end - first));
    put16(t, (uint16_t)(int16_t)weight);
    put16(t, negative && first != end ? 0x4000 : 0x0000);
    put16(t, (uint16_t)frac_len); /* display scale: the digits written */
    for (size_t g = first; g < end; g++)
        put16(t, groups[g]);
    return DBP_OK;
}

/* A UUID's 16 bytes from its text as PostgreSQL's uuid input reads it: 32
 * hex digits, a hyphen allowed after any group of four, optionally braced. */
static int parse_uuid(const char *s, size_t n, unsigned char out[16])
{
    if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
        s++;
        n -= 2;
    }
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '-' && digits % 4 == 0 && digits > 0 && digits < 32 && i + 1 < n && s[i + 1] != '-')
            continue;
        int v = ch >= '0' && ch <= '9' ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (v < 0 || digits == 32)
            return DBP_E_DATA;
        out[digits / 2] = (unsigned char)(digits % 2 ? (out[digits / 2] << 4) | v : v);
        digits++;
    }
    return digits == 32 ? DBP_OK : DBP_E_DATA;
}

static int out_of_range(const char *column, long long v, const char *type, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_DATA, 0, "22003", "column '%s': %lld is out of range for %s",
                         column, v, type);
}

int pg_binary_put(dbp_textbuf *t, pg_binary_encoder enc, const dbp_cell *v, const char *column,
                  dbp_error *err)
{
    if (v->kind == DBP_V_NULL) {
        put32(t, 0xffffffffu);
        return DBP_OK;
    }
    char text[48];
    switch (enc) {
    case PGB_BOOL:
        put32(t, 1);
        dbp_textbuf_add(t, v->i ? "\1" : "\0", 1);
        return DBP_OK;
    case PGB_INT2:
        if (v->i < INT16_MIN || v->i > INT16_MAX)
            return out_of_range(column, (long long)v->i, "smallint", err);
        put32(t, 2);
        put16(t, (uint16_t)(int16_t)v->i);
        return DBP_OK;
    case PGB_INT4:
        if (v->i < INT32_MIN || v->i > INT32_MAX)
            return out_of_range(column, (long long)v->i, "integer", err);
        put32(t, 4);
        put32(t, (uint32_t)(int32_t)v->i);
        return DBP_OK;
    case PGB_INT8:
        put32(t, 8);
        put64(t, (uint64_t)v->i);
        return DBP_OK;
    case PGB_FLOAT4: {
        /* As float4's text input would read the double's shortest text. */
        dbp_format_double(v->d, text, sizeof text);
        float f = isnan(v->d) ? NAN : isinf(v->d) ? (float)v->d : strtof(text, NULL);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put32(t, 4);
        put32(t, bits);
        return DBP_OK;
    }
    case PGB_UUID: {
        unsigned char bytes[16];
        if (parse_uuid(v->data, v->len, bytes) != DBP_OK)
            return dbp_error_set(err, DBP_E_DATA, 0, "22P02",
                                 "column '%s': invalid input syntax for type uuid: \"%.*s\"",
                                 column, (int)(v->len > 60 ? 60 : v->len), v->data);
        put32(t, 16);
        dbp_textbuf_add(t, (const char *)bytes, 16);
        return DBP_OK;
    }
    case PGB_FLOAT8: {
        uint64_t bits;
        memcpy(&bits, &v->d, 8);
        put32(t, 8);
        put64(t, bits);
        return DBP_OK;
    }
    case PGB_NUMERIC: {
        const char *digits = v->data;
        size_t len = v->len;
        if (v->kind == DBP_V_INT64) {
            len = (size_t)snprintf(text, sizeof text, "%lld", (long long)v->i);
            digits = text;
        }
        if (put_numeric(t, digits, len) != DBP_OK)
            return dbp_error_set(err, DBP_E_DATA, 0, "22P02",
                                 "column '%s': '%.*s' is not a decimal number", column,
                                 (int)(len > 60 ? 60 : len), digits);
        return DBP_OK;
    }
    case PGB_JSONB:
        put32(t, (uint32_t)v->len + 1);
        dbp_textbuf_add(t, "\1", 1); /* jsonb's binary format version */
        dbp_textbuf_add(t, v->data, v->len);
        return DBP_OK;
    case PGB_TEXT:
        if (v->len > INT32_MAX - 1)
            return dbp_error_set(err, DBP_E_DATA, 0, "54000",
                                 "column '%s': a value over 1 GiB, more than PostgreSQL holds",
                                 column);
        put32(t, (uint32_t)v->len);
        dbp_textbuf_add(t, v->data, v->len);
        return DBP_OK;
    case PGB_DATE:
        if (v->i - DAYS_1970_TO_2000 < INT32_MIN || v->i - DAYS_1970_TO_2000 > INT32_MAX)
            return out_of_range(column, (long long)v->i, "date (days since 1970)", err);
        put32(t, 4);
        put32(t, (uint32_t)(int32_t)(v->i - DAYS_1970_TO_2000));
        return DBP_OK;
    case PGB_TIME:
        put32(t, 8);
        put64(t, (uint64_t)v->i);
        return DBP_OK;
    case PGB_TIMESTAMP: {
        int64_t since_2000;
        if (__builtin_sub_overflow(v->i, US_1970_TO_2000, &since_2000))
            return out_of_range(column, (long long)v->i, "timestamp (microseconds since 1970)", err);
        put32(t, 8);
        put64(t, (uint64_t)since_2000);
        return DBP_OK;
    }
    case PGB_INTERVAL:
        put32(t, 16);
        put64(t, (uint64_t)v->i); /* microseconds, then days and months: none */
        put32(t, 0);
        put32(t, 0);
        return DBP_OK;
    default:
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "column '%s': no binary encoder", column);
    }
}
