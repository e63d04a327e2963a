/* test_tds_types.c - SQL Server result values as db-lib hands them over
 * (tds_types.c): the ends of each date/time type's range decode exactly,
 * and values past them, which no server sends, are refused before their
 * arithmetic could overflow (found by tests/fuzz/fuzz_tds_types.c). */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "column.h"
#include "tds_types.h"
#include "textparse.h"

#define DAY_US INT64_C(86400000000)
#define TICKS_PER_DAY 864000000000ULL

/* Decodes one value of server type `dbtype`; *out gets the value when OK. */
static int decode(int dbtype, const void *value, DBINT len, int64_t *out)
{
    tds_column_plan plan;
    dbp_error err;
    DBTYPEINFO info = {.precision = 10, .scale = 2};
    CHECK_EQ_INT(tds_plan_column(dbtype, &info, "c", &plan, &err), DBP_OK);
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "c", plan.type), DBP_OK);
    int rc = tds_decode_value(NULL, &plan, value, len, &col, "c", &err);
    CHECK_EQ_INT(col.length, rc == DBP_OK ? 1 : 0);
    if (rc == DBP_OK && dbp_type_width(col.type.id) == 8)
        memcpy(out, col.values.data, 8);
    else if (rc == DBP_OK && dbp_type_width(col.type.id) == 4) {
        int32_t v;
        memcpy(&v, col.values.data, 4);
        *out = v;
    }
    dbp_column_free(&col);
    return rc;
}

static int decode_all(int dbtype, DBINT date, DBUBIGINT time, int64_t *out)
{
    DBDATETIMEALL v = {.time = time, .date = date};
    return decode(dbtype, &v, (DBINT)sizeof v, out);
}

static void test_datetime_range(void)
{
    int64_t us = 0;
    DBDATETIME last = {.dtdays = 2958463, .dttime = 300 * 86400 - 1}; /* 9999-12-31 23:59:59.997 */
    CHECK_EQ_INT(decode(SYBDATETIME, &last, sizeof last, &us), DBP_OK);
    CHECK_EQ_INT(us, (2958463 - 25567) * DAY_US + DAY_US - 3333);
    DBDATETIME first = {.dtdays = -53690, .dttime = 0}; /* 1753-01-01 */
    CHECK_EQ_INT(decode(SYBDATETIME, &first, sizeof first, &us), DBP_OK);
    CHECK_EQ_INT(us, (-53690 - 25567) * DAY_US);
    DBDATETIME far = {.dtdays = INT32_MAX, .dttime = 0};
    CHECK_EQ_INT(decode(SYBDATETIME, &far, sizeof far, &us), DBP_E_PROTOCOL);
    DBDATETIME before = {.dtdays = INT32_MIN, .dttime = 0};
    CHECK_EQ_INT(decode(SYBDATETIME, &before, sizeof before, &us), DBP_E_PROTOCOL);
    DBDATETIME late = {.dtdays = 0, .dttime = 300 * 86400};
    CHECK_EQ_INT(decode(SYBDATETIME, &late, sizeof late, &us), DBP_E_PROTOCOL);
    DBDATETIME negative = {.dtdays = 0, .dttime = -1};
    CHECK_EQ_INT(decode(SYBDATETIME, &negative, sizeof negative, &us), DBP_E_PROTOCOL);
}

static void test_smalldatetime_range(void)
{
    int64_t us = 0;
    DBDATETIME4 last = {.days = 65535, .minutes = 1439};
    CHECK_EQ_INT(decode(SYBDATETIME4, &last, sizeof last, &us), DBP_OK);
    CHECK_EQ_INT(us, (65535 - 25567) * DAY_US + 1439 * INT64_C(60000000));
    DBDATETIME4 late = {.days = 0, .minutes = 1440};
    CHECK_EQ_INT(decode(SYBDATETIME4, &late, sizeof late, &us), DBP_E_PROTOCOL);
}

