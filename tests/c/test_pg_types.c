/* test_pg_types.c - PostgreSQL binary decoders from hand-built bytes (no
 * server needed): every type's normal values, NULLs and extremes, malformed
 * input (which must give DBP_E_PROTOCOL and never read past the value), and
 * random bytes through every decoder. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "column.h"
#include "pg_copy.h"
#include "pg_types.h"
#include "textparse.h"

/* ---- building wire values ------------------------------------------------------- */

typedef struct wire {
    unsigned char bytes[4096];
    int32_t len;
} wire;

static void put8(wire *w, unsigned v)
{
    w->bytes[w->len++] = (unsigned char)v;
}

static void put16(wire *w, unsigned v)
{
    put8(w, (v >> 8) & 0xff);
    put8(w, v & 0xff);
}

static void put32(wire *w, uint32_t v)
{
    put16(w, v >> 16);
    put16(w, v & 0xffff);
}

static void put64(wire *w, uint64_t v)
{
    put32(w, (uint32_t)(v >> 32));
    put32(w, (uint32_t)v);
}

static void put_bytes(wire *w, const void *p, size_t n)
{
    memcpy(w->bytes + w->len, p, n);
    w->len += (int32_t)n;
}

/* A decimal string ("-123.4500") in numeric's binary form: base-10000 digits
 * aligned on the decimal point, zero digits at both ends left out. */
static wire numeric_wire(const char *text)
{
    wire w = {.len = 0};
    int negative = text[0] == '-';
    if (negative || text[0] == '+')
        text++;
    const char *dot = strchr(text, '.');
    size_t int_len = dot ? (size_t)(dot - text) : strlen(text);
    const char *frac = dot ? dot + 1 : "";
    size_t frac_len = strlen(frac);
    /* pad to whole groups of 4 on both sides */
    char buf[256];
    size_t lead = (4 - int_len % 4) % 4, n = 0;
    for (size_t i = 0; i < lead; i++)
        buf[n++] = '0';
    memcpy(buf + n, text, int_len);
    n += int_len;
    int int_groups = (int)(n / 4);
    memcpy(buf + n, frac, frac_len);
    n += frac_len;
    while (n % 4)
        buf[n++] = '0';
    int groups = (int)(n / 4);
    int digits[64];
    for (int g = 0; g < groups; g++)
        digits[g] = (buf[4 * g] - '0') * 1000 + (buf[4 * g + 1] - '0') * 100 +
                    (buf[4 * g + 2] - '0') * 10 + (buf[4 * g + 3] - '0');
    int first = 0, last = groups - 1;
    while (first <= last && digits[first] == 0)
        first++;
    while (last >= first && digits[last] == 0)
        last--;
    int ndigits = first <= last ? last - first + 1 : 0;
    int weight = ndigits ? int_groups - 1 - first : 0;
    put16(&w, (unsigned)ndigits);
    put16(&w, (unsigned)(weight & 0xffff));
    put16(&w, negative && ndigits ? 0x4000 : 0);
    put16(&w, (unsigned)frac_len);
    for (int g = first; g <= last; g++)
        put16(&w, (unsigned)digits[g]);
    return w;
}

/* A one-dimensional array of the given elements (len -1 = NULL). */
typedef struct element {
    const void *bytes;
    int32_t len;
} element;

static wire array_wire(uint32_t element_oid, const element *elements, int n)
{
    wire w = {.len = 0};
    put32(&w, 1);
    int has_null = 0;
    for (int i = 0; i < n; i++)
        has_null |= elements[i].len < 0;
    put32(&w, (uint32_t)has_null);
    put32(&w, element_oid);
    put32(&w, (uint32_t)n);
    put32(&w, 1);
    for (int i = 0; i < n; i++) {
        put32(&w, (uint32_t)elements[i].len);
        if (elements[i].len > 0)
            put_bytes(&w, elements[i].bytes, (size_t)elements[i].len);
    }
    return w;
}

/* ---- decoding helpers ----------------------------------------------------------- */

typedef struct decoded {
    pg_column_plan plan;
    dbp_column col;
    dbp_error err;
} decoded;

static void open_plan(decoded *d, uint32_t oid, int32_t typmod)
{
    memset(d, 0, sizeof *d);
    CHECK_EQ_INT(pg_plan_column(oid, typmod, 0, &d->plan, &d->err), DBP_OK);
    CHECK_EQ_INT(dbp_column_init(&d->col, "c", d->plan.type), DBP_OK);
}

static void close_plan(decoded *d)
{
    dbp_column_free(&d->col);
    pg_plan_free(&d->plan);
}

/* Decodes a copy of the bytes in a buffer of exactly that size, so ASan
 * catches any read past the value. */
static int decode(decoded *d, const void *bytes, int32_t len)
{
    char *copy = NULL;
    if (len > 0) {
        copy = malloc((size_t)len);
        memcpy(copy, bytes, (size_t)len);
    }
    int rc = pg_decode_value(&d->plan, copy, len, &d->col, "c", &d->err);
    free(copy);
    return rc;
}

static int decode_wire(decoded *d, const wire *w)
{
    return decode(d, w->bytes, w->len);
}

