/* fuzz_mysql_types.c - libFuzzer harness for the MySQL result decoders
 * (mysql_types.c): a column planned from a server's field description, then
 * values as MariaDB Connector/C hands them over in the binary protocol.
 *
 * Input: byte 0 picks the field type, byte 1 its flags (bit 0 UNSIGNED,
 * bit 1 binary charset, bit 2 display length 1, bit 3 zero_dates=null),
 * byte 2 its decimals and byte 3 its display length; the rest is the
 * value: for fixed-size types the bound buffer (padded with zeros), for
 * dates and times a MYSQL_TIME whose fields come from the input (the wire
 * may say anything), else the bytes at their own length. Each value is
 * decoded twice into one column, then the column is exported and checked.
 * Findings: a sanitizer report, a result other than OK, DATA or PROTOCOL,
 * a failed decode that changed the column, or a broken Arrow array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "column.h"
#include "fuzz_check.h"
#include "mysql_internal.h"

static const enum enum_field_types field_types[] = {
    MYSQL_TYPE_TINY,      MYSQL_TYPE_SHORT,      MYSQL_TYPE_YEAR,     MYSQL_TYPE_INT24,
    MYSQL_TYPE_LONG,      MYSQL_TYPE_LONGLONG,   MYSQL_TYPE_FLOAT,    MYSQL_TYPE_DOUBLE,
    MYSQL_TYPE_DECIMAL,   MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_DATE,     MYSQL_TYPE_DATETIME,
    MYSQL_TYPE_TIMESTAMP, MYSQL_TYPE_TIME,       MYSQL_TYPE_BIT,      MYSQL_TYPE_NULL,
    MYSQL_TYPE_GEOMETRY,  MYSQL_TYPE_VARCHAR,    MYSQL_TYPE_STRING,   MYSQL_TYPE_BLOB,
    MYSQL_TYPE_JSON,      MYSQL_TYPE_ENUM,       MYSQL_TYPE_SET,      MYSQL_TYPE_NEWDATE,
};
#define N_TYPES (sizeof field_types / sizeof field_types[0])

static void time_from(const uint8_t *p, size_t n, MYSQL_TIME *t)
{
    uint8_t b[20] = {0};
    memcpy(b, p, n < sizeof b ? n : sizeof b);
    memset(t, 0, sizeof *t);
    t->year = (unsigned)(b[0] | b[1] << 8);
    t->month = b[2];
    t->day = (unsigned)(b[3] | b[4] << 8 | b[5] << 16 | (unsigned)b[6] << 24);
    t->hour = b[7];
    t->minute = b[8];
    t->second = b[9];
    t->second_part = (unsigned long)(b[10] | b[11] << 8 | b[12] << 16 | (unsigned long)b[13] << 24);
    t->neg = b[14] & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    MYSQL_FIELD field;
    memset(&field, 0, sizeof field);
    field.name = "c";
    field.type = field_types[data[0] % N_TYPES];
    field.flags = (data[1] & 1) ? UNSIGNED_FLAG : 0;
    field.charsetnr = (data[1] & 2) ? 63 : 45;
    field.decimals = data[2];
    field.length = (data[1] & 4) ? 1 : data[3];
    my_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.tinyint1_bool = 1;
    cfg.zero_dates_null = (data[1] & 8) != 0;
    const uint8_t *value = data + 4;
    size_t len = size - 4;

    my_column_plan plan;
    dbp_error err;
    int rc = my_plan_column(&field, &cfg, &plan, &err);
    if (rc != DBP_OK) {
        if (rc != DBP_E_DATA)
            abort();
        return 0;
    }
    dbp_column col;
    if (dbp_column_init(&col, "c", plan.type) != DBP_OK)
        abort();
    MYSQL_TIME t;
    uint8_t fixed[16] = {0};
    const void *buf = value;
    unsigned long buf_len = (unsigned long)len;
    if (plan.fixed_size == sizeof(MYSQL_TIME)) {
        time_from(value, len, &t);
        buf = &t;
    } else if (plan.fixed_size) {
        memcpy(fixed, value, len < plan.fixed_size ? len : plan.fixed_size);
        buf = fixed;
        buf_len = plan.fixed_size;
    }
    for (int round = 0; round < 2; round++) {
        int64_t before = col.length;
        rc = my_decode_value(&plan, &cfg, buf, buf_len, &col, "c", &err);
        if (rc != DBP_OK && rc != DBP_E_DATA && rc != DBP_E_PROTOCOL)
            abort();
        if (rc != DBP_OK && col.length != before)
            abort();
    }
    fuzz_check_column(&col);
    dbp_column_free(&col);
    return 0;
}
