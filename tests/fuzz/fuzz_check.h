/* fuzz_check.h - checks the harnesses share: an Arrow array a column
 * builder exported must be well-formed, whatever the decoder was fed. */
#ifndef DBP_FUZZ_CHECK_H
#define DBP_FUZZ_CHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "column.h"
#include "textparse.h"

static int fuzz_bit_set(const void *bits, int64_t i)
{
    return !bits || ((((const uint8_t *)bits)[i / 8] >> (i % 8)) & 1);
}

/* Aborts (a finding) unless `a` is a well-formed array of `type`: the null
 * count matches the validity bits, list offsets stay inside the child,
 * string views inside their buffers and hold valid UTF-8. */
static void fuzz_check_array(const struct ArrowArray *a, dbp_type type)
{
    if (type.id == DBP_T_NULL) { /* Arrow's null type has no buffers at all */
        if (a->n_buffers != 0 || a->null_count != a->length)
            abort();
        return;
    }
    int64_t nulls = 0;
    for (int64_t i = 0; i < a->length; i++)
        nulls += !fuzz_bit_set(a->buffers[0], i);
    if (nulls != a->null_count)
        abort();
    if (type.id == DBP_T_LIST) {
        const int32_t *offsets = a->buffers[1];
        if (a->n_children != 1 || offsets[0] != 0)
            abort();
        for (int64_t i = 0; i < a->length; i++) {
            if (offsets[i] > offsets[i + 1])
                abort();
        }
        if (offsets[a->length] > a->children[0]->length)
            abort();
        fuzz_check_array(a->children[0], *type.element);
        return;
    }
    if (type.id != DBP_T_STRING && type.id != DBP_T_BINARY)
        return;
    int64_t n_data = a->n_buffers - 3;
    const int64_t *sizes = a->buffers[a->n_buffers - 1];
    for (int64_t i = 0; i < a->length; i++) {
        const uint8_t *view = (const uint8_t *)a->buffers[1] + 16 * i;
        int32_t len, buffer, offset;
        memcpy(&len, view, 4);
        const uint8_t *bytes = view + 4;
        if (len < 0)
            abort();
        if (len > 12) {
            memcpy(&buffer, view + 8, 4);
            memcpy(&offset, view + 12, 4);
            if (buffer < 0 || buffer >= n_data || offset < 0 ||
                offset + (int64_t)len > sizes[buffer])
                abort();
            bytes = (const uint8_t *)a->buffers[2 + buffer] + offset;
        }
        if (type.id == DBP_T_STRING && !dbp_utf8_valid(bytes, (size_t)len))
            abort();
    }
}

/* Exports `col`, checks the array and releases it. */
static void fuzz_check_column(dbp_column *col)
{
    struct ArrowArray array;
    if (dbp_column_finish(col, &array) != DBP_OK)
        abort();
    fuzz_check_array(&array, col->type);
    array.release(&array);
}

#endif