static int64_t int_at(const dbp_column *col, int64_t i)
{
    size_t width = dbp_type_width(col->type.id);
    const uint8_t *p = col->values.data + width * (size_t)i;
    switch (width) {
    case 2: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        if (col->type.id == DBP_T_UINT32) {
            uint32_t u;
            memcpy(&u, p, 4);
            return u;
        }
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static __int128 decimal_at(const dbp_column *col, int64_t i)
{
    __int128 v;
    memcpy(&v, col->values.data + 16 * i, 16);
    return v;
}

static int is_valid(const dbp_column *col, int64_t i)
{
    return !col->validity.data || ((col->validity.data[i / 8] >> (i % 8)) & 1);
}

/* Bytes of string/binary value i (views). */
static const uint8_t *bytes_at(const dbp_column *col, int64_t i, int32_t *len)
{
    const uint8_t *view = col->values.data + 16 * i;
    memcpy(len, view, 4);
    if (*len <= 12)
        return view + 4;
    int32_t buffer, offset;
    memcpy(&buffer, view + 8, 4);
    memcpy(&offset, view + 12, 4);
    return col->data_buffers[buffer].data + offset;
}

static int text_is(const dbp_column *col, int64_t i, const char *want)
{
    int32_t len;
    const uint8_t *p = bytes_at(col, i, &len);
    return len == (int32_t)strlen(want) && memcmp(p, want, (size_t)len) == 0;
}

static int32_t list_offset(const dbp_column *col, int64_t i)
{
    int32_t v = 0;
    if (col->values.size)
        memcpy(&v, col->values.data + 4 * i, 4);
    return v;
}

#define CHECK_TEXT(col, i, want)                                                          \
    do {                                                                                  \
        if (!text_is((col), (i), (want))) {                                               \
            int32_t len_;                                                                 \
            const uint8_t *p_ = bytes_at((col), (i), &len_);                              \
            fprintf(stderr, "%s:%d: text %lld is [%.*s], want [%s]\n", __FILE__, __LINE__, \
                    (long long)(i), (int)len_, (const char *)p_, (want));                 \
            check_failures++;                                                             \
        }                                                                                 \
    } while (0)

/* ---- planning ------------------------------------------------------------------- */

static void test_plans(void)
{
    static const struct {
        uint32_t oid;
        pg_decoder decoder;
        dbp_type_id id;
    } scalars[] = {
        {16, PGD_BOOL, DBP_T_BOOL},          {21, PGD_INT2, DBP_T_INT16},
        {23, PGD_INT4, DBP_T_INT32},         {20, PGD_INT8, DBP_T_INT64},
        {26, PGD_OID, DBP_T_UINT32},         {700, PGD_FLOAT4, DBP_T_FLOAT32},
        {701, PGD_FLOAT8, DBP_T_FLOAT64},    {1700, PGD_NUMERIC, DBP_T_DECIMAL128},
        {25, PGD_TEXT, DBP_T_STRING},        {1043, PGD_TEXT, DBP_T_STRING},
        {1042, PGD_TEXT, DBP_T_STRING},      {19, PGD_TEXT, DBP_T_STRING},
        {114, PGD_TEXT, DBP_T_STRING},       {142, PGD_TEXT, DBP_T_STRING},
        {705, PGD_TEXT, DBP_T_STRING},       {3802, PGD_JSONB, DBP_T_STRING},
        {18, PGD_CHAR, DBP_T_STRING},        {17, PGD_BYTEA, DBP_T_BINARY},
        {1082, PGD_DATE, DBP_T_DATE32},      {1083, PGD_TIME, DBP_T_TIME64_US},
        {1266, PGD_TIMETZ, DBP_T_TIME64_US}, {1114, PGD_TIMESTAMP, DBP_T_TIMESTAMP_US},
        {1184, PGD_TIMESTAMPTZ, DBP_T_TIMESTAMP_UTC},
        {1186, PGD_INTERVAL, DBP_T_DURATION_US},
        {2950, PGD_UUID, DBP_T_STRING},      {869, PGD_INET, DBP_T_STRING},
        {650, PGD_INET, DBP_T_STRING},       {829, PGD_MACADDR, DBP_T_STRING},
        {774, PGD_MACADDR8, DBP_T_STRING},   {790, PGD_MONEY, DBP_T_DECIMAL128},
    };
    static const uint32_t arrays[][2] = {
        {1000, 16},   {1005, 21},   {1007, 23},   {1016, 20},   {1028, 26},   {1021, 700},
        {1022, 701},  {1231, 1700}, {1009, 25},   {1015, 1043}, {1014, 1042}, {1003, 19},
        {199, 114},   {3807, 3802}, {1001, 17},   {1182, 1082}, {1183, 1083}, {1270, 1266},
        {1115, 1114}, {1185, 1184}, {1187, 1186}, {2951, 2950}, {1041, 869},  {651, 650},
        {1040, 829},  {775, 774},   {791, 790},   {143, 142},   {1002, 18},
    };
    dbp_error err = {0};
    pg_column_plan plan;
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        CHECK_EQ_INT(pg_plan_column(scalars[i].oid, -1, 0, &plan, &err), DBP_OK);
        CHECK_EQ_INT(plan.oid, scalars[i].oid);
        CHECK_EQ_INT(plan.decoder, scalars[i].decoder);
        CHECK_EQ_INT(plan.type.id, scalars[i].id);
        CHECK(plan.element == NULL);
        CHECK_EQ_INT(pg_array_element_oid(scalars[i].oid), 0);
        pg_plan_free(&plan);
    }
    CHECK_EQ_INT(sizeof arrays / sizeof arrays[0], 29);
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        CHECK_EQ_INT(pg_array_element_oid(arrays[i][0]), arrays[i][1]);
        CHECK_EQ_INT(pg_plan_column(arrays[i][0], -1, 0, &plan, &err), DBP_OK);
        CHECK_EQ_INT(plan.decoder, PGD_ARRAY);
        CHECK_EQ_INT(plan.type.id, DBP_T_LIST);
        CHECK(plan.element != NULL);
        CHECK_EQ_INT(plan.element->oid, arrays[i][1]);
        CHECK(plan.type.element == &plan.element->type);
        pg_plan_free(&plan);
        CHECK(plan.element == NULL);
    }
    pg_plan_free(NULL);

    /* money is cents */
    CHECK_EQ_INT(pg_plan_column(790, -1, 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.type.precision, 19);
    CHECK_EQ_INT(plan.type.scale, 2);
    pg_plan_free(&plan);

    /* unknown OIDs: raw bytes, or text when the catalog says so */
    CHECK_EQ_INT(pg_plan_column(600 /* point */, -1, 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.decoder, PGD_RAW);
    CHECK_EQ_INT(plan.type.id, DBP_T_BINARY);
    pg_plan_free(&plan);
    CHECK_EQ_INT(pg_plan_column(90001, -1, 1, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.decoder, PGD_TEXT);
    CHECK_EQ_INT(plan.type.id, DBP_T_STRING);
    pg_plan_free(&plan);
    /* a known OID is never overridden */
    CHECK_EQ_INT(pg_plan_column(23, -1, 1, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.decoder, PGD_INT4);
    pg_plan_free(&plan);

    /* arrays of catalog types */
    CHECK_EQ_INT(pg_plan_array_column(90002, 90001, -1, 1, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.decoder, PGD_ARRAY);
    CHECK_EQ_INT(plan.oid, 90002);
    CHECK_EQ_INT(plan.element->oid, 90001);
    CHECK_EQ_INT(plan.element->decoder, PGD_TEXT);
    pg_plan_free(&plan);
    CHECK_EQ_INT(pg_plan_array_column(90002, 1007, -1, 0, &plan, &err), DBP_E_MISUSE);
    CHECK(plan.element == NULL);

    /* allocation failure planning an array */
    dbp_alloc_fail_after(1);
    CHECK_EQ_INT(pg_plan_column(1007, -1, 0, &plan, &err), DBP_E_NOMEM);
    dbp_alloc_fail_reset();
    CHECK_EQ_INT(err.category, DBP_E_NOMEM);
    CHECK(plan.element == NULL);
}

static int32_t numeric_typmod(int precision, int scale)
{
    return (int32_t)(((uint32_t)precision << 16) | ((uint32_t)scale & 0x7ff)) + 4;
}

static void test_numeric_plans(void)
{
    dbp_error err = {0};
    pg_column_plan plan;
    CHECK_EQ_INT(pg_plan_column(1700, -1, 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.type.precision, 38);
    CHECK_EQ_INT(plan.type.scale, 0);
    pg_plan_free(&plan);
    CHECK_EQ_INT(pg_plan_column(1700, numeric_typmod(10, 2), 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.type.precision, 10);
    CHECK_EQ_INT(plan.type.scale, 2);
    pg_plan_free(&plan);
    CHECK_EQ_INT(pg_plan_column(1700, numeric_typmod(38, 38), 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.type.scale, 38);
    pg_plan_free(&plan);
    /* PostgreSQL 15: negative scale and scale above precision */
    CHECK_EQ_INT(pg_plan_column(1700, numeric_typmod(5, -2), 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.type.precision, 7);
    CHECK_EQ_INT(plan.type.scale, 0);
    pg_plan_free(&plan);
    CHECK_EQ_INT(pg_plan_column(1700, numeric_typmod(3, 5), 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.type.precision, 5);
    CHECK_EQ_INT(plan.type.scale, 5);
    pg_plan_free(&plan);
    /* too wide for decimal128: refused up front, with a way out */
    CHECK_EQ_INT(pg_plan_column(1700, numeric_typmod(39, 2), 0, &plan, &err), DBP_E_DATA);
    CHECK(strstr(err.message, "numeric(39,2)") != NULL);
    CHECK(strstr(err.message, "text") != NULL);
    CHECK_EQ_INT(pg_plan_column(1700, numeric_typmod(37, -2), 0, &plan, &err), DBP_E_DATA);
    CHECK_EQ_INT(pg_plan_column(1231, numeric_typmod(1000, 0), 0, &plan, &err), DBP_E_DATA);
    CHECK(plan.element == NULL);
    /* an array's typmod is its element's */
    CHECK_EQ_INT(pg_plan_column(1231, numeric_typmod(12, 3), 0, &plan, &err), DBP_OK);
    CHECK_EQ_INT(plan.element->type.precision, 12);
    CHECK_EQ_INT(plan.type.element->scale, 3);
    pg_plan_free(&plan);
}

/* ---- scalars -------------------------------------------------------------------- */

static void test_nulls_everywhere(void)
{
    static const uint32_t oids[] = {16,   21,   23,   20,   26,   700,  701,  1700, 25,  3802,
                                    18,   17,   1082, 1083, 1266, 1114, 1184, 1186, 2950, 869,
                                    650,  829,  774,  790,  600,  1007, 1009, 1231};
    for (size_t i = 0; i < sizeof oids / sizeof oids[0]; i++) {
        decoded d;
        open_plan(&d, oids[i], -1);
        CHECK_EQ_INT(decode(&d, NULL, -1), DBP_OK);
        CHECK_EQ_INT(decode(&d, "garbage", -5), DBP_OK); /* any negative length */
        CHECK_EQ_INT(d.col.length, 2);
        CHECK_EQ_INT(d.col.null_count, 2);
        close_plan(&d);
    }
}

static void test_bool_and_integers(void)
{
    decoded d;
    open_plan(&d, 16, -1);
    CHECK_EQ_INT(decode(&d, "\1", 1), DBP_OK);
    CHECK_EQ_INT(decode(&d, "\0", 1), DBP_OK);
    CHECK_EQ_INT(decode(&d, "\2", 1), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, "", 0), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, "\1\1", 2), DBP_E_PROTOCOL);
    CHECK_EQ_INT(d.col.length, 2);
    CHECK_EQ_INT(d.col.values.data[0] & 3, 1);
    close_plan(&d);

    static const struct {
        uint32_t oid;
        int width;
        int64_t values[3];
    } cases[] = {
        {21, 2, {INT16_MIN, INT16_MAX, -1}},
        {23, 4, {INT32_MIN, INT32_MAX, -1}},
        {20, 8, {INT64_MIN, INT64_MAX, -1}},
        {26, 4, {0, UINT32_MAX, 12345}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        open_plan(&d, cases[c].oid, -1);
        for (int i = 0; i < 3; i++) {
            wire w = {.len = 0};
            uint64_t v = (uint64_t)cases[c].values[i];
            if (cases[c].width == 2)
                put16(&w, (unsigned)(v & 0xffff));
            else if (cases[c].width == 4)
                put32(&w, (uint32_t)v);
            else
                put64(&w, v);
            CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
            /* one byte short and one too many */
            CHECK_EQ_INT(decode(&d, w.bytes, w.len - 1), DBP_E_PROTOCOL);
            w.bytes[w.len] = 0;
            CHECK_EQ_INT(decode(&d, w.bytes, w.len + 1), DBP_E_PROTOCOL);
        }
        CHECK_EQ_INT(d.col.length, 3);
        for (int i = 0; i < 3; i++)
            CHECK_EQ_INT(int_at(&d.col, i), cases[c].values[i]);
        CHECK_EQ_INT(decode(&d, "", 0), DBP_E_PROTOCOL);
        CHECK(strstr(d.err.message, "malformed") != NULL);
        close_plan(&d);
    }
}

static void test_floats(void)
{
    decoded d;
    open_plan(&d, 700, -1);
    static const float f4[] = {1.5f, -0.0f, INFINITY, -INFINITY, 1e-45f, 3.4028235e38f};
    for (size_t i = 0; i < sizeof f4 / sizeof f4[0]; i++) {
        uint32_t bits;
        memcpy(&bits, &f4[i], 4);
        wire w = {.len = 0};
        put32(&w, bits);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    }
    wire nan4 = {.len = 0};
    put32(&nan4, 0x7fc00000);
    CHECK_EQ_INT(decode_wire(&d, &nan4), DBP_OK);
    CHECK_EQ_INT(decode(&d, "\0\0\0", 3), DBP_E_PROTOCOL);
    const float *fv = (const float *)d.col.values.data;
    for (size_t i = 0; i < sizeof f4 / sizeof f4[0]; i++)
        CHECK(memcmp(&fv[i], &f4[i], 4) == 0); /* bit-exact, -0 included */
    CHECK(isnan(fv[6]));
    close_plan(&d);

    open_plan(&d, 701, -1);
    static const double f8[] = {0.1, -0.0, INFINITY, 5e-324, 1.7976931348623157e308};
    for (size_t i = 0; i < sizeof f8 / sizeof f8[0]; i++) {
        uint64_t bits;
        memcpy(&bits, &f8[i], 8);
        wire w = {.len = 0};
        put64(&w, bits);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    }
    CHECK_EQ_INT(decode(&d, "\0\0\0\0", 4), DBP_E_PROTOCOL);
    const double *dv = (const double *)d.col.values.data;
    for (size_t i = 0; i < sizeof f8 / sizeof f8[0]; i++)
        CHECK(memcmp(&dv[i], &f8[i], 8) == 0);
    close_plan(&d);
}

static void test_text_types(void)
{
    decoded d;
    open_plan(&d, 25, -1);
    const char *smile = "\xf0\x9f\x98\x80 beyond the BMP \xf0\x9d\x84\x9e";
    CHECK_EQ_INT(decode(&d, smile, (int32_t)strlen(smile)), DBP_OK);
    CHECK_EQ_INT(decode(&d, "", 0), DBP_OK);
    CHECK_EQ_INT(decode(&d, NULL, 0), DBP_OK);
    /* invalid UTF-8: a lone continuation byte, a truncated sequence, a surrogate */
    CHECK_EQ_INT(decode(&d, "a\x80", 2), DBP_E_DATA);
    CHECK(strstr(d.err.message, "UTF-8") != NULL);
    CHECK(strstr(d.err.message, "\"c\"") != NULL);
    CHECK_EQ_INT(decode(&d, "\xe2\x82", 2), DBP_E_DATA);
    CHECK_EQ_INT(decode(&d, "\xed\xa0\x80", 3), DBP_E_DATA);
    size_t big_len = 100 * 1024;
    char *big = malloc(big_len);
    memset(big, 'x', big_len);
    CHECK_EQ_INT(decode(&d, big, (int32_t)big_len), DBP_OK);
    CHECK_EQ_INT(d.col.length, 4);
    CHECK_TEXT(&d.col, 0, smile);
    CHECK_TEXT(&d.col, 1, "");
    int32_t len;
    const uint8_t *p = bytes_at(&d.col, 3, &len);
    CHECK_EQ_INT(len, big_len);
    CHECK(memcmp(p, big, big_len) == 0);
    free(big);
    close_plan(&d);

    /* jsonb: version 1 then the text */
    open_plan(&d, 3802, -1);
    const char jsonb[] = "\1{\"a\": [1, {\"b\": null}]}";
    CHECK_EQ_INT(decode(&d, jsonb, (int32_t)sizeof jsonb - 1), DBP_OK);
    CHECK_TEXT(&d.col, 0, "{\"a\": [1, {\"b\": null}]}");
    CHECK_EQ_INT(decode(&d, "\2{}", 3), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, "", 0), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, "\1\xff", 2), DBP_E_DATA);
    CHECK_EQ_INT(decode(&d, "\1", 1), DBP_OK); /* empty text; the server never sends it */
    close_plan(&d);

    /* "char": ASCII as is, 0 as "", high bytes as PostgreSQL prints them */
    open_plan(&d, 18, -1);
    CHECK_EQ_INT(decode(&d, "a", 1), DBP_OK);
    CHECK_EQ_INT(decode(&d, "\0", 1), DBP_OK);
    CHECK_EQ_INT(decode(&d, "\xe9", 1), DBP_OK);
    CHECK_EQ_INT(decode(&d, "\x80", 1), DBP_OK);
    CHECK_EQ_INT(decode(&d, "", 0), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, "ab", 2), DBP_E_PROTOCOL);
    CHECK_TEXT(&d.col, 0, "a");
    CHECK_TEXT(&d.col, 1, "");
    CHECK_TEXT(&d.col, 2, "\\351");
    CHECK_TEXT(&d.col, 3, "\\200");
    close_plan(&d);

    /* bytea and unknown types keep every byte */
    static const uint32_t binary_oids[] = {17, 600};
    for (int k = 0; k < 2; k++) {
        open_plan(&d, binary_oids[k], -1);
        const char raw[] = "\0\1\2\0\xff\xfe long enough to be out of line";
        CHECK_EQ_INT(decode(&d, raw, (int32_t)sizeof raw), DBP_OK);
        CHECK_EQ_INT(decode(&d, "", 0), DBP_OK);
        p = bytes_at(&d.col, 0, &len);
        CHECK_EQ_INT(len, sizeof raw);
        CHECK(memcmp(p, raw, sizeof raw) == 0);
        CHECK_EQ_INT(bytes_at(&d.col, 1, &len) != NULL && len == 0, 1);
        close_plan(&d);
    }

    /* text-like catalog types (enums) */
    memset(&d, 0, sizeof d);
    CHECK_EQ_INT(pg_plan_column(90001, -1, 1, &d.plan, &d.err), DBP_OK);
    CHECK_EQ_INT(dbp_column_init(&d.col, "mood", d.plan.type), DBP_OK);
    CHECK_EQ_INT(decode(&d, "happy \xe2\x98\xba", 9), DBP_OK);
    CHECK_TEXT(&d.col, 0, "happy \xe2\x98\xba");
    CHECK_EQ_INT(decode(&d, "\xff", 1), DBP_E_DATA);
    close_plan(&d);
}

static void test_uuid_and_addresses(void)
{
    decoded d;
    open_plan(&d, 2950, -1);
    const unsigned char uuid[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                                    0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
    CHECK_EQ_INT(decode(&d, uuid, 16), DBP_OK);
    CHECK_TEXT(&d.col, 0, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    CHECK_EQ_INT(decode(&d, uuid, 15), DBP_E_PROTOCOL);
    close_plan(&d);

    open_plan(&d, 829, -1);
    CHECK_EQ_INT(decode(&d, "\x08\x00\x2b\x01\x02\x03", 6), DBP_OK);
    CHECK_TEXT(&d.col, 0, "08:00:2b:01:02:03");
    CHECK_EQ_INT(decode(&d, "\x08\x00\x2b\x01\x02\x03\x04\x05", 8), DBP_E_PROTOCOL);
    close_plan(&d);
    open_plan(&d, 774, -1);
    CHECK_EQ_INT(decode(&d, "\x08\x00\x2b\x01\x02\x03\x04\xff", 8), DBP_OK);
    CHECK_TEXT(&d.col, 0, "08:00:2b:01:02:03:04:ff");
    CHECK_EQ_INT(decode(&d, "\x08\x00\x2b\x01\x02\x03", 6), DBP_E_PROTOCOL);
    close_plan(&d);

    /* inet/cidr: family (2 = v4, 3 = v6), bits, is_cidr, size, address */
    static const struct {
        uint32_t oid;
        unsigned family, bits, size;
        unsigned char addr[16];
        const char *text;
    } addresses[] = {
        {869, 2, 24, 4, {192, 168, 0, 1}, "192.168.0.1/24"},
        {869, 2, 32, 4, {192, 168, 0, 1}, "192.168.0.1"},
        {650, 2, 8, 4, {10, 0, 0, 0}, "10.0.0.0/8"},
        {650, 2, 32, 4, {10, 1, 2, 3}, "10.1.2.3/32"},
        {869, 2, 0, 4, {0, 0, 0, 0}, "0.0.0.0/0"},
        {869, 3, 128, 16, {[15] = 1}, "::1"},
        {869, 3, 128, 16, {0}, "::"},
        {650, 3, 0, 16, {0}, "::/0"},
        {650, 3, 32, 16, {0x20, 0x01, 0x0d, 0xb8}, "2001:db8::/32"},
        {869, 3, 32, 16, {0x20, 0x01, 0x0d, 0xb8}, "2001:db8::/32"},
        {869, 3, 128, 16, {[10] = 0xff, [11] = 0xff, [12] = 1, [13] = 2, [14] = 3, [15] = 4},
         "::ffff:1.2.3.4"},
        {869, 3, 128, 16, {[12] = 1, [13] = 2, [14] = 3, [15] = 4}, "::1.2.3.4"},
        {869, 3, 128, 16, {[15] = 2}, "::2"},
        {869, 3, 128, 16, {[1] = 1}, "1::"},
        /* the longest run of zeros is compressed, the first of equal ones */
        {869, 3, 128, 16, {[1] = 1, [7] = 1, [15] = 1}, "1:0:0:1::1"},
        {869, 3, 128, 16, {[1] = 1, [7] = 1, [13] = 1, [15] = 1}, "1::1:0:0:1:1"},
        /* a single zero group is not compressed */
        {869, 3, 128, 16, {[1] = 1, [3] = 2, [5] = 3, [9] = 5, [11] = 6, [13] = 7, [15] = 8},
         "1:2:3:0:5:6:7:8"},
        {869, 3, 64, 16, {0xfe, 0x80, [9] = 1, [11] = 2, [13] = 3, [15] = 4}, "fe80::1:2:3:4/64"},
        {869, 3, 128, 16, {0xab, 0xcd, [14] = 0xef, [15] = 0x01}, "abcd::ef01"},
    };
    for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
        open_plan(&d, addresses[i].oid, -1);
        wire w = {.len = 0};
        put8(&w, addresses[i].family);
        put8(&w, addresses[i].bits);
        put8(&w, addresses[i].oid == 650);
        put8(&w, addresses[i].size);
        put_bytes(&w, addresses[i].addr, addresses[i].size);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
        CHECK_TEXT(&d.col, 0, addresses[i].text);
        /* short, long, and each header byte made invalid */
        CHECK_EQ_INT(decode(&d, w.bytes, w.len - 1), DBP_E_PROTOCOL);
        w.bytes[w.len] = 0;
        CHECK_EQ_INT(decode(&d, w.bytes, w.len + 1), DBP_E_PROTOCOL);
        wire bad = w;
        bad.bytes[0] = 7;
        CHECK_EQ_INT(decode_wire(&d, &bad), DBP_E_PROTOCOL);
        bad = w;
        bad.bytes[1] = (unsigned char)(addresses[i].size * 8 + 1);
        CHECK_EQ_INT(decode_wire(&d, &bad), DBP_E_PROTOCOL);
        bad = w;
        bad.bytes[2] = 2;
        CHECK_EQ_INT(decode_wire(&d, &bad), DBP_E_PROTOCOL);
        bad = w;
        bad.bytes[3] = addresses[i].size == 4 ? 16 : 4;
        CHECK_EQ_INT(decode_wire(&d, &bad), DBP_E_PROTOCOL);
        CHECK_EQ_INT(decode(&d, w.bytes, 3), DBP_E_PROTOCOL);
        CHECK_EQ_INT(d.col.length, 1);
        close_plan(&d);
    }
}

static void test_money(void)
{
    decoded d;
    open_plan(&d, 790, -1);
    wire w = {.len = 0};
    put64(&w, (uint64_t)INT64_C(-1234));
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    w.len = 0;
    put64(&w, (uint64_t)INT64_MIN);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_EQ_INT(decode(&d, w.bytes, 4), DBP_E_PROTOCOL);
    CHECK(decimal_at(&d.col, 0) == -1234); /* -12.34 at scale 2 */
    CHECK(decimal_at(&d.col, 1) == INT64_MIN);
    close_plan(&d);
}

/* ---- dates and times ------------------------------------------------------------- */

static void test_dates(void)
{
    decoded d;
    open_plan(&d, 1082, -1);
    static const struct {
        int32_t pg_days;
        int64_t y;
        unsigned m, dd;
    } dates[] = {
        {0, 2000, 1, 1},
        {-10957, 1970, 1, 1},
        {-730119, 1, 1, 1},
        {2921939, 9999, 12, 31},
        {-2451507, -4712, 1, 1}, /* 4713-01-01 BC */
        {2145031948, 5874897, 12, 31},
    };
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        wire w = {.len = 0};
        put32(&w, (uint32_t)dates[i].pg_days);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
        CHECK_EQ_INT(int_at(&d.col, (int64_t)i),
                     dbp_days_from_civil(dates[i].y, dates[i].m, dates[i].dd));
    }
    wire w = {.len = 0};
    put32(&w, INT32_MAX);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "infinite date") != NULL);
    CHECK(strstr(d.err.message, "isfinite") != NULL);
    w.len = 0;
    put32(&w, (uint32_t)INT32_MIN);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "-infinity") != NULL);
    w.len = 0;
    put32(&w, INT32_MAX - 1); /* past Arrow's date32 once moved to 1970 */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK_EQ_INT(decode(&d, w.bytes, 2), DBP_E_PROTOCOL);
    CHECK_EQ_INT(d.col.length, sizeof dates / sizeof dates[0]);
    close_plan(&d);
}

static void test_times(void)
{
    const int64_t day = INT64_C(86400000000);
    decoded d;
    open_plan(&d, 1083, -1);
    static const int64_t ok[] = {0, INT64_C(86399999999), INT64_C(45296789000)};
    for (size_t i = 0; i < 3; i++) {
        wire w = {.len = 0};
        put64(&w, (uint64_t)ok[i]);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
        CHECK_EQ_INT(int_at(&d.col, (int64_t)i), ok[i]);
    }
    wire w = {.len = 0};
    put64(&w, (uint64_t)day); /* 24:00:00 is a PostgreSQL time, not an Arrow one */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "24:00:00") != NULL);
    w.len = 0;
    put64(&w, (uint64_t)(day + 1));
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    w.len = 0;
    put64(&w, (uint64_t)INT64_C(-1));
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, w.bytes, 7), DBP_E_PROTOCOL);
    close_plan(&d);

    /* timetz: local time and zone in seconds WEST of UTC; UTC = local + zone */
    open_plan(&d, 1266, -1);
    const int64_t hour = INT64_C(3600000000);
    static const struct {
        int64_t local;
        int32_t zone;
        int64_t utc;
    } tz[] = {
        {12 * INT64_C(3600000000), -19800, 6 * INT64_C(3600000000) + 30 * INT64_C(60000000)},
        {12 * INT64_C(3600000000), 28800, 20 * INT64_C(3600000000)},
        {1 * INT64_C(3600000000), -19800, 19 * INT64_C(3600000000) + 30 * INT64_C(60000000)},
        {23 * INT64_C(3600000000), 28800, 7 * INT64_C(3600000000)},
        {0, -50400, 10 * INT64_C(3600000000)}, /* 00:00+14 */
        {INT64_C(86400000000), 0, 0},           /* 24:00:00+00 wraps to midnight */
        {INT64_C(86399999999), 57540, 15 * INT64_C(3600000000) + 58 * INT64_C(60000000) +
                                          INT64_C(59999999)}, /* 23:59:59.999999-15:59 */
    };
    for (size_t i = 0; i < sizeof tz / sizeof tz[0]; i++) {
        w.len = 0;
        put64(&w, (uint64_t)tz[i].local);
        put32(&w, (uint32_t)tz[i].zone);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
        CHECK_EQ_INT(int_at(&d.col, (int64_t)i), tz[i].utc);
    }
    (void)hour;
    w.len = 0;
    put64(&w, 0);
    put32(&w, 86401);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    w.len = 0;
    put64(&w, (uint64_t)(day + 1));
    put32(&w, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode(&d, w.bytes, 8), DBP_E_PROTOCOL);
    close_plan(&d);
}

