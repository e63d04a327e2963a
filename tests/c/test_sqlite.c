/* test_sqlite.c - the SQLite engine through the public API: result types
 * chosen by declared type, exact conversions and the errors for values that
 * disagree, parameters, scripts, execute_many, error mapping, read-only
 * files and cursors. Results are read from the exported Arrow stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arrow_abi.h"
#include "check.h"
#include "db_pool.h"

#define WAIT_MS 10000
#define US INT64_C(1000000)

/* One manager and one in-memory pool ("db") for the whole program. */
static dbp_manager *mgr;
static const dbp_setting memory_db[] = {{"database", ":memory:"}};

/* ---- running statements ------------------------------------------------------- */

static dbp_pool_options small_pool(int min_size, int max_size)
{
    dbp_pool_options o;
    dbp_pool_options_init(&o);
    o.min_size = min_size;
    o.max_size = max_size;
    o.acquire_timeout_ms = 5000;
    o.validate_after_ms = -1;
    return o;
}

/* Waits (bounded) and returns the status, or -1 if it never completed. */
static int outcome(dbp_request *req, dbp_error *err)
{
    int waited = dbp_request_wait(req, WAIT_MS);
    CHECK_EQ_INT(waited, DBP_OK);
    if (waited != DBP_OK)
        return -1;
    return dbp_request_status(req, err);
}

/* Runs one request on `pool` (or on `lease` when given); `params` is taken
 * over. Returns the status; *req_out keeps the request if asked for. */
static int run_req(const char *pool, dbp_lease *lease, dbp_op op, const char *sql,
                   dbp_params *params, dbp_error *err, dbp_request **req_out)
{
    dbp_request *req = NULL;
    dbp_error local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    int rc = dbp_request_new(&req, op, sql, sql ? strlen(sql) : 0, params, err);
    if (rc != DBP_OK)
        return rc;
    rc = lease ? dbp_submit_on_lease(lease, req, NULL, err) : dbp_submit(mgr, pool, req, NULL, err);
    if (rc == DBP_OK)
        rc = outcome(req, err);
    if (req_out)
        *req_out = req;
    else
        dbp_request_unref(req);
    return rc;
}

/* A statement that must succeed; returns rows affected. */
static int64_t exec_ok(const char *sql)
{
    dbp_request *req = NULL;
    dbp_error err;
    int rc = run_req("db", NULL, DBP_OP_EXECUTE, sql, NULL, &err, &req);
    if (rc != DBP_OK)
        fprintf(stderr, "  '%s': %s\n", sql, err.message);
    CHECK_EQ_INT(rc, DBP_OK);
    int64_t rows = dbp_request_rows_affected(req);
    dbp_request_unref(req);
    return rows;
}

static dbp_params *new_params(void)
{
    dbp_params *p = NULL;
    CHECK_EQ_INT(dbp_params_new(&p, NULL), DBP_OK);
    return p;
}

static dbp_lease *take_lease(const char *pool)
{
    dbp_request *req = NULL;
    CHECK_EQ_INT(run_req(pool, NULL, DBP_OP_LEASE, NULL, NULL, NULL, &req), DBP_OK);
    dbp_lease *lease = req ? dbp_request_take_lease(req) : NULL;
    CHECK(lease != NULL);
    dbp_request_unref(req);
    return lease;
}

/* ---- reading Arrow results ------------------------------------------------------ */

#define MAX_BATCHES 64

/* A whole result: its schema and every batch. */
typedef struct table {
    struct ArrowSchema schema;
    struct ArrowArray batches[MAX_BATCHES];
    int n_batches;
    int64_t rows;
} table;

static void table_free(table *t)
{
    for (int b = 0; b < t->n_batches; b++)
        t->batches[b].release(&t->batches[b]);
    if (t->schema.release)
        t->schema.release(&t->schema);
    memset(t, 0, sizeof *t);
}

/* Moves a finished request's result into `t`. */
static int table_from(dbp_request *req, table *t)
{
    memset(t, 0, sizeof *t);
    struct ArrowArrayStream stream;
    int rc = dbp_request_take_result(req, &stream);
    if (rc != DBP_OK)
        return rc;
    CHECK_EQ_INT(stream.get_schema(&stream, &t->schema), 0);
    CHECK(strcmp(t->schema.format, "+s") == 0);
    for (;;) {
        struct ArrowArray batch;
        CHECK_EQ_INT(stream.get_next(&stream, &batch), 0);
        if (!batch.release)
            break;
        CHECK_EQ_INT(batch.n_children, t->schema.n_children);
        if (t->n_batches == MAX_BATCHES) {
            batch.release(&batch);
            CHECK(!"too many batches");
            continue;
        }
        t->rows += batch.length;
        t->batches[t->n_batches++] = batch;
    }
    stream.release(&stream);
    return DBP_OK;
}

/* Runs a query into `t`; returns the status (t is empty unless DBP_OK). */
static int query(const char *sql, dbp_params *params, table *t, dbp_error *err)
{
    dbp_request *req = NULL;
    memset(t, 0, sizeof *t);
    int rc = run_req("db", NULL, DBP_OP_QUERY, sql, params, err, &req);
    if (rc == DBP_OK)
        rc = table_from(req, t);
    dbp_request_unref(req);
    return rc;
}

/* A query that must succeed. */
static void query_ok(const char *sql, dbp_params *params, table *t)
{
    dbp_error err;
    int rc = query(sql, params, t, &err);
    if (rc != DBP_OK)
        fprintf(stderr, "  '%s': %s\n", sql, err.message);
    CHECK_EQ_INT(rc, DBP_OK);
}

static const char *format_of(const table *t, int col)
{
    return col < t->schema.n_children ? t->schema.children[col]->format : "?";
}

static int has_format(const table *t, int col, const char *format)
{
    int same = strcmp(format_of(t, col), format) == 0;
    if (!same)
        fprintf(stderr, "  column %d is '%s', expected '%s'\n", col, format_of(t, col), format);
    return same;
}

/* The array holding global row `row` of column `col`, and the index in it. */
static const struct ArrowArray *locate(const table *t, int col, int64_t row, int64_t *i)
{
    for (int b = 0; b < t->n_batches; b++) {
        if (row < t->batches[b].length) {
            const struct ArrowArray *a = t->batches[b].children[col];
            *i = a->offset + row;
            return a;
        }
        row -= t->batches[b].length;
    }
    CHECK(!"row in range");
    return NULL;
}

static int bit(const void *bits, int64_t i) { return (((const uint8_t *)bits)[i / 8] >> (i % 8)) & 1; }

static int is_null(const table *t, int col, int64_t row)
{
    int64_t i;
    const struct ArrowArray *a = locate(t, col, row, &i);
    if (!a)
        return -1;
    if (strcmp(format_of(t, col), "n") == 0)
        return 1;
    return a->buffers[0] ? !bit(a->buffers[0], i) : 0;
}

