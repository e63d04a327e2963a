/* fuzz_tds_bulk.c - libFuzzer harness for write_frame's conversions to SQL
 * Server columns (put_value in tds_bulk.c): a frame's cell, as
 * arrow_input.c hands it over, into the db-lib form of a target column
 * (exact integers and floats, decimal and money digits, date/time ranges and
 * scales, GUID text, UTF-8 to UTF-16).
 *
 * tds_bulk.c is included to reach its static functions. There is no server:
 * the DBPROCESS is NULL, so a converted value ends at bcp_colptr, which
 * refuses it (an error without a message, as a dead link would give).
 * Input: byte 0 picks the target column's type, bytes 1-2 its precision
 * and scale, byte 3 the cell's kind, the rest the cell's bytes (text, or an
 * int64/double; a time is taken modulo a day, as arrow_input.c refuses
 * any other). Findings: a sanitizer report, a converted value outside
 * its column type's range, or a GUID whose bytes do not format back to the
 * text. */
#include "../../src/drivers/tds/tds_bulk.c"

#include <ctype.h>
#include <stdlib.h>

static const int target_types[] = {
    SYBINT1,   SYBINT2,   SYBINT4,     SYBINT8,        SYBBIT,         SYBREAL,
    SYBFLT8,   SYBDECIMAL, SYBNUMERIC, SYBMONEY,       SYBMONEY4,      SYBMSDATE,
    SYBMSTIME, SYBDATETIME, SYBDATETIME4, SYBMSDATETIME2, SYBMSDATETIMEOFFSET, SYBUNIQUE,
    SYBCHAR,   SYBNTEXT,  SYBBINARY,   SYBIMAGE,       SYBVARIANT,
};
static const dbp_value_kind kinds[] = {
    DBP_V_NULL, DBP_V_BOOL, DBP_V_INT64, DBP_V_DOUBLE, DBP_V_TEXT, DBP_V_BLOB,
    DBP_V_DATE, DBP_V_TIME, DBP_V_TIMESTAMP, DBP_V_TIMESTAMP_TZ, DBP_V_DECIMAL, DBP_V_INTERVAL,
};

/* The GUID text of db-lib's 16 bytes, as tds_types.c formats results. */
static void check_guid(const BYTE g[16], const dbp_cell *cell)
{
    uint32_t d1;
    uint16_t d2, d3;
    memcpy(&d1, g, 4);
    memcpy(&d2, g + 4, 2);
    memcpy(&d3, g + 6, 2);
    char text[40];
    snprintf(text, sizeof text, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", (unsigned)d1,
             (unsigned)d2, (unsigned)d3, g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    const char *s = cell->data + (cell->len == 38);
    for (size_t i = 0; i < 36; i++)
        if (tolower((unsigned char)s[i]) != text[i])
            abort();
}

static void check_value(const table_col *t, const frame_col *f, const dbp_cell *cell)
{
    switch (t->dbtype) {
    case SYBMSDATE:
    case SYBMSTIME:
    case SYBMSDATETIME2:
    case SYBMSDATETIMEOFFSET:
        if (f->v.dta.date < -693595 || f->v.dta.date > 2958463 ||
            f->v.dta.time >= 864000000000ULL)
            abort();
        break;
    case SYBDATETIME:
        if (f->v.dt.dtdays < -53690 || f->v.dt.dtdays > 2958463 || f->v.dt.dttime < 0 ||
            f->v.dt.dttime >= 300 * 86400)
            abort();
        break;
    case SYBDATETIME4:
        if (f->v.dt4.minutes >= 1440)
            abort();
        break;
    case SYBUNIQUE:
        check_guid(f->v.guid, cell);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (tds_dblib_init() != 0)
            abort();
        ready = 1;
    }
    if (size < 4)
        return 0;
    table_col target = {.dbtype = target_types[data[0] % (sizeof target_types / sizeof(int))],
                        .precision = 1 + data[1] % 38};
    target.scale = data[2] % (target.precision + 1);
    strcpy(target.name, "c");
    dbp_cell cell;
    memset(&cell, 0, sizeof cell);
    cell.kind = kinds[data[3] % (sizeof kinds / sizeof kinds[0])];
    /* an exact copy, so that reading past the value is an ASan report */
    size_t n = size - 4;
    char *bytes = malloc(n ? n : 1);
    memcpy(bytes, data + 4, n);
    cell.data = bytes;
    cell.len = n;
    int64_t number = 0;
    memcpy(&number, bytes, n < 8 ? n : 8);
    cell.i = number;
    memcpy(&cell.d, &number, 8);
    if (cell.kind == DBP_V_TIME) /* arrow_input.c hands over times of day only */
        cell.i = (int64_t)((uint64_t)number % 86400000000ULL);

    tds_conn conn;
    memset(&conn, 0, sizeof conn);
    frame_col col;
    memset(&col, 0, sizeof col);
    col.target = &target;
    col.ordinal = 1;
    bulk_state b = {.c = &conn, .table = "t", .tcols = &target, .n_tcols = 1, .cols = &col,
                    .n_cols = 1};
    dbp_error err;
    int rc = put_value(&b, &col, &cell, &err);
    /* db-lib refused the converted value for want of a server (no message:
     * PROTOCOL); anything else must be the value's own fault */
    int converted = rc == DBP_E_PROTOCOL || rc == DBP_E_NETWORK;
    if (converted && cell.kind != DBP_V_NULL)
        check_value(&target, &col, &cell);
    else if (!converted && rc != DBP_E_DATA)
        abort();
    dbp_textbuf_free(&col.wide);
    free(bytes);
    return 0;
}