static void test_timestamps(void)
{
    static const uint32_t oids[] = {1114, 1184};
    for (int k = 0; k < 2; k++) {
        decoded d;
        open_plan(&d, oids[k], -1);
        static const int64_t pg[] = {0, 1, INT64_C(-946684800000000),
                                     INT64_C(-63082281600000000) /* 0001-01-01 */};
        for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
            wire w = {.len = 0};
            put64(&w, (uint64_t)pg[i]);
            CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
            CHECK_EQ_INT(int_at(&d.col, (int64_t)i), pg[i] + INT64_C(946684800000000));
        }
        wire w = {.len = 0};
        put64(&w, (uint64_t)INT64_MAX);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
        CHECK(strstr(d.err.message, "infinite timestamp") != NULL);
        w.len = 0;
        put64(&w, (uint64_t)INT64_MIN);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
        CHECK(strstr(d.err.message, "'-infinity'") != NULL);
        /* 294276-12-31 is a PostgreSQL timestamp beyond Arrow's int64 */
        w.len = 0;
        put64(&w, (uint64_t)(INT64_MAX - 1));
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
        CHECK_EQ_INT(decode(&d, w.bytes, 9 - 2), DBP_E_PROTOCOL);
        CHECK_EQ_INT(d.col.length, 4);
        close_plan(&d);
    }
}

