/* fuzz_tds_types.c - libFuzzer harness for the SQL Server result decoders
 * (tds_types.c): values as FreeTDS db-lib hands them over (dbdata and
 * dbdatlen), for every server type the driver plans.
 *
 * Input: byte 0 picks the server type, byte 1 how the value arrives, the
 * rest is the value:
 * - bit 0 of byte 1 clear: the way db-lib hands it over. Fixed-size types
 *   get their bytes at db-lib's size (short input is padded with zeros);
 *   decimal/numeric get the DBNUMERIC db-lib builds from the wire: the
 *   column's precision and scale (bytes 2 and 3 pick them) and sign and
 *   magnitude bytes from the input.
 * - bit 0 set: the raw rest at its own length, as if db-lib got a size
 *   wrong; the decoder must refuse any size that is not its type's.
 * - bit 1 set: SQL NULL (no data).
 * Each value is decoded twice into one column, then the column is exported
 * and checked. Findings: a sanitizer report, a result other than OK, DATA or
 * PROTOCOL, a failed decode that changed the column, an accepted value
 * outside SQL Server's range for its type, or a broken Arrow array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "column.h"
#include "fuzz_check.h"
#include "tds_types.h"

#define US_PER_DAY INT64_C(86400000000)
/* 0001-01-01 and 9999-12-31 in days since 1970 */
#define FIRST_DAY (-719162)
#define LAST_DAY 2932896

static const int server_types[] = {
    SYBINT1,           SYBINT2,          SYBINT4,         SYBINT8,
    SYBBIT,            SYBBITN,          SYBREAL,         SYBFLT8,
    SYBDECIMAL,        SYBNUMERIC,       SYBMONEY,        SYBMONEY4,
    SYBMSDATE,         SYBMSTIME,        SYBDATETIME,     SYBDATETIME4,
    SYBMSDATETIME2,    SYBMSDATETIMEOFFSET, SYBUNIQUE,    SYBCHAR,
    SYBVARCHAR,        SYBNVARCHAR,      SYBTEXT,         SYBNTEXT,
    SYBMSXML,          TDS_XSYBCHAR,     TDS_XSYBVARCHAR, TDS_XSYBNCHAR,
    TDS_XSYBNVARCHAR,  SYBBINARY,        SYBVARBINARY,    SYBIMAGE,
    SYBMSUDT,          TDS_XSYBBINARY,   TDS_XSYBVARBINARY, SYBVARIANT,
    SYBINTN,           /* a type the driver does not plan */
};
#define N_TYPES (sizeof server_types / sizeof server_types[0])

/* db-lib's size of a fixed-size value of `decoder`; 0 for variable sizes. */
static size_t fixed_size(tds_decoder decoder)
{
    switch (decoder) {
    case TDSD_UINT8:
    case TDSD_BIT:
        return 1;
    case TDSD_INT16:
        return 2;
    case TDSD_INT32:
    case TDSD_REAL:
    case TDSD_MONEY4:
    case TDSD_DATETIME4:
        return 4;
    case TDSD_INT64:
    case TDSD_FLOAT:
    case TDSD_MONEY:
    case TDSD_DATETIME:
        return 8;
    case TDSD_DATE:
    case TDSD_TIME:
    case TDSD_DATETIME2:
    case TDSD_DATETIMEOFFSET:
        return sizeof(DBDATETIMEALL);
    case TDSD_GUID:
        return 16;
    case TDSD_DECIMAL:
        return sizeof(DBNUMERIC);
    default:
        return 0;
    }
}

/* The last value the column holds as an integer (dates, times, timestamps). */
static int64_t last_int(const dbp_column *col)
{
    size_t width = dbp_type_width(col->type.id);
    int64_t v = 0;
    if (width == 4) {
        int32_t v32;
        memcpy(&v32, col->values.data + (size_t)(col->length - 1) * 4, 4);
        v = v32;
    } else {
        memcpy(&v, col->values.data + (size_t)(col->length - 1) * 8, 8);
    }
    return v;
}

/* Aborts when an accepted value lies outside its SQL Server type's range. */
static void check_range(const tds_column_plan *plan, const dbp_column *col)
{
    int64_t v = last_int(col);
    switch (plan->decoder) {
    case TDSD_DATE:
        if (v < FIRST_DAY || v > LAST_DAY)
            abort();
        break;
    case TDSD_TIME:
        if (v < 0 || v >= US_PER_DAY)
            abort();
        break;
    case TDSD_DATETIME:
    case TDSD_DATETIME4:
    case TDSD_DATETIME2:
        if (v < FIRST_DAY * US_PER_DAY || v >= (LAST_DAY + 1) * US_PER_DAY)
            abort();
        break;
    case TDSD_DATETIMEOFFSET: /* the UTC instant of a local time with an offset */
        if (v < (FIRST_DAY - 1) * US_PER_DAY || v >= (LAST_DAY + 2) * US_PER_DAY)
            abort();
        break;
    default:
        break;
    }
}

static void decode(const tds_column_plan *plan, const BYTE *value, DBINT len, dbp_column *col)
{
    dbp_error err;
    int64_t before = col->length;
    int rc = tds_decode_value(NULL, plan, value, len, col, "c", &err);
    if (rc == DBP_OK) {
        if (col->length != before + 1)
            abort();
        if (value && plan->type.id != DBP_T_STRING && plan->type.id != DBP_T_BINARY &&
            plan->type.id != DBP_T_BOOL && plan->type.id != DBP_T_DECIMAL128)
            check_range(plan, col);
    } else if ((rc != DBP_E_DATA && rc != DBP_E_PROTOCOL) || col->length != before) {
        abort();
    }
}

static int handler_err(DBPROCESS *proc, int severity, int dberr, int oserr, char *dberrstr,
                       char *oserrstr)
{
    (void)proc, (void)severity, (void)dberr, (void)oserr, (void)dberrstr, (void)oserrstr;
    return INT_CANCEL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (dbinit() == FAIL)
            abort();
        dberrhandle(handler_err);
        ready = 1;
    }
    if (size < 4)
        return 0;
    int dbtype = server_types[data[0] % N_TYPES];
    int raw = data[1] & 1, null = data[1] & 2;
    DBTYPEINFO info = {.precision = data[2] % 40, .scale = data[3] % 40};
    tds_column_plan plan;
    dbp_error err;
    int rc = tds_plan_column(dbtype, &info, "c", &plan, &err);
    if (rc != DBP_OK) {
        if (rc != DBP_E_DATA && rc != DBP_E_PROTOCOL)
            abort();
        return 0;
    }
    const uint8_t *rest = data + 4;
    size_t n = size - 4;
    size_t fixed = fixed_size(plan.decoder);
    size_t len = raw || !fixed ? n : fixed;
    BYTE *value = malloc(len ? len : 1);
    if (!value)
        return 0;
    if (!raw && plan.decoder == TDSD_DECIMAL) {
        DBNUMERIC num = {.precision = (BYTE)info.precision, .scale = (BYTE)info.scale};
        memcpy(num.array, rest, n < sizeof num.array ? n : sizeof num.array);
        num.array[0] &= 1; /* the sign: db-lib stores 0 or 1 */
        memcpy(value, &num, sizeof num);
    } else {
        memset(value, 0, len);
        memcpy(value, rest, n < len ? n : len);
    }
    dbp_column col;
    if (dbp_column_init(&col, "c", plan.type) != DBP_OK)
        abort();
    for (int pass = 0; pass < 2; pass++)
        decode(&plan, null ? NULL : value, (DBINT)len, &col);
    fuzz_check_column(&col);
    dbp_column_free(&col);
    free(value);
    return 0;
}