static void test_datetime2_range(void)
{
    int64_t us = 0;
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, 2958463, TICKS_PER_DAY - 10, &us), DBP_OK);
    CHECK_EQ_INT(us, (2958463 - 25567) * DAY_US + DAY_US - 1);
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, -693595, 0, &us), DBP_OK); /* 0001-01-01 */
    CHECK_EQ_INT(us, (-693595 - 25567) * DAY_US);
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, INT32_MAX, 0, &us), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, INT32_MIN, 0, &us), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, 2958464, 0, &us), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, 0, TICKS_PER_DAY, &us), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode_all(SYBMSDATETIME2, 0, UINT64_MAX - 5, &us), DBP_E_PROTOCOL);
    /* 0001-01-01 00:00 +14:00 is the day before in UTC */
    CHECK_EQ_INT(decode_all(SYBMSDATETIMEOFFSET, -693596, 36000 * 10000000ULL, &us), DBP_OK);
    CHECK_EQ_INT(decode_all(SYBMSDATETIMEOFFSET, -693597, 0, &us), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode_all(SYBMSDATE, 2958463, 0, &us), DBP_OK);
    CHECK_EQ_INT(us, 2958463 - 25567);
    CHECK_EQ_INT(decode_all(SYBMSDATE, 2958464, 0, &us), DBP_E_PROTOCOL);
    CHECK_EQ_INT(decode_all(SYBMSTIME, 0, TICKS_PER_DAY - 10, &us), DBP_OK);
    CHECK_EQ_INT(us, DAY_US - 1);
    CHECK_EQ_INT(decode_all(SYBMSTIME, 0, TICKS_PER_DAY, &us), DBP_E_PROTOCOL);
}

static void test_decimal_size(void)
{
    int64_t unused = 0;
    BYTE short_value[4] = {10, 2, 0, 1};
    CHECK_EQ_INT(decode(SYBDECIMAL, short_value, sizeof short_value, &unused), DBP_E_PROTOCOL);
}

/* Parameters: a date or time the caller's C API may hand over (any int64)
 * outside SQL Server's range is refused, not cut to 32 bits or sent as a
 * time past midnight. */
static void test_param_date_time_range(void)
{
    tds_param p;
    dbp_error err;
    dbp_cell cell = {.kind = DBP_V_DATE, .i = 2932896}; /* 9999-12-31 */
    CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_OK);
    CHECK_EQ_INT(p.store.dt.date, 2958463);
    cell.i = (INT64_C(1) << 32) + 100; /* 100 once cut to 32 bits */
    CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_E_DATA);
    cell.i = INT64_MAX;
    CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_E_DATA);
    cell = (dbp_cell){.kind = DBP_V_TIME, .i = DAY_US - 1};
    CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_OK);
    cell.i = DAY_US;
    CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_E_DATA);
    cell.i = -1;
    CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_E_DATA);
}

/* Zero written with an exponent past decimal(38)'s scale (Python's
 * Decimal("0E-50")) is 0; finding its digits used to read before them. */
static void test_param_zero_with_exponent(void)
{
    static const char *const zeros[] = {"0E-50", "-00e-60", "0.000e-40"};
    for (size_t k = 0; k < sizeof zeros / sizeof *zeros; k++) {
        tds_param p;
        dbp_error err;
        dbp_cell cell = {.kind = DBP_V_DECIMAL, .data = zeros[k], .len = strlen(zeros[k])};
        CHECK_EQ_INT(tds_param_bind(NULL, &cell, 0, 1, &p, &err), DBP_OK);
        CHECK(strcmp(p.decl, "decimal(1,0)") == 0);
        char text[64];
        DBINT n = dbconvert(NULL, SYBNUMERIC, p.value, p.datalen, SYBCHAR, (BYTE *)text,
                            (DBINT)sizeof text - 1);
        CHECK(n > 0);
        __int128 v = 1;
        CHECK_EQ_INT(dbp_parse_decimal(text, (size_t)n, 38, 0, &v), DBP_OK);
        CHECK(v == 0);
    }
}

int main(void)
{
    CHECK(dbinit() != FAIL);
    RUN(test_datetime_range);
    RUN(test_smalldatetime_range);
    RUN(test_datetime2_range);
    RUN(test_decimal_size);
    RUN(test_param_date_time_range);
    RUN(test_param_zero_with_exponent);
    dbexit();
    return check_exit();
}