static wire interval_wire(int64_t us, int32_t days, int32_t months)
{
    wire w = {.len = 0};
    put64(&w, (uint64_t)us);
    put32(&w, (uint32_t)days);
    put32(&w, (uint32_t)months);
    return w;
}

static void test_intervals(void)
{
    decoded d;
    open_plan(&d, 1186, -1);
    wire w = interval_wire(INT64_C(7384500000), 1, 0); /* 1 day 02:03:04.5 */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    w = interval_wire(0, -3, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    w = interval_wire(INT64_C(3600000000), -1, 0); /* -1 day +01:00 */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_EQ_INT(int_at(&d.col, 0), INT64_C(93784500000));
    CHECK_EQ_INT(int_at(&d.col, 1), INT64_C(-259200000000));
    CHECK_EQ_INT(int_at(&d.col, 2), INT64_C(-82800000000));

    w = interval_wire(0, 0, 1);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "month") != NULL);
    CHECK(strstr(d.err.message, "extract(epoch from c)") != NULL);
    CHECK(strstr(d.err.message, "justify_interval") != NULL);
    w = interval_wire(0, 0, -14);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    /* overflow of days * 86400e6 + us */
    w = interval_wire(INT64_MAX, 1, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    w = interval_wire(0, INT32_MAX, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    w = interval_wire(INT64_MIN, -1, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    /* PostgreSQL 17's infinite intervals */
    w = interval_wire(INT64_MAX, INT32_MAX, INT32_MAX);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "infinite interval") != NULL);
    w = interval_wire(INT64_MIN, INT32_MIN, INT32_MIN);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "infinite interval") != NULL);
    CHECK_EQ_INT(decode(&d, w.bytes, 12), DBP_E_PROTOCOL);
    CHECK_EQ_INT(d.col.length, 3);
    close_plan(&d);
}