static int64_t int_at(const table *t, int col, int64_t row)
{
    int64_t i;
    const struct ArrowArray *a = locate(t, col, row, &i);
    if (!a)
        return INT64_MIN;
    const char *f = format_of(t, col);
    const uint8_t *p = a->buffers[1];
    if (strcmp(f, "tdD") == 0 || strcmp(f, "i") == 0) {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return v;
}

static double double_at(const table *t, int col, int64_t row)
{
    int64_t i;
    const struct ArrowArray *a = locate(t, col, row, &i);
    double v = -12345.678;
    if (a)
        memcpy(&v, (const uint8_t *)a->buffers[1] + 8 * i, 8);
    return v;
}

static int bool_at(const table *t, int col, int64_t row)
{
    int64_t i;
    const struct ArrowArray *a = locate(t, col, row, &i);
    return a ? bit(a->buffers[1], i) : -1;
}

static __int128 decimal_at(const table *t, int col, int64_t row)
{
    int64_t i;
    const struct ArrowArray *a = locate(t, col, row, &i);
    __int128 v = -1;
    if (a)
        memcpy(&v, (const uint8_t *)a->buffers[1] + 16 * i, 16);
    return v;
}

/* Whether value `row` of a view column (Utf8View / BinaryView) is `s`. */
static int bytes_are(const table *t, int col, int64_t row, const void *s, size_t n)
{
    int64_t i;
    const struct ArrowArray *a = locate(t, col, row, &i);
    if (!a)
        return 0;
    const uint8_t *view = (const uint8_t *)a->buffers[1] + 16 * i;
    int32_t length, buffer_index, offset;
    memcpy(&length, view, 4);
    const uint8_t *data = view + 4;
    if (length > 12) {
        memcpy(&buffer_index, view + 8, 4);
        memcpy(&offset, view + 12, 4);
        data = (const uint8_t *)a->buffers[2 + buffer_index] + offset;
    }
    return (size_t)length == n && memcmp(data, s, n) == 0;
}

static int text_is(const table *t, int col, int64_t row, const char *s)
{
    return bytes_are(t, col, row, s, strlen(s));
}

/* ---- result types ---------------------------------------------------------------- */

static void test_declared_types_choose_arrow_types(void)
{
    exec_ok("CREATE TABLE typed(i INTEGER, r REAL, t TEXT, b BLOB, flag BOOLEAN, d DATE,"
            " dt DATETIME, ts TIMESTAMP, tm TIME, dec DECIMAL(10,2), num NUMERIC(5,0),"
            " vc VARCHAR(20), dbl DOUBLE, big BIGINT, js JSON, dec2 decimal( 12 , 3 ))");
    exec_ok("INSERT INTO typed VALUES (42, 1.5, 'h\xC3\xA9llo', X'00FF10', 1, '2024-02-29',"
            " '2024-02-29 12:34:56.5', '2000-01-01T02:00:00+02:00', '12:34:56.123456',"
            " '12.50', 12345, 'a text longer than twelve bytes', 2,"
            " -9223372036854775807 - 1, '{\"a\":1}', -1.5)");
    exec_ok("INSERT INTO typed VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
            " NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
    table t;
    query_ok("SELECT * FROM typed ORDER BY i IS NULL", NULL, &t);
    static const char *const formats[] = {"l",   "g",      "vu", "vz",     "b",  "tdD",
                                          "tsu:", "tsu:",  "ttu", "d:10,2", "d:5,0", "vu",
                                          "g",   "l",      "vu", "d:12,3"};
    CHECK_EQ_INT(t.schema.n_children, 16);
    for (int c = 0; c < 16 && c < t.schema.n_children; c++) {
        CHECK(has_format(&t, c, formats[c]));
        CHECK_EQ_INT(is_null(&t, c, 0), 0);
        CHECK_EQ_INT(is_null(&t, c, 1), 1);
    }
    CHECK(strcmp(t.schema.children[0]->name, "i") == 0);
    CHECK(strcmp(t.schema.children[9]->name, "dec") == 0);
    CHECK_EQ_INT(t.rows, 2);
    CHECK_EQ_INT(int_at(&t, 0, 0), 42);
    CHECK(double_at(&t, 1, 0) == 1.5);
    CHECK(text_is(&t, 2, 0, "h\xC3\xA9llo"));
    CHECK(bytes_are(&t, 3, 0, "\x00\xFF\x10", 3));
    CHECK_EQ_INT(bool_at(&t, 4, 0), 1);
    CHECK_EQ_INT(int_at(&t, 5, 0), 19782);                    /* days */
    CHECK_EQ_INT(int_at(&t, 6, 0), INT64_C(1709210096500000)); /* microseconds */
    CHECK_EQ_INT(int_at(&t, 7, 0), INT64_C(946684800000000));  /* the offset applied */
    CHECK_EQ_INT(int_at(&t, 8, 0), INT64_C(45296123456));
    CHECK(decimal_at(&t, 9, 0) == 1250);
    CHECK(decimal_at(&t, 10, 0) == 12345);
    CHECK(text_is(&t, 11, 0, "a text longer than twelve bytes"));
    CHECK(double_at(&t, 12, 0) == 2.0);
    CHECK_EQ_INT(int_at(&t, 13, 0), INT64_MIN);
    CHECK(text_is(&t, 14, 0, "{\"a\":1}"));
    CHECK(decimal_at(&t, 15, 0) == -1500);
    /* Every column has exactly one NULL. */
    for (int c = 0; c < 16 && t.n_batches > 0; c++)
        CHECK_EQ_INT(t.batches[0].children[c]->null_count, 1);
    table_free(&t);
}

static void test_columns_without_values_or_type(void)
{
    table t;
    /* No declared type and only NULLs: the Null type. */
    query_ok("SELECT NULL AS n, CAST(NULL AS INTEGER) AS m", NULL, &t);
    CHECK(has_format(&t, 0, "n"));
    CHECK(has_format(&t, 1, "n"));
    CHECK_EQ_INT(t.rows, 1);
    CHECK_EQ_INT(t.batches[0].children[0]->null_count, 1);
    table_free(&t);
    /* A declared column keeps its type with no rows at all. */
    query_ok("SELECT i, t, dec FROM typed WHERE 0", NULL, &t);
    CHECK(has_format(&t, 0, "l"));
    CHECK(has_format(&t, 1, "vu"));
    CHECK(has_format(&t, 2, "d:10,2"));
    CHECK_EQ_INT(t.rows, 0);
    table_free(&t);
}

/* A column without a declared type takes its type from its first value;
 * INTEGER then REAL makes it Float64 when every integer is exact there. */
static void test_untyped_integer_then_real_becomes_float64(void)
{
    table t;
    query_ok("SELECT column1 AS x FROM (VALUES (NULL), (1), (2.5), (-3))", NULL, &t);
    CHECK(has_format(&t, 0, "g"));
    CHECK_EQ_INT(is_null(&t, 0, 0), 1);
    CHECK(double_at(&t, 0, 1) == 1.0);
    CHECK(double_at(&t, 0, 2) == 2.5);
    CHECK(double_at(&t, 0, 3) == -3.0);
    table_free(&t);

    query_ok("SELECT column1 AS x FROM (VALUES (9007199254740992), (0.5))", NULL, &t);
    CHECK(has_format(&t, 0, "g"));
    CHECK(double_at(&t, 0, 0) == 9007199254740992.0);
    table_free(&t);
    query_ok("SELECT column1 AS x FROM (VALUES (0.5), (-9007199254740992))", NULL, &t);
    CHECK(double_at(&t, 0, 1) == -9007199254740992.0);
    table_free(&t);

    /* Integers a double cannot hold exactly, before or after the REAL. */
    static const char *const inexact[] = {
        "SELECT column1 AS x FROM (VALUES (9007199254740993), (0.5))",
        "SELECT column1 AS x FROM (VALUES (0.5), (9007199254740993))",
        "SELECT column1 AS x FROM (VALUES (0.5), (-9223372036854775807 - 1))",
    };
    for (size_t i = 0; i < sizeof inexact / sizeof *inexact; i++) {
        dbp_error err;
        CHECK_EQ_INT(query(inexact[i], NULL, &t, &err), DBP_E_DATA);
        CHECK(strcmp(err.sqlstate, "22000") == 0);
        CHECK(strstr(err.message, "column 'x' (declared without a type)") != NULL);
    }

    /* Other first values fix other types. */
    query_ok("SELECT column1 AS x FROM (VALUES ('a'), (5))", NULL, &t);
    CHECK(has_format(&t, 0, "vu"));
    CHECK(text_is(&t, 0, 1, "5"));
    table_free(&t);
    query_ok("SELECT column1 AS x FROM (VALUES (X'01'), (NULL))", NULL, &t);
    CHECK(has_format(&t, 0, "vz"));
    table_free(&t);
    dbp_error err;
    CHECK_EQ_INT(query("SELECT column1 AS x FROM (VALUES (1), ('a'))", NULL, &t, &err), DBP_E_DATA);
}

/* Conversions that are exact are made. */
static void test_exact_conversions_are_accepted(void)
{
    exec_ok("CREATE TABLE conv(b BLOB, dec DECIMAL(10,2), num NUMERIC(38,0), dbl DOUBLE,"
            " ts TIMESTAMP)");
    exec_ok("INSERT INTO conv VALUES ('text as bytes', 12, 12345678901234567, 7, '2024-02-29'),"
            " (NULL, '12.5', -5, 9007199254740993, '2024-02-29 23:59'),"
            " (NULL, 0.1, NULL, NULL, NULL), (NULL, -0.07, NULL, NULL, NULL),"
            " (NULL, 99999999.99, NULL, NULL, NULL), (NULL, '1e2', NULL, NULL, NULL)");
    table t;
    query_ok("SELECT * FROM conv", NULL, &t);
    CHECK(has_format(&t, 0, "vz"));
    CHECK(text_is(&t, 0, 0, "text as bytes"));
    CHECK(decimal_at(&t, 1, 0) == 1200);
    CHECK(decimal_at(&t, 1, 1) == 1250);
    CHECK(decimal_at(&t, 1, 2) == 10); /* REALs read through their shortest text */
    CHECK(decimal_at(&t, 1, 3) == -7);
    CHECK(decimal_at(&t, 1, 4) == 9999999999);
    CHECK(decimal_at(&t, 1, 5) == 10000);
    CHECK(decimal_at(&t, 2, 0) == 12345678901234567);
    CHECK(decimal_at(&t, 2, 1) == -5);
    CHECK(double_at(&t, 3, 0) == 7.0);
    /* REAL affinity stored this one as a double already. */
    CHECK(double_at(&t, 3, 1) == 9007199254740992.0);
    CHECK_EQ_INT(int_at(&t, 4, 0), INT64_C(1709164800000000));
    CHECK_EQ_INT(int_at(&t, 4, 1), INT64_C(1709164800000000) + (23 * 3600 + 59 * 60) * US);
    table_free(&t);
}

/* Each value disagrees with its column's declared type: DBP_E_DATA naming
 * the column, its declared type, the storage class and the row. */
static void test_disagreeing_values_raise_data_errors(void)
{
    static const struct {
        const char *declared, *value, *storage, *why;
    } cases[] = {
        {"INTEGER", "'abc'", "TEXT", "not a whole number"},
        {"INTEGER", "1.5", "REAL", "not a whole number"},
        {"INTEGER", "1e20", "REAL", "INTEGER range"},
        {"BOOLEAN", "1.5", "REAL", "not 0 or 1"},
        {"BOOLEAN", "2", "INTEGER", "not 0 or 1"},
        {"BOOLEAN", "'true'", "TEXT", "not 0 or 1"},
        {"TEXT", "CAST(X'C328' AS TEXT)", "TEXT", "not valid UTF-8"},
        {"VARCHAR(10)", "CAST(X'EDA080' AS TEXT)", "TEXT", "not valid UTF-8"},
        {"DECIMAL(5,2)", "'1.234'", "REAL", "without rounding"},
        {"DECIMAL(3,0)", "1234", "INTEGER", "without rounding"},
        {"NUMERIC(4,1)", "0.1 + 0.2", "REAL", "without rounding"},
        {"DECIMAL(10,2)", "X'00'", "BLOB", "not a number"},
        {"DATE", "'not a date'", "TEXT", "not a date"},
        {"DATE", "'2023-02-29'", "TEXT", "not a date"},
        {"DATE", "20240101", "INTEGER", "ISO 8601"},
        {"TIME", "'12:00:00.0000001'", "TEXT", "at most microseconds"},
        {"TIME", "'25:00'", "TEXT", "not a time"},
        {"DATETIME", "'2024-01-01 10:00:00 PST'", "TEXT", "not a timestamp"},
        {"REAL", "'abc'", "TEXT", "double holds exactly"},
        {"BLOB", "12", "INTEGER", "not bytes"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        /* A table per case: reusing one name across schema changes meets
         * the statement-cache case tested at the end. */
        char sql[256];
        snprintf(sql, sizeof sql, "CREATE TABLE bad%zu(c %s)", k, cases[k].declared);
        exec_ok(sql);
        /* A NULL first, so the error names row 2. */
        snprintf(sql, sizeof sql, "INSERT INTO bad%zu VALUES (NULL), (%s)", k, cases[k].value);
        exec_ok(sql);
        table t;
        dbp_error err;
        snprintf(sql, sizeof sql, "SELECT c FROM bad%zu", k);
        int rc = query(sql, NULL, &t, &err);
        char expect[128];
        snprintf(expect, sizeof expect, "column 'c' (declared %s) holds a %s value at row 2",
                 cases[k].declared, cases[k].storage);
        int ok = rc == DBP_E_DATA && err.category == DBP_E_DATA &&
                 strcmp(err.sqlstate, "22000") == 0 && strstr(err.message, expect) &&
                 strstr(err.message, cases[k].why);
        if (!ok)
            fprintf(stderr, "  %s with %s: rc %d, '%s'\n", cases[k].declared, cases[k].value,
                    rc, rc == DBP_OK ? "(accepted)" : err.message);
        CHECK(ok);
        if (rc == DBP_OK)
            table_free(&t);
    }
}

/* ---- parameters --------------------------------------------------------------------- */

static void test_positional_parameters_of_every_kind(void)
{
    exec_ok("CREATE TABLE kinds(n INTEGER, flag BOOLEAN, i INTEGER, r REAL, t TEXT, b BLOB,"
            " d DATE, tm TIME, ts TIMESTAMP, tz TIMESTAMP, dec DECIMAL(10,2))");
    dbp_params *p = new_params();
    CHECK_EQ_INT(dbp_params_add_null(p, NULL), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_bool(p, NULL, 1), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_int64(p, NULL, INT64_MAX), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_double(p, NULL, -0.25), DBP_OK);
    const char *text = "caf\xC3\xA9 and more than twelve";
    CHECK_EQ_INT(dbp_params_add_text(p, NULL, text, strlen(text)), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_blob(p, NULL, "\x00\x01\x02", 3), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_temporal(p, NULL, DBP_V_DATE, 19782), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_temporal(p, NULL, DBP_V_TIME, 45296 * US + 7), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_temporal(p, NULL, DBP_V_TIMESTAMP, -1), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_temporal(p, NULL, DBP_V_TIMESTAMP_TZ, INT64_C(946684800000000)),
                 DBP_OK);
    CHECK_EQ_INT(dbp_params_add_decimal(p, NULL, "-12.30", 6), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_temporal(p, NULL, DBP_V_INT64, 1), DBP_E_MISUSE);
    dbp_error err;
    int rc = run_req("db", NULL, DBP_OP_EXECUTE,
                     "INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", p, &err, NULL);
    if (rc != DBP_OK)
        fprintf(stderr, "  insert: %s\n", err.message);
    CHECK_EQ_INT(rc, DBP_OK);

    table t;
    query_ok("SELECT * FROM kinds", NULL, &t);
    CHECK_EQ_INT(t.rows, 1);
    CHECK_EQ_INT(is_null(&t, 0, 0), 1);
    CHECK_EQ_INT(bool_at(&t, 1, 0), 1);
    CHECK_EQ_INT(int_at(&t, 2, 0), INT64_MAX);
    CHECK(double_at(&t, 3, 0) == -0.25);
    CHECK(text_is(&t, 4, 0, text));
    CHECK(bytes_are(&t, 5, 0, "\x00\x01\x02", 3));
    CHECK_EQ_INT(int_at(&t, 6, 0), 19782);
    CHECK_EQ_INT(int_at(&t, 7, 0), 45296 * US + 7);
    CHECK_EQ_INT(int_at(&t, 8, 0), -1);
    CHECK_EQ_INT(int_at(&t, 9, 0), INT64_C(946684800000000));
    CHECK(decimal_at(&t, 10, 0) == -1230);
    table_free(&t);
}

static void test_named_parameters(void)
{
    dbp_params *p = new_params();
    /* Given in another order than the placeholders, which use all three
     * prefixes; a name used twice is one parameter. */
    CHECK_EQ_INT(dbp_params_add_text(p, "c", "three", 5), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_int64(p, "a", 1), DBP_OK);
    CHECK_EQ_INT(dbp_params_add_double(p, "b", 2.5), DBP_OK);
    table t;
    query_ok("SELECT :a AS a, @b AS b, $c AS c, :a + 1 AS d", p, &t);
    CHECK(has_format(&t, 0, "l"));
    CHECK_EQ_INT(int_at(&t, 0, 0), 1);
    CHECK(double_at(&t, 1, 0) == 2.5);
    CHECK(text_is(&t, 2, 0, "three"));
    CHECK_EQ_INT(int_at(&t, 3, 0), 2);
    table_free(&t);
}

static void test_parameter_mismatches_are_misuse(void)
{
    table t;
    dbp_error err;
    dbp_params *p = new_params();
    dbp_params_add_int64(p, NULL, 1);
    CHECK_EQ_INT(query("SELECT ? AS a, ? AS b", p, &t, &err), DBP_E_MISUSE);
    CHECK(strstr(err.message, "2 parameter(s) but 1 were given") != NULL);

    p = new_params();
    dbp_params_add_int64(p, NULL, 1);
    dbp_params_add_int64(p, NULL, 2);
    CHECK_EQ_INT(query("SELECT ? AS a", p, &t, &err), DBP_E_MISUSE);

    CHECK_EQ_INT(query("SELECT ? AS a", NULL, &t, &err), DBP_E_MISUSE);

    p = new_params();
    dbp_params_add_int64(p, "a", 1);
    CHECK_EQ_INT(query("SELECT ? AS a", p, &t, &err), DBP_E_MISUSE);
    CHECK(strstr(err.message, "positional") != NULL);

    p = new_params();
    dbp_params_add_int64(p, "a", 1);
    CHECK_EQ_INT(query("SELECT :zz AS a", p, &t, &err), DBP_E_MISUSE);
    CHECK(strstr(err.message, ":zz") != NULL);

    /* Rows of different widths are refused while building. */
    p = new_params();
    dbp_params_add_int64(p, NULL, 1);
    CHECK_EQ_INT(dbp_params_end_row(p), DBP_OK);
    dbp_params_add_int64(p, NULL, 1);
    dbp_params_add_int64(p, NULL, 2);
    CHECK_EQ_INT(dbp_params_end_row(p), DBP_E_MISUSE);
    dbp_params_free(p);
}

/* ---- statements ------------------------------------------------------------------------ */

static void test_execute_runs_a_script(void)
{
    CHECK_EQ_INT(exec_ok("CREATE TABLE script(x INTEGER);"
                         " INSERT INTO script VALUES (1);"
                         " -- a comment between statements\n"
                         " INSERT INTO script VALUES (2), (3);"
                         " CREATE INDEX script_x ON script(x);"),
                 3);
    CHECK_EQ_INT(exec_ok("UPDATE script SET x = x + 1"), 3);
    CHECK_EQ_INT(exec_ok("DELETE FROM script WHERE x > 3"), 1);
    CHECK_EQ_INT(exec_ok("CREATE TABLE script2(y)"), 0); /* not the previous DML's count */
    table t;
    query_ok("SELECT sum(x) AS s FROM script", NULL, &t);
    CHECK_EQ_INT(int_at(&t, 0, 0), 5);
    table_free(&t);

    /* With parameters there must be exactly one statement. */
    dbp_params *p = new_params();
    dbp_params_add_int64(p, NULL, 9);
    dbp_error err;
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_EXECUTE,
                         "INSERT INTO script VALUES (?); INSERT INTO script VALUES (10)", p,
                         &err, NULL),
                 DBP_E_MISUSE);
    CHECK(strstr(err.message, "more than one statement") != NULL);
}

static void test_query_needs_one_statement_with_columns(void)
{
    table t;
    dbp_error err;
    CHECK_EQ_INT(query("CREATE TABLE nope(x)", NULL, &t, &err), DBP_E_MISUSE);
    CHECK(strstr(err.message, "no columns") != NULL);
    CHECK_EQ_INT(query("SELECT 1; SELECT 2", NULL, &t, &err), DBP_E_MISUSE);
    CHECK_EQ_INT(query("   ", NULL, &t, &err), DBP_E_MISUSE);
    CHECK(strstr(err.message, "no statement") != NULL);
    /* A trailing semicolon is fine. */
    query_ok("SELECT 1 AS one;  ", NULL, &t);
    CHECK_EQ_INT(int_at(&t, 0, 0), 1);
    table_free(&t);
}

static dbp_params *int_rows(const int64_t *values, size_t n)
{
    dbp_params *p = new_params();
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(dbp_params_add_int64(p, NULL, values[i]), DBP_OK);
        CHECK_EQ_INT(dbp_params_end_row(p), DBP_OK);
    }
    return p;
}

