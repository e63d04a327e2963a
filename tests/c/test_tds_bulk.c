/* test_tds_bulk.c - write_frame's conversion of a frame's dates to SQL
 * Server columns (put_value in tds_bulk.c, included to reach it): a date32
 * far past every column's range is refused as such. Its microseconds used
 * to overflow int64 (undefined behaviour, an abort under UBSan; found by
 * tests/fuzz/fuzz_tds_bulk.c). No server: a converted value goes on to
 * bcp_colptr with no DBPROCESS, which refuses it without a message. */
#include "../../src/drivers/tds/tds_bulk.c"

#include "check.h"

/* Converts a date cell of `days` for a column of `dbtype`. */
static int put_date(int dbtype, int64_t days, frame_col *col, dbp_error *err)
{
    static table_col target = {.name = "d", .precision = 0, .scale = 6};
    target.dbtype = dbtype;
    tds_conn conn;
    memset(&conn, 0, sizeof conn);
    memset(col, 0, sizeof *col);
    col->target = &target;
    col->ordinal = 1;
    bulk_state b = {.c = &conn, .table = "t", .tcols = &target, .n_tcols = 1, .cols = col,
                    .n_cols = 1};
    dbp_cell cell = {.kind = DBP_V_DATE, .i = days};
    return put_value(&b, col, &cell, err);
}

static void test_date32_far_past_every_range(void)
{
    static const int types[] = {SYBMSDATE, SYBMSDATETIME2, SYBDATETIME, SYBDATETIME4};
    /* 2,137,972,720 days wrapped round to 9999-12-31 */
    static const int64_t far[] = {2137972720, INT32_MAX, INT32_MIN, INT64_C(1) << 40};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        for (size_t k = 0; k < sizeof far / sizeof *far; k++) {
            frame_col col;
            dbp_error err;
            CHECK_EQ_INT(put_date(types[t], far[k], &col, &err), DBP_E_DATA);
            CHECK(strstr(err.message, "outside") != NULL);
        }
    }
}

/* The first and last days each column holds still convert (and then go on
 * to bcp_colptr, which refuses them for want of a DBPROCESS, not as data). */
static void test_range_ends(void)
{
    frame_col col;
    dbp_error err;
    CHECK(put_date(SYBMSDATETIME2, 2932896, &col, &err) != DBP_E_DATA); /* 9999-12-31 */
    CHECK_EQ_INT(col.v.dta.date, 2958463);
    CHECK_EQ_INT(put_date(SYBMSDATETIME2, 2932897, &col, &err), DBP_E_DATA);
    CHECK(put_date(SYBDATETIME, -79257, &col, &err) != DBP_E_DATA); /* 1753-01-01 */
    CHECK_EQ_INT(col.v.dt.dtdays, -53690);
    CHECK_EQ_INT(put_date(SYBDATETIME, -79258, &col, &err), DBP_E_DATA);
}

int main(void)
{
    CHECK_EQ_INT(tds_dblib_init(), 0);
    RUN(test_date32_far_past_every_range);
    RUN(test_range_ends);
    return check_exit();
}