/* ---- numeric -------------------------------------------------------------------- */

/* Decodes each text into an unconstrained column and checks every value at
 * the scale the column ends with, against the text parser. */
static void check_unconstrained(const char *const *texts, size_t n, int want_scale)
{
    decoded d;
    open_plan(&d, 1700, -1);
    for (size_t i = 0; i < n; i++) {
        wire w = numeric_wire(texts[i]);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    }
    CHECK_EQ_INT(d.col.type.scale, want_scale);
    for (size_t i = 0; i < n; i++) {
        __int128 want = 0;
        CHECK_EQ_INT(dbp_parse_decimal(texts[i], strlen(texts[i]), 38, d.col.type.scale, &want),
                     DBP_OK);
        if (decimal_at(&d.col, (int64_t)i) != want) {
            fprintf(stderr, "numeric %s decoded wrong\n", texts[i]);
            check_failures++;
        }
    }
    close_plan(&d);
}

static void test_numeric_values(void)
{
    static const char *const basics[] = {"0", "-0.0001", "1.5", "-12345", "10000", "0.5"};
    check_unconstrained(basics, 6, 4);
    static const char *const small[] = {"0.00000000000000000001", "-0.00000000000000000002"};
    check_unconstrained(small, 2, 20);
    static const char *const wide[] = {"123456789012345678901234567890.12345678"};
    check_unconstrained(wide, 1, 8);
    static const char *const extremes[] = {"99999999999999999999999999999999999999",
                                           "-99999999999999999999999999999999999999"};
    check_unconstrained(extremes, 2, 0);
    static const char *const fraction_max[] = {"0.12345678901234567890123456789012345678"};
    check_unconstrained(fraction_max, 1, 38);
    /* trailing zeros of the display scale do not widen the column: 1.50 -> 1.5 */
    static const char *const zeros[] = {"1.50000000000000000000000000000000",
                                        "1234567890123456789012345678901234567"};
    check_unconstrained(zeros, 2, 1);

    /* Scale grows as values need it; earlier values are rescaled. */
    decoded d;
    open_plan(&d, 1700, -1);
    wire w = numeric_wire("12");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_EQ_INT(d.col.type.scale, 0);
    w = numeric_wire("0.125");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_EQ_INT(d.col.type.scale, 3);
    CHECK(decimal_at(&d.col, 0) == 12000);
    CHECK(decimal_at(&d.col, 1) == 125);
    /* 10^35 at scale 3 needs 39 digits: refused, the column unchanged */
    w = numeric_wire("100000000000000000000000000000000000");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "38 digits") != NULL);
    CHECK(strstr(d.err.message, "float8") != NULL);
    /* and a value whose fraction would push the 2-digit integer 12 past 38 */
    w = numeric_wire("0.0000000000000000000000000000000000001"); /* 37 fraction digits */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "earlier values") != NULL);
    CHECK_EQ_INT(d.col.type.scale, 3);
    CHECK_EQ_INT(d.col.length, 2);
    CHECK(decimal_at(&d.col, 0) == 12000);
    /* beyond 38 fraction digits or 38 integer digits at all */
    close_plan(&d);
    open_plan(&d, 1700, -1);
    w = numeric_wire("0.00000000000000000000000000000000000000001");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    w = numeric_wire("100000000000000000000000000000000000000");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK_EQ_INT(d.col.length, 0);
    close_plan(&d);

    /* NaN and infinities */
    static const unsigned specials[] = {0xC000, 0xD000, 0xF000};
    static const char *const names[] = {"NaN", "Infinity", "-Infinity"};
    open_plan(&d, 1700, -1);
    for (int i = 0; i < 3; i++) {
        w.len = 0;
        put16(&w, 0);
        put16(&w, 0);
        put16(&w, specials[i]);
        put16(&w, 0);
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
        CHECK(strstr(d.err.message, names[i]) != NULL);
        CHECK(strstr(d.err.message, "float8") != NULL);
        CHECK(strstr(d.err.message, "\"c\"") != NULL);
    }
    close_plan(&d);

    /* numeric(p,s): values at the column's scale, never rounded */
    open_plan(&d, 1700, numeric_typmod(10, 2));
    w = numeric_wire("12345678.91");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    w = numeric_wire("-0.01");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    w = numeric_wire("7");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    w = numeric_wire("0.001"); /* more fraction digits than s */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "scale of 2") != NULL);
    w = numeric_wire("123456789.12"); /* more digits than p */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK_EQ_INT(d.col.type.scale, 2);
    CHECK(decimal_at(&d.col, 0) == (__int128)1234567891);
    CHECK(decimal_at(&d.col, 1) == -1);
    CHECK(decimal_at(&d.col, 2) == 700);
    close_plan(&d);
    open_plan(&d, 1700, numeric_typmod(5, -2));
    w = numeric_wire("12300");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK(decimal_at(&d.col, 0) == 12300);
    close_plan(&d);
    open_plan(&d, 1700, numeric_typmod(3, 5));
    w = numeric_wire("0.00123");
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK(decimal_at(&d.col, 0) == 123);
    close_plan(&d);

    /* Non-canonical but well-formed digits: zero digits at either end. */
    open_plan(&d, 1700, -1);
    w.len = 0;
    put16(&w, 4);      /* ndigits */
    put16(&w, 1);      /* weight: first digit is x 10000 */
    put16(&w, 0x4000); /* negative */
    put16(&w, 4);
    put16(&w, 0);
    put16(&w, 42);
    put16(&w, 5000);
    put16(&w, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK); /* -42.5 */
    CHECK_EQ_INT(d.col.type.scale, 1);
    CHECK(decimal_at(&d.col, 0) == -425);
    /* zero with a sign and a display scale */
    w.len = 0;
    put16(&w, 0);
    put16(&w, 0);
    put16(&w, 0x4000);
    put16(&w, 5);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK(decimal_at(&d.col, 1) == 0);
    close_plan(&d);
}