static int64_t count_rows(const char *sql)
{
    table t;
    query_ok(sql, NULL, &t);
    int64_t n = t.rows ? int_at(&t, 0, 0) : -1;
    table_free(&t);
    return n;
}

static void test_execute_many_is_all_or_nothing(void)
{
    exec_ok("CREATE TABLE many(x INTEGER NOT NULL UNIQUE)");
    const char *insert = "INSERT INTO many VALUES (?)";
    static const int64_t dup_in_row_3[] = {1, 2, 2, 4};
    dbp_error err;
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_EXECUTE_MANY, insert, int_rows(dup_in_row_3, 4), &err,
                         NULL),
                 DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "23000") == 0);
    CHECK_EQ_INT(err.native_code, 2067); /* SQLITE_CONSTRAINT_UNIQUE */
    CHECK(strstr(err.message, "no row was written") != NULL);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM many"), 0);

    static const int64_t fine[] = {1, 2, 3, 4, 5};
    dbp_request *req = NULL;
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_EXECUTE_MANY, insert, int_rows(fine, 5), &err, &req),
                 DBP_OK);
    CHECK_EQ_INT(dbp_request_rows_affected(req), 5);
    dbp_request_unref(req);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM many"), 5);

    /* No rows: nothing runs, nothing is written. */
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_EXECUTE_MANY, "INSERT INTO many VALUES (99)",
                         new_params(), &err, &req),
                 DBP_OK);
    CHECK_EQ_INT(dbp_request_rows_affected(req), 0);
    dbp_request_unref(req);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM many"), 5);

    /* Inside a transaction the failure undoes only its own rows. */
    dbp_lease *lease = take_lease("db");
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_BEGIN, "", NULL, NULL, NULL), DBP_OK);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_EXECUTE, "INSERT INTO many VALUES (10)", NULL, NULL,
                         NULL),
                 DBP_OK);
    static const int64_t clash[] = {11, 12, 10};
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_EXECUTE_MANY, insert, int_rows(clash, 3), &err, NULL),
                 DBP_E_SERVER);
    CHECK_EQ_INT(dbp_lease_in_transaction(lease), 1);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_COMMIT, NULL, NULL, NULL, NULL), DBP_OK);
    dbp_lease_release(lease);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM many"), 6);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM many WHERE x IN (11, 12)"), 0);
}

