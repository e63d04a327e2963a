/* fuzz_tds_params.c - libFuzzer harness for tds_param_bind (tds_types.c):
 * a caller's parameter values (or a frame's cells) turned into what db-lib's
 * RPC takes, above all decimal text rewritten as plain digits and converted
 * by db-lib to a DBNUMERIC.
 *
 * Input: byte 0 picks the value's kind, the rest is its text or bytes.
 * Findings: a sanitizer report; a result other than OK, DATA or MISUSE (a
 * kind SQL Server has no type for, such as arrays); a decimal
 * accepted with a precision or scale past 38, or whose DBNUMERIC does not
 * read back as exactly the value of the text; a date outside 0001..9999 or
 * a time of day outside 0..24 h accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds_types.h"
#include "textparse.h"

static const dbp_value_kind kinds[] = {
    DBP_V_DECIMAL, DBP_V_TEXT, DBP_V_BLOB, DBP_V_DOUBLE, DBP_V_INT64, DBP_V_DATE,
    DBP_V_TIME, DBP_V_TIMESTAMP, DBP_V_TIMESTAMP_TZ, DBP_V_BOOL, DBP_V_NULL, DBP_V_UUID,
    DBP_V_JSON, DBP_V_INET, DBP_V_INTERVAL, DBP_V_ARRAY,
};

static void check_decimal(const dbp_cell *cell, const tds_param *p)
{
    int precision, scale;
    if (sscanf(p->decl, "decimal(%d,%d)", &precision, &scale) != 2 || precision < 1 ||
        precision > 38 || scale < 0 || scale > precision)
        abort();
    char text[96];
    DBINT n = dbconvert(NULL, SYBNUMERIC, p->value, p->datalen, SYBCHAR, (BYTE *)text,
                        (DBINT)sizeof text - 1);
    __int128 given, sent;
    if (dbp_parse_decimal(cell->data, cell->len, 38, scale, &given) != DBP_OK)
        return; /* beyond what textparse.c reads (over 80 digits written out) */
    if (n < 0 || dbp_parse_decimal(text, (size_t)n, 38, scale, &sent) != DBP_OK || given != sent)
        abort();
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
    if (size < 1)
        return 0;
    dbp_cell cell;
    memset(&cell, 0, sizeof cell);
    cell.kind = kinds[data[0] % (sizeof kinds / sizeof kinds[0])];
    /* an exact copy, so that reading past the value is an ASan report */
    char *bytes = malloc(size - 1 ? size - 1 : 1);
    memcpy(bytes, data + 1, size - 1);
    cell.data = bytes;
    cell.len = size - 1;
    int64_t number = 0;
    memcpy(&number, bytes, cell.len < 8 ? cell.len : 8);
    cell.i = number;
    memcpy(&cell.d, &number, 8);
    tds_param p;
    dbp_error err;
    int rc = tds_param_bind(NULL, &cell, 0, 1, &p, &err);
    if (rc == DBP_OK && cell.kind == DBP_V_DECIMAL) {
        check_decimal(&cell, &p);
    } else if (rc == DBP_OK && (cell.kind == DBP_V_DATE || cell.kind == DBP_V_TIME ||
                                cell.kind == DBP_V_TIMESTAMP || cell.kind == DBP_V_TIMESTAMP_TZ)) {
        if (p.store.dt.date < -693595 || p.store.dt.date > 2958463 ||
            p.store.dt.time >= 864000000000ULL)
            abort();
    } else if (rc != DBP_OK && rc != DBP_E_DATA && rc != DBP_E_MISUSE) { /* MISUSE: no type */
        abort();
    }
    free(bytes);
    return 0;
}
