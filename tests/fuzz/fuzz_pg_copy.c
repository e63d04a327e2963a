/* fuzz_pg_copy.c - libFuzzer harness for the COPY ... (FORMAT binary)
 * framing (pg_copy.c) over a mixed row, as the server's bytes reach it.
 *
 * The input is a COPY stream: a header, then tuples until the data ends, a
 * tuple is incomplete, or an error. Results other than OK, "need more",
 * PROTOCOL or DATA, or a sanitizer report are findings. Built and run by
 * `make fuzz`. */
#include <stdint.h>
#include <stdlib.h>

#include "pg_copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t oids[] = {20, 25, 1700, 1007, 1184};
    enum { N = sizeof oids / sizeof oids[0] };
    static pg_column_plan plans[N];
    static int planned;
    dbp_error err;
    if (!planned) {
        for (int i = 0; i < N; i++)
            if (pg_plan_column(oids[i], -1, 0, &plans[i], &err) != DBP_OK)
                abort();
        planned = 1;
    }
    const char *names_c[N] = {"a", "b", "c", "d", "e"};
    char *names[N] = {(char *)names_c[0], (char *)names_c[1], (char *)names_c[2],
                      (char *)names_c[3], (char *)names_c[4]};
    dbp_result *res;
    if (dbp_result_new(&res, N, names_c, &err) != DBP_OK)
        return 0;
    for (int i = 0; i < N; i++)
        dbp_column_set_type(dbp_result_column(res, (size_t)i), plans[i].type);
    const char *p = (const char *)data;
    long used = pg_copy_header_length(p, size, &err);
    if (used > 0) {
        size_t pos = (size_t)used;
        int trailer = 0;
        while (!trailer) {
            used = pg_copy_tuple(p + pos, size - pos, plans, names, N, res, &trailer, &err);
            if (used <= 0)
                break;
            pos += (size_t)used;
        }
    }
    if (used < 0 && err.category != DBP_E_PROTOCOL && err.category != DBP_E_DATA)
        abort();
    struct ArrowArrayStream stream;
    if (dbp_result_export(res, &stream, &err) == DBP_OK)
        stream.release(&stream);
    return 0;
}