static void test_numeric_malformed(void)
{
    decoded d;
    open_plan(&d, 1700, -1);
    wire good = numeric_wire("1234.5678");
    CHECK_EQ_INT(decode_wire(&d, &good), DBP_OK);
    /* every truncation */
    for (int32_t n = 0; n < good.len; n++)
        CHECK_EQ_INT(decode(&d, good.bytes, n), DBP_E_PROTOCOL);
    /* one byte more */
    wire w = good;
    put8(&w, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    /* ndigits wrong, negative, huge */
    static const unsigned counts[] = {1, 3, 0xffff, 0x8000, 0x7fff};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        w = good;
        w.bytes[0] = (unsigned char)(counts[i] >> 8);
        w.bytes[1] = (unsigned char)counts[i];
        CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    }
    /* a digit above 9999 */
    w = good;
    w.bytes[8] = 0x27;
    w.bytes[9] = 0x10; /* 10000 */
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    /* unknown sign */
    w = good;
    w.bytes[4] = 0x12;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    /* negative and oversized display scales */
    w = good;
    w.bytes[6] = 0xff;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    w = good;
    w.bytes[6] = 0x40;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    /* extreme weights are values too big or too small, not crashes */
    w = good;
    w.bytes[2] = 0x7f;
    w.bytes[3] = 0xff;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    w = good;
    w.bytes[2] = 0x80;
    w.bytes[3] = 0x00;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK_EQ_INT(d.col.length, 1);
    close_plan(&d);
    /* the same through a constrained column */
    open_plan(&d, 1700, numeric_typmod(38, 4));
    w = good;
    w.bytes[2] = 0x7f;
    w.bytes[3] = 0xff;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    w = good;
    w.bytes[2] = 0x80;
    w.bytes[3] = 0x00;
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    close_plan(&d);
}

/* Random decimal strings of up to 38 digits round-trip exactly. */
static void test_numeric_random(void)
{
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (int round = 0; round < 200; round++) {
        char texts[20][48];
        const char *ptrs[20];
        int max_frac = 0, max_int = 0;
        int frac_budget = (int)(state % 39);
        for (int i = 0; i < 20; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            int frac = frac_budget ? (int)(state % (uint64_t)(frac_budget + 1)) : 0;
            int integer = (int)((state >> 8) % (uint64_t)(38 - frac_budget + 1));
            char *p = texts[i];
            if (state & (1u << 20))
                *p++ = '-';
            for (int k = 0; k < integer; k++)
                *p++ = (char)('0' + (state >> (k % 40)) % 10);
            if (integer == 0)
                *p++ = '0';
            if (frac) {
                *p++ = '.';
                for (int k = 0; k < frac; k++)
                    *p++ = (char)('0' + (state >> ((k + 7) % 50)) % 10);
            }
            *p = '\0';
            ptrs[i] = texts[i];
            if (frac > max_frac)
                max_frac = frac;
            if (integer > max_int)
                max_int = integer;
        }
        decoded d;
        open_plan(&d, 1700, -1);
        for (int i = 0; i < 20; i++) {
            wire w = numeric_wire(ptrs[i]);
            CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
        }
        for (int i = 0; i < 20; i++) {
            __int128 want = 0;
            CHECK_EQ_INT(dbp_parse_decimal(ptrs[i], strlen(ptrs[i]), 38, d.col.type.scale, &want),
                         DBP_OK);
            CHECK(decimal_at(&d.col, i) == want);
        }
        close_plan(&d);
    }
}

/* ---- arrays --------------------------------------------------------------------- */

static wire int4_bytes(int32_t v)
{
    wire w = {.len = 0};
    put32(&w, (uint32_t)v);
    return w;
}

static void test_arrays(void)
{
    decoded d;
    open_plan(&d, 1007, -1);
    dbp_column *items = dbp_column_list_child(&d.col);
    wire one = int4_bytes(1), two = int4_bytes(INT32_MIN);
    element elems[] = {{one.bytes, 4}, {NULL, -1}, {two.bytes, 4}};
    wire w = array_wire(23, elems, 3);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK); /* {1,NULL,-2147483648} */
    /* empty array: ndim 0 */
    wire empty = {.len = 0};
    put32(&empty, 0);
    put32(&empty, 0);
    put32(&empty, 23);
    CHECK_EQ_INT(decode_wire(&d, &empty), DBP_OK);
    CHECK_EQ_INT(decode(&d, NULL, -1), DBP_OK);
    /* one-dimensional with zero elements, and a lower bound other than 1 */
    wire zero = array_wire(23, NULL, 0);
    CHECK_EQ_INT(decode_wire(&d, &zero), DBP_OK);
    wire lb = array_wire(23, elems, 1);
    lb.bytes[19] = 0; /* '[0:0]={1}' */
    CHECK_EQ_INT(decode_wire(&d, &lb), DBP_OK);
    CHECK_EQ_INT(d.col.length, 5);
    CHECK_EQ_INT(d.col.null_count, 1);
    static const int32_t offsets[] = {0, 3, 3, 3, 3, 4};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(list_offset(&d.col, i), offsets[i]);
    CHECK_EQ_INT(items->length, 4);
    CHECK_EQ_INT(int_at(items, 0), 1);
    CHECK(!is_valid(items, 1));
    CHECK_EQ_INT(int_at(items, 2), INT32_MIN);
    CHECK_EQ_INT(int_at(items, 3), 1);

    /* multi-dimensional arrays are refused with a way out */
    wire matrix = {.len = 0};
    put32(&matrix, 2);
    put32(&matrix, 0);
    put32(&matrix, 23);
    put32(&matrix, 2);
    put32(&matrix, 1);
    put32(&matrix, 2);
    put32(&matrix, 1);
    for (int i = 1; i <= 4; i++) {
        put32(&matrix, 4);
        put32(&matrix, (uint32_t)i);
    }
    CHECK_EQ_INT(decode_wire(&d, &matrix), DBP_E_DATA);
    CHECK(strstr(d.err.message, "2-dimensional") != NULL);
    CHECK(strstr(d.err.message, "unnest") != NULL);
    CHECK(strstr(d.err.message, "array_to_json") != NULL);
    CHECK_EQ_INT(d.col.length, 5);
    close_plan(&d);

    /* strings, with an element that fails: the list is taken back whole */
    open_plan(&d, 1009, -1);
    items = dbp_column_list_child(&d.col);
    element words[] = {{"alpha", 5}, {"a string longer than twelve", 27}, {NULL, -1}, {"", 0}};
    w = array_wire(25, words, 4);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    element bad_words[] = {{"fine", 4}, {"also fine and long enough", 25}, {"\xff", 1}};
    w = array_wire(25, bad_words, 3);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK_EQ_INT(d.col.length, 1);
    CHECK_EQ_INT(items->length, 4);
    CHECK_EQ_INT(items->null_count, 1);
    w = array_wire(25, words, 1);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_EQ_INT(list_offset(&d.col, 2), 5);
    CHECK_TEXT(items, 1, "a string longer than twelve");
    CHECK_TEXT(items, 4, "alpha");
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&d.col, &a), DBP_OK);
    CHECK_EQ_INT(a.children[0]->length, 5);
    a.release(&a);
    close_plan(&d);

    /* numeric[] grows its element scale; a NaN element fails the array */
    open_plan(&d, 1231, -1);
    items = dbp_column_list_child(&d.col);
    wire n1 = numeric_wire("1.5"), n2 = numeric_wire("-0.001"), nan = {.len = 0};
    put16(&nan, 0);
    put16(&nan, 0);
    put16(&nan, 0xC000);
    put16(&nan, 0);
    element nums[] = {{n1.bytes, n1.len}, {n2.bytes, n2.len}};
    w = array_wire(1700, nums, 2);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_EQ_INT(d.col.type.element->scale, 3);
    CHECK(decimal_at(items, 0) == 1500);
    CHECK(decimal_at(items, 1) == -1);
    element with_nan[] = {{n1.bytes, n1.len}, {nan.bytes, nan.len}};
    w = array_wire(1700, with_nan, 2);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_DATA);
    CHECK(strstr(d.err.message, "NaN") != NULL);
    CHECK_EQ_INT(items->length, 2);
    CHECK_EQ_INT(d.col.length, 1);
    close_plan(&d);

    /* arrays of catalog text types */
    memset(&d, 0, sizeof d);
    CHECK_EQ_INT(pg_plan_array_column(90002, 90001, -1, 1, &d.plan, &d.err), DBP_OK);
    CHECK_EQ_INT(dbp_column_init(&d.col, "moods", d.plan.type), DBP_OK);
    element moods[] = {{"sad", 3}, {"ok", 2}};
    w = array_wire(90001, moods, 2);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_OK);
    CHECK_TEXT(dbp_column_list_child(&d.col), 1, "ok");
    close_plan(&d);
}

