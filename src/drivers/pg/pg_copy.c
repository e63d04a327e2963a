/* pg_copy.c - see pg_copy.h. */
#include "pg_copy.h"

#include <stdint.h>
#include <string.h>

#include "error.h"

static const char signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', 0};

static int be16(const char *p) { return (int16_t)(((uint8_t)p[0] << 8) | (uint8_t)p[1]); }

static int32_t be32(const char *p)
{
    return (int32_t)(((uint32_t)(uint8_t)p[0] << 24) | ((uint32_t)(uint8_t)p[1] << 16) |
                     ((uint32_t)(uint8_t)p[2] << 8) | (uint32_t)(uint8_t)p[3]);
}

long pg_copy_header_length(const char *p, size_t avail, dbp_error *err)
{
    if (avail < 19)
        return 0;
    if (memcmp(p, signature, sizeof signature) != 0) {
        dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "COPY data lacks the binary signature");
        return -1;
    }
    int32_t ext = be32(p + 15);
    if (ext < 0) {
        dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "COPY header extension length %d", ext);
        return -1;
    }
    return avail - 19 < (size_t)ext ? 0 : 19 + (long)ext;
}

long pg_copy_tuple(const char *p, size_t avail, const pg_column_plan *plans,
                   char *const *names, int n_fields, dbp_result *res, int *trailer,
                   dbp_error *err)
{
    if (avail < 2)
        return 0;
    int n = be16(p);
    if (n == -1) {
        *trailer = 1;
        return 2;
    }
    if (n != n_fields) {
        dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                      "COPY row has %d fields, the statement described %d", n, n_fields);
        return -1;
    }
    /* First make sure the whole tuple is here, then decode it. */
    size_t pos = 2;
    for (int i = 0; i < n; i++) {
        if (avail - pos < 4)
            return 0;
        int32_t len = be32(p + pos);
        pos += 4;
        if (len < -1) {
            dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "COPY field with length %d", len);
            return -1;
        }
        if (len > 0) {
            if ((size_t)len > avail - pos)
                return 0;
            pos += (size_t)len;
        }
    }
    pos = 2;
    for (int i = 0; i < n; i++) {
        int32_t len = be32(p + pos);
        pos += 4;
        int rc = pg_decode_value(&plans[i], p + pos, len, dbp_result_column(res, (size_t)i),
                                 names[i], err);
        if (rc != DBP_OK) {
            if (rc == DBP_E_NOMEM)
                dbp_error_nomem(err);
            return -1;
        }
        if (len > 0)
            pos += (size_t)len;
    }
    return (long)pos;
}
