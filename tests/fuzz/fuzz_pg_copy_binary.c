/* fuzz_pg_copy_binary.c - libFuzzer harness for write_frame's COPY binary
 * encoders (pg_copy_binary.c): a frame's cell, as arrow_input.c hands it
 * over, into the wire form of a PostgreSQL column type, read back by the
 * driver's own binary decoders (pg_types.c) as the server would read it.
 *
 * Input: byte 0 picks the value's kind, byte 1 the column type, the rest
 * are the cell's bytes. Cells keep arrow_input.c's promises: decimals are
 * plain digit text (the input's bytes mapped to digits, a sign and a
 * point), times lie within a day, dates within date64's reach. Findings:
 * a sanitizer report, a result other than OK or DATA, a field whose length
 * word does not match its bytes, or a field the decoder finds malformed
 * (PROTOCOL). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "column.h"
#include "pg_internal.h"
#include "pg_types.h"
#include "textbuf.h"

static const dbp_value_kind kinds[] = {
    DBP_V_NULL, DBP_V_BOOL,      DBP_V_INT64,        DBP_V_DOUBLE, DBP_V_TEXT,
    DBP_V_BLOB, DBP_V_DATE,      DBP_V_TIME,         DBP_V_TIMESTAMP, DBP_V_TIMESTAMP_TZ,
    DBP_V_DECIMAL, DBP_V_UUID,   DBP_V_JSON,         DBP_V_INTERVAL,
};
static const uint32_t oids[] = {16,  17,   19,   20,   21,   23,   25,   114,  700,
                                701, 1042, 1043, 1082, 1083, 1114, 1184, 1186, 1700,
                                2950, 3802};

/* Plain decimal text from the input's bytes: [-]digits[.digits]. */
static size_t decimal_text(const uint8_t *b, size_t n, char *out)
{
    size_t k = 0;
    if (n && (b[0] & 1))
        out[k++] = '-';
    size_t point = n > 1 ? b[1] % n : n; /* where the point goes, if anywhere */
    for (size_t i = 2; i < n; i++) {
        if (i == point && k && out[k - 1] != '-')
            out[k++] = '.';
        out[k++] = (char)('0' + b[i] % 10);
    }
    if (k == 0 || out[k - 1] == '-')
        out[k++] = '0';
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    dbp_cell cell;
    memset(&cell, 0, sizeof cell);
    cell.kind = kinds[data[0] % (sizeof kinds / sizeof kinds[0])];
    uint32_t oid = oids[data[1] % (sizeof oids / sizeof oids[0])];
    pg_binary_encoder enc = pg_binary_encoder_for(cell.kind, oid);
    if (enc == PGB_NONE)
        return 0;
    const uint8_t *rest = data + 2;
    size_t n = size - 2;
    /* an exact copy, so that reading past the value is an ASan report */
    char *bytes = malloc(n + 2);
    if (cell.kind == DBP_V_DECIMAL) {
        n = decimal_text(rest, n, bytes);
    } else {
        memcpy(bytes, rest, n);
    }
    char *exact = malloc(n ? n : 1);
    memcpy(exact, bytes, n);
    free(bytes);
    cell.data = exact;
    cell.len = n;
    int64_t number = 0;
    memcpy(&number, exact, n < 8 ? n : 8);
    cell.i = number;
    memcpy(&cell.d, &number, 8);
    if (cell.kind == DBP_V_TIME) /* times of day only */
        cell.i = (int64_t)((uint64_t)number % 86400000000ULL);
    else if (cell.kind == DBP_V_DATE) /* date64's milliseconds in days, at most */
        cell.i = number % INT64_C(106751991167);

    dbp_textbuf t = {0};
    dbp_error err;
    int rc = pg_binary_put(&t, enc, &cell, "c", &err);
    if (rc != DBP_OK && rc != DBP_E_DATA)
        abort();
    if (rc == DBP_OK && !t.failed && enc != PGB_NULLS) {
        uint32_t be;
        if (t.len < 4)
            abort();
        memcpy(&be, t.data, 4);
        int32_t len = (int32_t)__builtin_bswap32(be);
        if (len != (int32_t)(t.len - 4))
            abort();
        pg_column_plan plan;
        if (pg_plan_column(oid, -1, 0, &plan, &err) != DBP_OK)
            abort();
        dbp_column col;
        if (dbp_column_init(&col, "c", plan.type) != DBP_OK)
            abort();
        rc = pg_decode_value(&plan, t.data + 4, len, &col, "c", &err);
        if (rc != DBP_OK && rc != DBP_E_DATA)
            abort();
        dbp_column_free(&col);
        pg_plan_free(&plan);
    }
    dbp_textbuf_free(&t);
    free(exact);
    return 0;
}