static void test_errors_map_to_categories_and_sqlstates(void)
{
    table t;
    dbp_error err;
    CHECK_EQ_INT(query("SELEC 1", NULL, &t, &err), DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "42000") == 0);
    CHECK_EQ_INT(err.native_code, 1); /* SQLITE_ERROR */
    CHECK(strstr(err.message, "syntax error") != NULL);
    CHECK_EQ_INT(query("SELECT * FROM no_such_table", NULL, &t, &err), DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "42000") == 0);
    CHECK(strstr(err.message, "no_such_table") != NULL);
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_EXECUTE, "INSERT INTO no_such_table VALUES (1)",
                         NULL, &err, NULL),
                 DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "42000") == 0);

    exec_ok("CREATE TABLE nn(x INTEGER NOT NULL)");
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_EXECUTE, "INSERT INTO nn VALUES (NULL)", NULL, &err,
                         NULL),
                 DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "23000") == 0);
    /* A runtime error that is not a constraint. */
    CHECK_EQ_INT(query("SELECT abs(-9223372036854775807 - 1) AS x", NULL, &t, &err),
                 DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "HY000") == 0);
    /* The pool is fine after all of these. */
    CHECK_EQ_INT(count_rows("SELECT 3"), 3);
}

static void test_transaction_kinds(void)
{
    dbp_lease *lease = take_lease("db");
    CHECK(strcmp(dbp_lease_endpoint(lease), ":memory:") == 0); /* for leak reports */
    dbp_error err;
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_BEGIN, "SOMETIMES", NULL, &err, NULL), DBP_E_MISUSE);
    CHECK_EQ_INT(dbp_lease_in_transaction(lease), 0);
    static const char *const kinds[] = {"", "deferred", "IMMEDIATE", "Exclusive"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_BEGIN, kinds[i], NULL, &err, NULL), DBP_OK);
        CHECK_EQ_INT(dbp_lease_in_transaction(lease), 1);
        CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_ROLLBACK, NULL, NULL, &err, NULL), DBP_OK);
        CHECK_EQ_INT(dbp_lease_in_transaction(lease), 0);
    }
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_COMMIT, NULL, NULL, &err, NULL), DBP_E_SERVER);
    dbp_lease_release(lease);
}

