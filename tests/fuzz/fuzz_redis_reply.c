/* fuzz_redis_reply.c - libFuzzer harness for what the Redis driver does
 * with bytes from a server: hiredis' reader building dbp_reply trees
 * through the driver's callbacks (redis_io.c), then every bulk string of
 * the replies parsed as a column value (redis_values.c).
 *
 * Input: byte 0 picks the column type; the rest is fed to the reader in
 * pieces whose sizes come from byte 1, as a socket would cut them.
 * Findings: a sanitizer report (leaks included), a parse that fails with
 * something other than DATA, a failed parse that changed the column, or a
 * broken Arrow array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "redis_internal.h"

static const dbp_type_id types[] = {
    DBP_T_BOOL,    DBP_T_INT8,    DBP_T_INT16,   DBP_T_INT32,        DBP_T_INT64,
    DBP_T_UINT8,   DBP_T_UINT16,  DBP_T_UINT32,  DBP_T_UINT64,       DBP_T_FLOAT32,
    DBP_T_FLOAT64, DBP_T_DATE32,  DBP_T_STRING,  DBP_T_TIMESTAMP_US, DBP_T_TIMESTAMP_UTC,
    DBP_T_BINARY,
};

static void parse_strings(const dbp_reply *r, dbp_column *col)
{
    if (r->type == DBP_REPLY_ARRAY) {
        for (size_t i = 0; i < r->n; i++)
            parse_strings(r->element[i], col);
        return;
    }
    if (r->type != DBP_REPLY_STRING || r->str[r->len] != '\0')
        return;
    int64_t before = col->length;
    int rc = rd_append_value(col, r->str, r->len);
    if (rc != DBP_OK && rc != DBP_E_DATA)
        abort();
    if (rc != DBP_OK && col->length != before)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    dbp_type type = {.id = types[data[0] % (sizeof types / sizeof types[0])]};
    size_t piece = (size_t)(data[1] % 16) + 1;
    data += 2;
    size -= 2;
    dbp_column col;
    redisReader *reader = rd_reader_new();
    if (!reader || dbp_column_init(&col, "v", type) != DBP_OK)
        abort();
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (redisReaderFeed(reader, (const char *)data + off, n) != REDIS_OK)
            break;
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
                off = size; /* a protocol error ends the connection */
                break;
            }
            if (!reply)
                break;
            parse_strings(reply, &col);
            dbp_reply_free(reply);
        }
    }
    redisReaderFree(reader);
    fuzz_check_column(&col);
    dbp_column_free(&col);
    return 0;
}