static void test_arrays_malformed(void)
{
    decoded d;
    open_plan(&d, 1007, -1);
    dbp_column *items = dbp_column_list_child(&d.col);
    wire one = int4_bytes(7);
    element elems[] = {{one.bytes, 4}, {NULL, -1}, {one.bytes, 4}};
    wire good = array_wire(23, elems, 3);
    CHECK_EQ_INT(decode_wire(&d, &good), DBP_OK);
    /* every truncation of a good array, and one byte too many */
    for (int32_t n = 0; n < good.len; n++)
        CHECK_EQ_INT(decode(&d, good.bytes, n), DBP_E_PROTOCOL);
    wire w = good;
    put8(&w, 0);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);

    struct {
        int at;
        uint32_t value;
    } patches[] = {
        {0, (uint32_t)-1},   /* ndim negative */
        {0, 7},              /* ndim above PostgreSQL's 6 */
        {0, 0},              /* ndim 0 with elements after it */
        {4, 2},              /* flags other than has-null */
        {8, 25},             /* element OID of another type */
        {12, (uint32_t)-1},  /* negative count */
        {12, 4},             /* count past the data */
        {12, 0x7fffffff},    /* huge count */
        {12, 2},             /* count short of the data */
        {20, (uint32_t)-2},  /* element length below -1 */
        {20, 5},             /* element length into the next one */
        {20, 0x7fffffff},    /* element length past the end */
        {28, 0x7ffffff0},    /* NULL element's length made huge */
        {32, 0x80000000},    /* INT32_MIN element length */
    };
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        w = good;
        uint32_t v = patches[i].value;
        unsigned char *p = w.bytes + patches[i].at;
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
        int rc = decode_wire(&d, &w);
        if (rc != DBP_E_PROTOCOL) {
            fprintf(stderr, "patch %zu: rc %d\n", i, rc);
            check_failures++;
        }
    }
    /* a wrong element length inside the element decoder */
    element short_elem[] = {{one.bytes, 3}};
    w = array_wire(23, short_elem, 1);
    CHECK_EQ_INT(decode_wire(&d, &w), DBP_E_PROTOCOL);
    CHECK_EQ_INT(d.col.length, 1);
    CHECK_EQ_INT(items->length, 3);

    /* a plan/column mismatch is the caller's error */
    dbp_column other;
    CHECK_EQ_INT(dbp_column_init(&other, "o", (dbp_type){.id = DBP_T_INT32}), DBP_OK);
    CHECK_EQ_INT(pg_decode_value(&d.plan, (const char *)good.bytes, good.len, &other, "o", &d.err),
                 DBP_E_MISUSE);
    dbp_column_free(&other);
    close_plan(&d);
}

/* Decoding under failing allocations: an error is DBP_E_NOMEM, the column
 * keeps exactly its earlier values, and a retry succeeds. */
static void test_alloc_failures(void)
{
    static const uint32_t oids[] = {1009, 1231, 25, 1700, 869};
    element words[] = {{"alpha", 5}, {"a string longer than twelve", 27}, {NULL, -1}};
    wire n1 = numeric_wire("1.5"), n2 = numeric_wire("-0.001");
    element nums[] = {{n1.bytes, n1.len}, {n2.bytes, n2.len}, {NULL, -1}};
    wire values[5];
    values[0] = array_wire(25, words, 3);
    values[1] = array_wire(1700, nums, 3);
    values[2].len = 0;
    put_bytes(&values[2], "a text value long enough for a data buffer", 43);
    values[3] = numeric_wire("-123.456");
    values[4].len = 0;
    put_bytes(&values[4], "\x03\x40\x00\x10\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    for (size_t t = 0; t < sizeof oids / sizeof oids[0]; t++) {
        decoded d;
        open_plan(&d, oids[t], -1);
        int failures = 0;
        for (int row = 0; row < 40; row++) {
            for (long n = 1;; n++) {
                int64_t before = d.col.length;
                int64_t items_before = d.col.child ? d.col.child->length : 0;
                dbp_alloc_fail_after(n);
                int rc = decode_wire(&d, &values[t]);
                dbp_alloc_fail_reset();
                if (rc == DBP_OK)
                    break;
                CHECK_EQ_INT(rc, DBP_E_NOMEM);
                CHECK_EQ_INT(d.err.category, DBP_E_NOMEM);
                CHECK_EQ_INT(d.col.length, before);
                if (d.col.child)
                    CHECK_EQ_INT(d.col.child->length, items_before);
                failures++;
            }
        }
        CHECK(failures > 0);
        CHECK_EQ_INT(d.col.length, 40);
        if (d.col.child)
            CHECK_EQ_INT(d.col.child->length, 120);
        struct ArrowArray a;
        CHECK_EQ_INT(dbp_column_finish(&d.col, &a), DBP_OK);
        if (oids[t] == 1231) {
            const uint8_t *v = a.children[0]->buffers[1];
            for (int i = 0; i < 120; i += 3) {
                __int128 x;
                memcpy(&x, v + 16 * i, 16);
                CHECK(x == 1500);
            }
        }
        a.release(&a);
        close_plan(&d);
    }
}

/* ---- COPY framing (pg_copy.c) ---------------------------------------------------- */

static const char copy_header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n',
                                     0,   0,   0,   0,   0,   0,   0,    0,      0};

static void test_copy_header(void)
{
    dbp_error err;
    CHECK_EQ_INT(pg_copy_header_length(copy_header, 18, &err), 0); /* needs more */
    CHECK_EQ_INT(pg_copy_header_length(copy_header, 19, &err), 19);
    char with_ext[24];
    memcpy(with_ext, copy_header, 19);
    with_ext[18] = 4; /* four extension bytes follow */
    CHECK_EQ_INT(pg_copy_header_length(with_ext, 22, &err), 0);
    CHECK_EQ_INT(pg_copy_header_length(with_ext, 23, &err), 23);
    char bad[19];
    memcpy(bad, copy_header, 19);
    bad[0] = 'X';
    CHECK_EQ_INT(pg_copy_header_length(bad, 19, &err), -1);
    CHECK_EQ_INT(err.category, DBP_E_PROTOCOL);
    memcpy(bad, copy_header, 19);
    bad[15] = (char)0x80; /* negative extension length */
    CHECK_EQ_INT(pg_copy_header_length(bad, 19, &err), -1);
}

/* Two columns, int4 and text: a tuple, an incomplete one, NULLs, the
 * trailer, and malformed framing. */