/* ---- requests run on the caller's thread (dbp_request_set_inline) ----------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static dbp_request *inline_request(const char *sql, int64_t timeout_ms)
{
    dbp_request *req = NULL;
    CHECK_EQ_INT(dbp_request_new(&req, DBP_OP_QUERY, sql, strlen(sql), NULL, NULL), DBP_OK);
    dbp_request_set_inline(req, 1);
    if (timeout_ms)
        dbp_request_set_timeout(req, timeout_ms);
    return req;
}

static void test_inline_request_runs_during_submit(void)
{
    dbp_request *req = inline_request("SELECT 42", 0);
    dbp_error err;
    CHECK_EQ_INT(dbp_submit(mgr, "db", req, NULL, &err), DBP_OK);
    CHECK(dbp_request_is_done(req)); /* no worker was involved: done on return */
    CHECK_EQ_INT(outcome(req, &err), DBP_OK);
    dbp_request_unref(req);
}

static void test_inline_request_obeys_its_deadline(void)
{
    /* The janitor interrupts it on the caller's thread, as on a worker: the
     * statement never ends on its own, so returning at all proves it. The
     * time bound is loose for valgrind (which the Makefile runs with
     * --fair-sched, or a CPU-bound thread can starve the janitor). */
    dbp_request *req = inline_request(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", 100);
    dbp_error err;
    int64_t t0 = monotonic_ms();
    CHECK_EQ_INT(dbp_submit(mgr, "db", req, NULL, &err), DBP_OK);
    CHECK(dbp_request_is_done(req));
    CHECK(monotonic_ms() - t0 < 5000);
    CHECK_EQ_INT(outcome(req, &err), DBP_E_QUERY_TIMEOUT);
    dbp_request_unref(req);
}

static void test_inline_request_waits_its_turn_when_the_pool_is_busy(void)
{
    /* Both connections taken: the request queues and a worker runs it later. */
    dbp_lease *a = take_lease("db");
    dbp_lease *b = take_lease("db");
    dbp_request *req = inline_request("SELECT 7", 0);
    dbp_error err;
    CHECK_EQ_INT(dbp_submit(mgr, "db", req, NULL, &err), DBP_OK);
    CHECK(!dbp_request_is_done(req));
    dbp_lease_release(a);
    CHECK_EQ_INT(outcome(req, &err), DBP_OK);
    dbp_request_unref(req);
    dbp_lease_release(b);
}

/* Submitted with a completion queue (an event loop): a short read runs
 * during submit; a long one is handed to a worker once over its budget and
 * still gives the right answer; a statement that writes runs once, on a worker. */
static void test_inline_request_with_a_queue_keeps_to_its_budget(void)
{
    dbp_error err;
    dbp_completion_queue *cq = NULL;
    CHECK_EQ_INT(dbp_completion_queue_new(&cq, &err), DBP_OK);
    dbp_request *quick = inline_request("SELECT 42", 0);
    CHECK_EQ_INT(dbp_submit(mgr, "db", quick, cq, &err), DBP_OK);
    CHECK(dbp_request_is_done(quick));
    CHECK_EQ_INT(outcome(quick, &err), DBP_OK);

    dbp_request *slow = inline_request(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
        "SELECT count(*) FROM c", 0);
    int64_t t0 = monotonic_ms();
    CHECK_EQ_INT(dbp_submit(mgr, "db", slow, cq, &err), DBP_OK);
    CHECK(monotonic_ms() - t0 < 1000); /* back within about the budget */
    CHECK_EQ_INT(outcome(slow, &err), DBP_OK);
    table t;
    CHECK_EQ_INT(table_from(slow, &t), DBP_OK);
    CHECK_EQ_INT(t.rows, 1);
    CHECK_EQ_INT(int_at(&t, 0, 0), 300000);
    table_free(&t);

    run_req("db", NULL, DBP_OP_EXECUTE, "CREATE TABLE budget_w (id INTEGER PRIMARY KEY)", NULL,
            &err, NULL);
    dbp_request *write = inline_request("INSERT INTO budget_w DEFAULT VALUES RETURNING id", 0);
    CHECK_EQ_INT(dbp_submit(mgr, "db", write, cq, &err), DBP_OK);
    CHECK_EQ_INT(outcome(write, &err), DBP_OK);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM budget_w"), 1); /* it ran once */

    dbp_request *done[8];
    size_t n = dbp_completion_queue_drain(cq, done, 8);
    CHECK_EQ_INT((int)n, 3);
    for (size_t i = 0; i < n; i++)
        dbp_request_unref(done[i]);
    dbp_request_unref(quick);
    dbp_request_unref(slow);
    dbp_request_unref(write);
    dbp_completion_queue_free(cq);
}

/* ---- databases and files --------------------------------------------------------------- */

static void test_memory_database_is_one_per_pool(void)
{
    /* Two connections of one pool see the same database. */
    dbp_lease *a = take_lease("db");
    dbp_lease *b = take_lease("db");
    CHECK_EQ_INT(run_req(NULL, a, DBP_OP_EXECUTE, "CREATE TABLE shared(x); INSERT INTO shared "
                                                  "VALUES (1)",
                         NULL, NULL, NULL),
                 DBP_OK);
    dbp_request *req = NULL;
    CHECK_EQ_INT(run_req(NULL, b, DBP_OP_QUERY, "SELECT count(*) FROM shared", NULL, NULL, &req),
                 DBP_OK);
    table t;
    CHECK_EQ_INT(table_from(req, &t), DBP_OK);
    CHECK_EQ_INT(int_at(&t, 0, 0), 1);
    table_free(&t);
    dbp_request_unref(req);
    dbp_lease_release(a);
    dbp_lease_release(b);

    /* Another pool's ":memory:" is another database. */
    dbp_pool_options o = small_pool(1, 1);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "other", "sqlite", memory_db, 1, &o, NULL), DBP_OK);
    dbp_error err;
    CHECK_EQ_INT(run_req("other", NULL, DBP_OP_QUERY, "SELECT count(*) FROM shared", NULL, &err,
                         NULL),
                 DBP_E_SERVER);
    CHECK(strstr(err.message, "no such table") != NULL);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "other", -1, NULL), DBP_OK);
}

