/* fuzz_pg_types.c - libFuzzer harness for the PostgreSQL binary decoders.
 *
 * Input: the first byte picks a plan (a type, or an array of it), the rest
 * is one value in PostgreSQL's binary format. The value is decoded twice
 * into the same column (so state carried between values, like a growing
 * numeric scale, is exercised), then the column is exported and the Arrow
 * array checked. Any result other than OK, PROTOCOL or DATA, a broken
 * array, or a sanitizer report is a finding. Built and run by `make fuzz`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "column.h"
#include "fuzz_check.h"
#include "pg_types.h"

/* OID and typmod of each plan kind; kinds past the table are arrays of the
 * same entries. */
static const struct {
    uint32_t oid;
    int32_t typmod;
    int text_like;
} kinds[] = {
    {16, -1, 0},   {21, -1, 0},   {23, -1, 0},   {20, -1, 0},   {26, -1, 0},
    {700, -1, 0},  {701, -1, 0},  {1700, -1, 0}, {25, -1, 0},   {3802, -1, 0},
    {18, -1, 0},   {17, -1, 0},   {1082, -1, 0}, {1083, -1, 0}, {1266, -1, 0},
    {1114, -1, 0}, {1184, -1, 0}, {1186, -1, 0}, {2950, -1, 0}, {869, -1, 0},
    {650, -1, 0},  {829, -1, 0},  {774, -1, 0},  {790, -1, 0},  {600, -1, 0},
    {90001, -1, 1},
    /* numeric(12,4), numeric(38,38), numeric(5,-2) as PostgreSQL 15 encodes them */
    {1700, (12 << 16 | 4) + 4, 0},
    {1700, (38 << 16 | 38) + 4, 0},
    {1700, (5 << 16 | (-2 & 0x7ff)) + 4, 0},
};

#define N_KINDS (sizeof kinds / sizeof kinds[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > INT32_MAX)
        return 0;
    size_t kind = data[0] % (2 * N_KINDS);
    int is_array = kind >= N_KINDS;
    kind %= N_KINDS;
    pg_column_plan plan;
    dbp_error err;
    int rc = is_array ? pg_plan_array_column(0, kinds[kind].oid, kinds[kind].typmod,
                                             kinds[kind].text_like, &plan, &err)
                      : pg_plan_column(kinds[kind].oid, kinds[kind].typmod, kinds[kind].text_like,
                                       &plan, &err);
    if (rc != DBP_OK)
        abort();
    dbp_column col;
    if (dbp_column_init(&col, "f", plan.type) != DBP_OK)
        abort();
    for (int pass = 0; pass < 2; pass++) {
        rc = pg_decode_value(&plan, (const char *)data + 1, (int32_t)(size - 1), &col, "f", &err);
        if (rc != DBP_OK && rc != DBP_E_PROTOCOL && rc != DBP_E_DATA)
            abort();
    }
    fuzz_check_column(&col);
    dbp_column_free(&col);
    pg_plan_free(&plan);
    return 0;
}