static void test_copy_tuples(void)
{
    pg_column_plan plans[2];
    dbp_error err;
    CHECK_EQ_INT(pg_plan_column(23, -1, 0, &plans[0], &err), DBP_OK);
    CHECK_EQ_INT(pg_plan_column(25, -1, 0, &plans[1], &err), DBP_OK);
    const char *names_c[] = {"i", "t"};
    char *names[2] = {(char *)names_c[0], (char *)names_c[1]};
    dbp_result *res;
    CHECK_EQ_INT(dbp_result_new(&res, 2, names_c, &err), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(dbp_result_column(res, 0), plans[0].type), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(dbp_result_column(res, 1), plans[1].type), DBP_OK);

    /* (7, 'ab'), then (NULL, NULL), then the trailer */
    const char data[] = {0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 2, 'a', 'b',
                         0, 2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    int trailer = 0;
    for (size_t cut = 0; cut < 16; cut++) /* every prefix is "need more", nothing appended */
        CHECK_EQ_INT(pg_copy_tuple(data, cut, plans, names, 2, res, &trailer, &err), 0);
    CHECK_EQ_INT(dbp_result_pending_rows(res), 0);
    CHECK_EQ_INT(pg_copy_tuple(data, sizeof data, plans, names, 2, res, &trailer, &err), 16);
    CHECK_EQ_INT(pg_copy_tuple(data + 16, 10, plans, names, 2, res, &trailer, &err), 10);
    CHECK_EQ_INT(pg_copy_tuple(data + 26, 2, plans, names, 2, res, &trailer, &err), 2);
    CHECK(trailer);
    CHECK_EQ_INT(dbp_result_column(res, 0)->length, 2);
    CHECK_EQ_INT(dbp_result_column(res, 1)->null_count, 1);

    const char three_fields[] = {0, 3};
    CHECK_EQ_INT(pg_copy_tuple(three_fields, 2, plans, names, 2, res, &trailer, &err), -1);
    CHECK_EQ_INT(err.category, DBP_E_PROTOCOL);
    const char negative[] = {0, 2, -1, -1, -1, -2};
    CHECK_EQ_INT(pg_copy_tuple(negative, sizeof negative, plans, names, 2, res, &trailer, &err),
                 -1);
    const char short_int[] = {0, 2, 0, 0, 0, 2, 0, 7, -1, -1, -1, -1};
    CHECK_EQ_INT(pg_copy_tuple(short_int, sizeof short_int, plans, names, 2, res, &trailer,
                               &err),
                 -1);
    CHECK_EQ_INT(err.category, DBP_E_PROTOCOL);
    dbp_result_free(res);
    pg_plan_free(&plans[0]);
    pg_plan_free(&plans[1]);
}

/* ---- random bytes ------------------------------------------------------------------ */

static uint64_t rng_state = 0x2545F4914F6CDD1Du;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Exported arrays must always be well formed, whatever came in. */
static void check_exported(const struct ArrowArray *a, dbp_type type)
{
    int64_t nulls = 0;
    for (int64_t i = 0; i < a->length; i++) {
        if (a->buffers[0] && !((((const uint8_t *)a->buffers[0])[i / 8] >> (i % 8)) & 1))
            nulls++;
    }
    CHECK_EQ_INT(nulls, a->null_count);
    if (type.id == DBP_T_LIST) {
        const int32_t *offsets = a->buffers[1];
        CHECK_EQ_INT(offsets[0], 0);
        for (int64_t i = 0; i < a->length; i++)
            CHECK(offsets[i] <= offsets[i + 1]);
        CHECK(offsets[a->length] <= a->children[0]->length);
        check_exported(a->children[0], *type.element);
    } else if (type.id == DBP_T_STRING || type.id == DBP_T_BINARY) {
        int64_t n_data = a->n_buffers - 3;
        const int64_t *sizes = a->buffers[a->n_buffers - 1];
        for (int64_t i = 0; i < a->length; i++) {
            const uint8_t *view = (const uint8_t *)a->buffers[1] + 16 * i;
            int32_t len, buffer, offset;
            memcpy(&len, view, 4);
            CHECK(len >= 0);
            const uint8_t *bytes = view + 4;
            if (len > 12) {
                memcpy(&buffer, view + 8, 4);
                memcpy(&offset, view + 12, 4);
                CHECK(buffer >= 0 && buffer < n_data);
                CHECK(offset >= 0 && offset + (int64_t)len <= sizes[buffer]);
                bytes = (const uint8_t *)a->buffers[2 + buffer] + offset;
            }
            if (type.id == DBP_T_STRING)
                CHECK(dbp_utf8_valid(bytes, (size_t)len));
        }
    }
}

/* For each plan kind (arrays of each included), random byte strings of
 * 0..64 bytes, and mutations of valid values: only OK, PROTOCOL or DATA may
 * come back, and the column must always export cleanly. */
static void test_random_bytes(void)
{
    static const uint32_t scalar_oids[] = {16,   21,   23,   20,   26,   700,  701,  1700, 25,
                                           3802, 18,   17,   1082, 1083, 1266, 1114, 1184, 1186,
                                           2950, 869,  650,  829,  774,  790,  600};
    enum { ROUNDS = 20000 };
    unsigned char buf[80];
    wire n1 = numeric_wire("-12.5");
    wire one = int4_bytes(3);
    long ok = 0, protocol = 0, data = 0;
    for (size_t k = 0; k < 2 * (sizeof scalar_oids / sizeof scalar_oids[0]) + 2; k++) {
        size_t n_scalars = sizeof scalar_oids / sizeof scalar_oids[0];
        uint32_t oid;
        int32_t typmod = -1;
        int is_array = 0;
        if (k < n_scalars) {
            oid = scalar_oids[k];
        } else if (k < 2 * n_scalars) {
            oid = scalar_oids[k - n_scalars];
            is_array = 1;
        } else {
            oid = 1700; /* constrained numeric, scalar and array */
            typmod = numeric_typmod(12, 4);
            is_array = k == 2 * n_scalars + 1;
        }
        decoded d;
        memset(&d, 0, sizeof d);
        int rc = is_array ? pg_plan_array_column(0, oid, typmod, 0, &d.plan, &d.err)
                          : pg_plan_column(oid, typmod, 0, &d.plan, &d.err);
        CHECK_EQ_INT(rc, DBP_OK);
        CHECK_EQ_INT(dbp_column_init(&d.col, "r", d.plan.type), DBP_OK);
        for (int round = 0; round < ROUNDS; round++) {
            int32_t len = (int32_t)(rng() % 65);
            for (int32_t i = 0; i < len; i++)
                buf[i] = (unsigned char)rng();
            if (is_array && round % 2) {
                /* a valid header and element lengths, random element bytes */
                wire w = {.len = 0};
                int count = (int)(rng() % 4);
                put32(&w, 1);
                put32(&w, (uint32_t)(rng() % 2));
                put32(&w, oid);
                put32(&w, (uint32_t)count);
                put32(&w, 1);
                for (int e = 0; e < count && w.len < 60; e++) {
                    int32_t elen = (int32_t)(rng() % 20) - 1;
                    put32(&w, (uint32_t)elen);
                    for (int32_t b = 0; b < elen; b++)
                        put8(&w, (unsigned)rng());
                }
                if (rng() % 4 == 0)
                    w.bytes[rng() % (uint64_t)w.len] ^= (unsigned char)(1u << (rng() % 8));
                len = w.len < 80 ? w.len : 80;
                if (rng() % 8 == 0)
                    len = (int32_t)(rng() % (uint64_t)(len + 1));
                memcpy(buf, w.bytes, (size_t)len);
            } else if (round % 4 == 1 && (oid == 1700 || oid == 23)) {
                /* mutate a valid value */
                const wire *base = oid == 1700 ? &n1 : &one;
                len = base->len;
                memcpy(buf, base->bytes, (size_t)len);
                buf[rng() % (uint64_t)len] ^= (unsigned char)(1u << (rng() % 8));
            }
            rc = decode(&d, buf, len);
            if (rc == DBP_OK)
                ok++;
            else if (rc == DBP_E_PROTOCOL)
                protocol++;
            else if (rc == DBP_E_DATA)
                data++;
            else {
                fprintf(stderr, "oid %u array %d: unexpected rc %d (%s)\n", oid, is_array, rc,
                        d.err.message);
                check_failures++;
            }
            /* finish now and then (and always at the end), so batches of
             * one value and of many are both exported and checked */
            if (rng() % 8 == 0 || round == ROUNDS - 1) {
                struct ArrowArray a;
                CHECK_EQ_INT(dbp_column_finish(&d.col, &a), DBP_OK);
                check_exported(&a, d.col.type);
                a.release(&a);
            }
        }
        close_plan(&d);
    }
    fprintf(stderr, "   random: %ld ok, %ld protocol, %ld data\n", ok, protocol, data);
    CHECK(ok > 0 && protocol > 0 && data > 0);
}

/* Random byte strings through the COPY framing over a mixed row (int8,
 * text, numeric, int4[]): only OK / need-more / PROTOCOL / DATA, and the
 * columns always export cleanly. */
static void test_copy_random(void)
{
    static const uint32_t oids[] = {20, 25, 1700, 1007};
    pg_column_plan plans[4];
    dbp_error err;
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(pg_plan_column(oids[i], -1, 0, &plans[i], &err), DBP_OK);
    const char *names_c[] = {"a", "b", "c", "d"};
    char *names[4] = {(char *)names_c[0], (char *)names_c[1], (char *)names_c[2],
                      (char *)names_c[3]};
    char buf[96];
    for (int round = 0; round < 20000; round++) {
        dbp_result *res;
        CHECK_EQ_INT(dbp_result_new(&res, 4, names_c, &err), DBP_OK);
        for (int i = 0; i < 4; i++)
            dbp_column_set_type(dbp_result_column(res, (size_t)i), plans[i].type);
        size_t len = (size_t)(rng() % sizeof buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)rng();
        if (len >= 2 && round % 2) { /* a plausible start: four fields */
            buf[0] = 0;
            buf[1] = 4;
        }
        int trailer = 0;
        long used = pg_copy_tuple(buf, len, plans, names, 4, res, &trailer, &err);
        CHECK(used >= -1 && used <= (long)len);
        if (used < 0)
            CHECK(err.category == DBP_E_PROTOCOL || err.category == DBP_E_DATA);
        struct ArrowArrayStream stream;
        if (dbp_result_export(res, &stream, &err) == DBP_OK)
            stream.release(&stream);
    }
    for (int i = 0; i < 4; i++)
        pg_plan_free(&plans[i]);
}

int main(void)
{
    RUN(test_plans);
    RUN(test_numeric_plans);
    RUN(test_nulls_everywhere);
    RUN(test_bool_and_integers);
    RUN(test_floats);
    RUN(test_text_types);
    RUN(test_uuid_and_addresses);
    RUN(test_money);
    RUN(test_dates);
    RUN(test_times);
    RUN(test_timestamps);
    RUN(test_intervals);
    RUN(test_numeric_values);
    RUN(test_numeric_malformed);
    RUN(test_numeric_random);
    RUN(test_arrays);
    RUN(test_arrays_malformed);
    RUN(test_alloc_failures);
    RUN(test_random_bytes);
    RUN(test_copy_header);
    RUN(test_copy_tuples);
    RUN(test_copy_random);
    return check_exit();
}
