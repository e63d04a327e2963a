/* test_redis_values.c - a Redis value's text into a typed column
 * (redis_values.c): exact or refused, never rounded or wrapped; and the
 * reply trees hiredis' reader builds through redis_io.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "redis_internal.h"

/* Appends `text` to a fresh column of `id`: the result, and the value in *out. */
static int parse(dbp_type_id id, const char *text, int64_t *i_out, double *d_out)
{
    dbp_column col;
    dbp_type type = {.id = id};
    CHECK_EQ_INT(dbp_column_init(&col, "v", type), DBP_OK);
    int rc = rd_append_value(&col, text, strlen(text));
    CHECK_EQ_INT(col.length, rc == DBP_OK ? 1 : 0);
    if (rc == DBP_OK && i_out) {
        size_t w = dbp_type_width(id);
        int64_t v = 0;
        if (w == 8)
            memcpy(&v, col.values.data, 8);
        else if (w == 4)
            v = id == DBP_T_UINT32 ? (int64_t)*(uint32_t *)col.values.data
                                   : *(int32_t *)col.values.data;
        else if (w == 2)
            v = id == DBP_T_UINT16 ? *(uint16_t *)col.values.data : *(int16_t *)col.values.data;
        else
            v = id == DBP_T_UINT8 ? *(uint8_t *)col.values.data : *(int8_t *)col.values.data;
        *i_out = v;
    }
    if (rc == DBP_OK && d_out)
        memcpy(d_out, col.values.data, sizeof *d_out);
    dbp_column_free(&col);
    return rc;
}

static void test_integers_exact_at_their_limits(void)
{
    int64_t v = 0;
    CHECK_EQ_INT(parse(DBP_T_INT64, "9223372036854775807", &v, NULL), DBP_OK);
    CHECK(v == INT64_MAX);
    CHECK_EQ_INT(parse(DBP_T_INT64, "-9223372036854775808", &v, NULL), DBP_OK);
    CHECK(v == INT64_MIN);
    CHECK_EQ_INT(parse(DBP_T_INT64, "9223372036854775808", &v, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_INT64, "-9223372036854775809", &v, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_UINT64, "18446744073709551615", &v, NULL), DBP_OK);
    CHECK(v == -1); /* the same bits */
    CHECK_EQ_INT(parse(DBP_T_UINT64, "18446744073709551616", &v, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_UINT64, "-1", &v, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_INT8, "-128", &v, NULL), DBP_OK);
    CHECK_EQ_INT(v, -128);
    CHECK_EQ_INT(parse(DBP_T_INT8, "128", &v, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_UINT16, "65535", &v, NULL), DBP_OK);
    CHECK_EQ_INT(v, 65535);
    CHECK_EQ_INT(parse(DBP_T_INT32, "-0", &v, NULL), DBP_OK);
    CHECK_EQ_INT(v, 0);
}

static void test_integers_refuse_anything_around_the_digits(void)
{
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "１", "1\n", NULL};
    for (int i = 0; bad[i]; i++)
        CHECK_EQ_INT(parse(DBP_T_INT64, bad[i], NULL, NULL), DBP_E_DATA);
}

static void test_floats_as_strtod_reads_them_whole(void)
{
    double d = 0;
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "0.1", NULL, &d), DBP_OK);
    CHECK(d == 0.1);
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "-inf", NULL, &d), DBP_OK);
    CHECK(isinf(d) && d < 0);
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "nan", NULL, &d), DBP_OK);
    CHECK(isnan(d));
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "1e308", NULL, &d), DBP_OK);
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "1e309", NULL, &d), DBP_E_DATA); /* not silently inf */
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, " 1", NULL, &d), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "1x", NULL, &d), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_FLOAT64, "", NULL, &d), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_FLOAT32, "1e39", NULL, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_FLOAT32, "1.5", NULL, NULL), DBP_OK);
}

static void test_text_booleans_and_dates(void)
{
    CHECK_EQ_INT(parse(DBP_T_STRING, "h\xc3\xa9", NULL, NULL), DBP_OK);
    CHECK_EQ_INT(parse(DBP_T_STRING, "\xff", NULL, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_BINARY, "\xff", NULL, NULL), DBP_OK);
    CHECK_EQ_INT(parse(DBP_T_BOOL, "TRUE", NULL, NULL), DBP_OK);
    CHECK_EQ_INT(parse(DBP_T_BOOL, "0", NULL, NULL), DBP_OK);
    CHECK_EQ_INT(parse(DBP_T_BOOL, "yes", NULL, NULL), DBP_E_DATA);
    int64_t v = 0;
    CHECK_EQ_INT(parse(DBP_T_DATE32, "1970-01-02", &v, NULL), DBP_OK);
    CHECK_EQ_INT(v, 1);
    CHECK_EQ_INT(parse(DBP_T_DATE32, "2023-02-29", &v, NULL), DBP_E_DATA);
    CHECK_EQ_INT(parse(DBP_T_TIMESTAMP_UTC, "1970-01-01T00:00:01+01:00", &v, NULL), DBP_OK);
    CHECK(v == -3599000000LL);
}

/* An array's slots come as its elements do: a header declaring two billion
 * (a broken or hostile server) costs nothing until they arrive, and a
 * complete reply of 100 has them all, in order, past every growth step. */
static void test_reader_grows_arrays_as_elements_arrive(void)
{
    redisReader *reader = rd_reader_new();
    CHECK(reader != NULL);
    const char *huge = "*2000000000\r\n$1\r\na\r\n*3\r\n:7\r\n";
    CHECK_EQ_INT(redisReaderFeed(reader, huge, strlen(huge)), REDIS_OK);
    void *obj = NULL;
    CHECK_EQ_INT(redisReaderGetReply(reader, &obj), REDIS_OK);
    CHECK(obj == NULL); /* incomplete; freeing the reader frees what was built */
    redisReaderFree(reader);

    reader = rd_reader_new();
    char buf[1024];
    size_t len = (size_t)snprintf(buf, sizeof buf, "*100\r\n");
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, ":%d\r\n", i);
    CHECK_EQ_INT(redisReaderFeed(reader, buf, len), REDIS_OK);
    CHECK_EQ_INT(redisReaderGetReply(reader, &obj), REDIS_OK);
    dbp_reply *r = obj;
    CHECK(r != NULL && r->type == DBP_REPLY_ARRAY);
    CHECK_EQ_INT(r ? (long long)r->n : -1, 100);
    for (size_t i = 0; r && i < r->n; i++)
        CHECK_EQ_INT(r->element[i]->integer, (long long)i);
    dbp_reply_free(r);
    redisReaderFree(reader);
}

int main(void)
{
    RUN(test_integers_exact_at_their_limits);
    RUN(test_integers_refuse_anything_around_the_digits);
    RUN(test_floats_as_strtod_reads_them_whole);
    RUN(test_text_booleans_and_dates);
    RUN(test_reader_grows_arrays_as_elements_arrive);
    return check_exit();
}