static void test_read_only_missing_file_is_a_network_error(void)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/dbp-test-missing-%ld.db", (long)getpid());
    unlink(path);
    const dbp_setting settings[] = {{"database", path}, {"mode", "ro"}};
    dbp_pool_options o = small_pool(1, 1);
    dbp_error err;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "ro", "sqlite", settings, 2, &o, &err),
                 DBP_E_NETWORK);
    CHECK(strstr(err.message, path) != NULL);
    CHECK(strstr(err.message, "mode ro") != NULL);

    /* With nothing opened up front, the first request gets the error. */
    o = small_pool(0, 1);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "ro", "sqlite", settings, 2, &o, &err), DBP_OK);
    CHECK_EQ_INT(run_req("ro", NULL, DBP_OP_QUERY, "SELECT 1", NULL, &err, NULL), DBP_E_NETWORK);
    CHECK(strstr(err.message, path) != NULL);
    CHECK(access(path, F_OK) != 0); /* read-only never creates the file */
    dbp_pool_stats s;
    CHECK_EQ_INT(dbp_manager_pool_stats(mgr, "ro", &s, NULL, 0, NULL), DBP_OK);
    CHECK_EQ_INT(s.size, 0);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "ro", -1, NULL), DBP_OK);
}

static void test_read_only_file_refuses_writes(void)
{
    char dir[] = "/tmp/dbp-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/file.db", dir);
    const dbp_setting rw[] = {{"database", path}, {"journal_mode", "wal"}};
    const dbp_setting ro[] = {{"database", path}, {"mode", "ro"}};
    dbp_pool_options o = small_pool(1, 2);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "file", "sqlite", rw, 2, &o, NULL), DBP_OK);
    CHECK_EQ_INT(run_req("file", NULL, DBP_OP_EXECUTE,
                         "CREATE TABLE f(x); INSERT INTO f VALUES (1), (2)", NULL, NULL, NULL),
                 DBP_OK);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "file-ro", "sqlite", ro, 2, &o, NULL), DBP_OK);
    dbp_request *req = NULL;
    CHECK_EQ_INT(run_req("file-ro", NULL, DBP_OP_QUERY, "SELECT count(*) FROM f", NULL, NULL, &req),
                 DBP_OK);
    table t;
    CHECK_EQ_INT(table_from(req, &t), DBP_OK);
    CHECK_EQ_INT(int_at(&t, 0, 0), 2);
    table_free(&t);
    dbp_request_unref(req);
    dbp_error err;
    CHECK_EQ_INT(run_req("file-ro", NULL, DBP_OP_EXECUTE, "INSERT INTO f VALUES (3)", NULL, &err,
                         NULL),
                 DBP_E_SERVER);
    CHECK(strcmp(err.sqlstate, "25006") == 0);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "file-ro", -1, NULL), DBP_OK);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "file", -1, NULL), DBP_OK);
    char extra[160];
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(extra, sizeof extra, "%s%s", path, suffixes[i]);
        unlink(extra);
    }
    CHECK_EQ_INT(rmdir(dir), 0);
}

