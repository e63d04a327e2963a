/* pg_copy.h - the framing of COPY ... (FORMAT binary) data: a file header,
 * then tuples of length-prefixed fields, then a trailer. Pure functions (no
 * libpq), so they are unit-tested and fuzzed on their own; the fields are
 * decoded by pg_types.c. */
#ifndef DBP_PG_COPY_H
#define DBP_PG_COPY_H

#include <stddef.h>

#include "pg_types.h"
#include "result.h"

/* Length of the header at `p` (signature, flags, extension area): > 0 when
 * complete, 0 when more bytes are needed, -1 (err set) when it is not a
 * binary COPY header. */
long pg_copy_header_length(const char *p, size_t avail, dbp_error *err);

/* Decodes one tuple at `p` into the result's columns (n_fields of them, one
 * plan each). Returns the bytes used, 0 when the tuple is incomplete (nothing
 * appended), -1 (err set) on malformed data or a value that cannot be
 * represented; *trailer is set at the end-of-data marker (2 bytes used). */
long pg_copy_tuple(const char *p, size_t avail, const pg_column_plan *plans,
                   char *const *names, int n_fields, dbp_result *res, int *trailer,
                   dbp_error *err);

#endif