/* ---- cursors -------------------------------------------------------------------------- */

/* Fetches the next batch into `t`; returns the status. */
static int fetch(dbp_lease *lease, int64_t batch_rows, table *t, int *done)
{
    dbp_request *req = NULL;
    dbp_error err;
    memset(t, 0, sizeof *t);
    int rc = dbp_request_new(&req, DBP_OP_CURSOR_FETCH, NULL, 0, NULL, &err);
    CHECK_EQ_INT(rc, DBP_OK);
    dbp_request_set_batch_rows(req, batch_rows);
    CHECK_EQ_INT(dbp_submit_on_lease(lease, req, NULL, &err), DBP_OK);
    rc = outcome(req, &err);
    if (rc == DBP_OK) {
        *done = dbp_request_cursor_done(req);
        CHECK_EQ_INT(table_from(req, t), DBP_OK);
    }
    dbp_request_unref(req);
    return rc;
}

static void test_cursor_fetches_batches_with_the_same_types(void)
{
    exec_ok("CREATE TABLE seq(n INTEGER, label TEXT, amount DECIMAL(8,2), day DATE)");
    exec_ok("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10) "
            "INSERT INTO seq SELECT x, 'row ' || x, x * 1.25, date('2024-01-01', '+' || x || "
            "' days') FROM c");
    dbp_lease *lease = take_lease("db");
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN,
                         "SELECT n, label, amount, day, n * 2 AS twice, n / 4.0 AS quarter "
                         "FROM seq ORDER BY n",
                         NULL, NULL, NULL),
                 DBP_OK);
    static const char *const formats[] = {"l", "vu", "d:8,2", "tdD", "l", "g"};
    int64_t next = 1;
    int done = 0, fetches = 0;
    while (!done && fetches < 10) {
        table t;
        CHECK_EQ_INT(fetch(lease, 4, &t, &done), DBP_OK);
        fetches++;
        CHECK(t.rows == 4 || (done && t.rows == 2));
        for (int c = 0; c < 6; c++)
            CHECK(has_format(&t, c, formats[c]));
        for (int64_t r = 0; r < t.rows; r++, next++) {
            char label[16];
            snprintf(label, sizeof label, "row %lld", (long long)next);
            CHECK_EQ_INT(int_at(&t, 0, r), next);
            CHECK(text_is(&t, 1, r, label));
            CHECK(decimal_at(&t, 2, r) == next * 125);
            CHECK_EQ_INT(int_at(&t, 3, r), 19723 + next);
            CHECK_EQ_INT(int_at(&t, 4, r), 2 * next);
            CHECK(double_at(&t, 5, r) == (double)next / 4.0);
        }
        table_free(&t);
    }
    CHECK_EQ_INT(fetches, 3);
    CHECK_EQ_INT(next, 11);
    /* The cursor closed itself at the end. */
    dbp_error err;
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_FETCH, NULL, NULL, &err, NULL), DBP_E_MISUSE);
    CHECK(strstr(err.message, "no cursor") != NULL);

    /* Exactly batch_rows rows: one fetch, done. */
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN, "SELECT n FROM seq WHERE n <= 4", NULL,
                         NULL, NULL),
                 DBP_OK);
    table t;
    CHECK_EQ_INT(fetch(lease, 4, &t, &done), DBP_OK);
    CHECK_EQ_INT(t.rows, 4);
    CHECK_EQ_INT(done, 1);
    table_free(&t);
    dbp_lease_release(lease);
}

/* In a cursor the first batch fixes the types: a later batch that would
 * need another type is an error, not a silent change. */
static void test_cursor_later_batch_cannot_change_type(void)
{
    dbp_lease *lease = take_lease("db");
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN,
                         "SELECT column1 AS x FROM (VALUES (1), (2), (2.5))", NULL, NULL, NULL),
                 DBP_OK);
    table t;
    int done = 0;
    CHECK_EQ_INT(fetch(lease, 2, &t, &done), DBP_OK);
    CHECK(has_format(&t, 0, "l"));
    table_free(&t);
    CHECK_EQ_INT(fetch(lease, 2, &t, &done), DBP_E_DATA);
    /* A declared column with a bad value in the second batch. */
    exec_ok("CREATE TABLE later(flag BOOLEAN)");
    exec_ok("INSERT INTO later VALUES (1), (0), (7)");
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN, "SELECT flag FROM later", NULL, NULL,
                         NULL),
                 DBP_OK);
    CHECK_EQ_INT(fetch(lease, 2, &t, &done), DBP_OK);
    CHECK(has_format(&t, 0, "b"));
    CHECK_EQ_INT(t.rows, 2);
    table_free(&t);
    dbp_error err;
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_FETCH, NULL, NULL, &err, NULL), DBP_E_DATA);
    CHECK(strstr(err.message, "at row 3") != NULL);
    dbp_lease_release(lease);
}

static void test_cursor_misuse(void)
{
    dbp_lease *lease = take_lease("db");
    dbp_error err;
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_FETCH, NULL, NULL, &err, NULL), DBP_E_MISUSE);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN, "SELECT 1 AS a", NULL, NULL, NULL),
                 DBP_OK);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN, "SELECT 2 AS a", NULL, &err, NULL),
                 DBP_E_MISUSE);
    CHECK(strstr(err.message, "already open") != NULL);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_CLOSE, NULL, NULL, NULL, NULL), DBP_OK);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_FETCH, NULL, NULL, &err, NULL), DBP_E_MISUSE);
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_CLOSE, NULL, NULL, NULL, NULL), DBP_OK);
    /* A cursor left open is closed when the lease goes back. */
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN, "SELECT 1 AS a", NULL, NULL, NULL),
                 DBP_OK);
    dbp_lease_release(lease);
    lease = take_lease("db");
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_FETCH, NULL, NULL, &err, NULL), DBP_E_MISUSE);
    dbp_lease_release(lease);
    /* Cursors need a lease. */
    CHECK_EQ_INT(run_req("db", NULL, DBP_OP_CURSOR_OPEN, "SELECT 1", NULL, &err, NULL),
                 DBP_E_MISUSE);
}

/* ---- regressions: each of these once failed ---------------------------------------- */

/* db_pool.h, dbp_request_take_result: only QUERY and CURSOR_FETCH carry
 * rows; CURSOR_OPEN has none to take. */
static void test_cursor_open_yields_no_result(void)
{
    dbp_lease *lease = take_lease("db");
    dbp_request *req = NULL;
    CHECK_EQ_INT(run_req(NULL, lease, DBP_OP_CURSOR_OPEN, "SELECT i, t FROM typed", NULL, NULL,
                         &req),
                 DBP_OK);
    struct ArrowArrayStream stream = {0};
    CHECK_EQ_INT(dbp_request_take_result(req, &stream), DBP_E_MISUSE);
    CHECK(stream.release == NULL);
    dbp_request_unref(req);
    dbp_lease_release(lease);
}

/* Cancels until the request completes (a lost cancel would otherwise leave
 * an endless statement running); returns how many cancels it took. The
 * first cancel gets 10 s to land: valgrind on a busy machine can keep the
 * worker off the CPU for a while, and a lost cancel never lands at all. */
static int cancel_until_done(dbp_request *req)
{
    int cancels = 1;
    dbp_request_cancel(req);
    if (dbp_request_wait(req, 10000) == DBP_OK)
        return cancels;
    do {
        dbp_request_cancel(req);
        cancels++;
    } while (dbp_request_wait(req, 300) != DBP_OK && cancels < 30);
    CHECK(dbp_request_is_done(req));
    return cancels;
}

/* A cancel that arrives after the worker checked the cancel flag but before
 * sqlite3_step started is lost: sqlite3_interrupt only stops statements
 * already running, and a statement that yields no rows never looks at the
 * flag again. Cancelling at slightly different moments after submitting
 * hits that window now and then. */
static void test_cancel_as_statement_starts_is_not_lost(void)
{
    dbp_pool_options o = small_pool(1, 1);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "endless", "sqlite", memory_db, 1, &o, NULL),
                 DBP_OK);
    const char *endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                          "SELECT count(*) AS n FROM c";
    int lost = 0;
    for (int i = 0; i < 150 && !lost; i++) {
        dbp_request *req = NULL;
        CHECK_EQ_INT(dbp_request_new(&req, DBP_OP_QUERY, endless, strlen(endless), NULL, NULL),
                     DBP_OK);
        CHECK_EQ_INT(dbp_submit(mgr, "endless", req, NULL, NULL), DBP_OK);
        for (volatile int spin = 0; spin < (i % 50) * 200; spin++)
            ;
        lost += cancel_until_done(req) > 1;
        CHECK_EQ_INT(dbp_request_status(req, NULL), DBP_E_CANCELLED);
        dbp_request_unref(req);
    }
    CHECK_EQ_INT(lost, 0);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "endless", -1, NULL), DBP_OK);
}

/* sqlite.c cursor_open plans the result types from sqlite3_column_decltype
 * before the first sqlite3_step. A statement from the statement cache whose
 * table changed since is re-prepared by that first step, so the plan is the
 * old table's (and the saved decltype pointer dangles). The same SQL text
 * after a schema change must see the new declared type. */
static void test_cached_statement_follows_schema_change(void)
{
    dbp_pool_options o = small_pool(1, 1); /* one connection, one cache */
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "cache", "sqlite", memory_db, 1, &o, NULL), DBP_OK);
    const char *select = "SELECT c FROM sc";
    CHECK_EQ_INT(run_req("cache", NULL, DBP_OP_EXECUTE,
                         "CREATE TABLE sc(c INTEGER); INSERT INTO sc VALUES (1)", NULL, NULL,
                         NULL),
                 DBP_OK);
    dbp_request *req = NULL;
    table t;
    CHECK_EQ_INT(run_req("cache", NULL, DBP_OP_QUERY, select, NULL, NULL, &req), DBP_OK);
    CHECK_EQ_INT(table_from(req, &t), DBP_OK);
    CHECK(has_format(&t, 0, "l"));
    table_free(&t);
    dbp_request_unref(req);

    CHECK_EQ_INT(run_req("cache", NULL, DBP_OP_EXECUTE,
                         "DROP TABLE sc; CREATE TABLE sc(c TEXT); INSERT INTO sc VALUES ('x')",
                         NULL, NULL, NULL),
                 DBP_OK);
    dbp_error err;
    int rc = run_req("cache", NULL, DBP_OP_QUERY, select, NULL, &err, &req);
    if (rc != DBP_OK)
        fprintf(stderr, "  %s\n", err.message);
    CHECK_EQ_INT(rc, DBP_OK);
    if (rc == DBP_OK && table_from(req, &t) == DBP_OK) {
        CHECK(has_format(&t, 0, "vu"));
        CHECK(text_is(&t, 0, 0, "x"));
        table_free(&t);
    }
    dbp_request_unref(req);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "cache", -1, NULL), DBP_OK);
}

int main(void)
{
    dbp_error err;
    CHECK_EQ_INT(dbp_manager_new(&mgr, &err), DBP_OK);
    dbp_pool_options o = small_pool(1, 2);
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "db", "sqlite", memory_db, 1, &o, &err), DBP_OK);

    RUN(test_declared_types_choose_arrow_types);
    RUN(test_columns_without_values_or_type);
    RUN(test_untyped_integer_then_real_becomes_float64);
    RUN(test_exact_conversions_are_accepted);
    RUN(test_disagreeing_values_raise_data_errors);
    RUN(test_positional_parameters_of_every_kind);
    RUN(test_named_parameters);
    RUN(test_parameter_mismatches_are_misuse);
    RUN(test_execute_runs_a_script);
    RUN(test_query_needs_one_statement_with_columns);
    RUN(test_execute_many_is_all_or_nothing);
    RUN(test_errors_map_to_categories_and_sqlstates);
    RUN(test_transaction_kinds);
    RUN(test_inline_request_runs_during_submit);
    RUN(test_inline_request_obeys_its_deadline);
    RUN(test_inline_request_waits_its_turn_when_the_pool_is_busy);
    RUN(test_inline_request_with_a_queue_keeps_to_its_budget);
    RUN(test_memory_database_is_one_per_pool);
    RUN(test_read_only_missing_file_is_a_network_error);
    RUN(test_read_only_file_refuses_writes);
    RUN(test_cursor_fetches_batches_with_the_same_types);
    RUN(test_cursor_later_batch_cannot_change_type);
    RUN(test_cursor_misuse);
    /* Regressions (see the comments). */
    RUN(test_cursor_open_yields_no_result);
    RUN(test_cancel_as_statement_starts_is_not_lost);
    RUN(test_cached_statement_follows_schema_change);

    dbp_manager_free(mgr);
    return check_exit();
}
