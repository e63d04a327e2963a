/* fuzz_sqlite_values.c - libFuzzer harness for how the SQLite driver turns
 * stored values into Arrow (sqlite_read.c): the declared column type it plans
 * from (sqlite_plan_column) and the conversion of each value (append_value,
 * with the text parsers of textparse.c behind it), over a real SQLite.
 *
 * append_value is reached by including sqlite_read.c. Input:
 * the declared type as SQLite's sqlite3_column_decltype would report it
 * (bytes up to the first NUL), a flags byte (bit 0: the column's types are
 * already fixed by an earlier batch), then up to 16 values, each a storage
 * class byte (NULL, INTEGER, REAL, TEXT, BLOB) and its bytes. Each value is
 * bound to "SELECT ?1", stepped, and appended to one column through
 * append_value, as a fetch does. Findings: a sanitizer report, a result
 * other than OK or DATA, a failed append that changed the column's length,
 * or a broken Arrow array. */
#include "../../src/drivers/sqlite/sqlite_read.c"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t take(const uint8_t **p, const uint8_t *end, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes && *p < end; i++)
        v |= (uint64_t)*(*p)++ << (8 * i);
    return v;
}

/* Binds the next value of the input to ?1; 0 at the end of the input. */
static int bind_next(sqlite3_stmt *stmt, const uint8_t **p, const uint8_t *end)
{
    if (*p >= end)
        return 0;
    uint8_t storage = (uint8_t)take(p, end, 1);
    int64_t i;
    double d;
    uint64_t bits;
    size_t n;
    switch (storage % 5) {
    case 0:
        sqlite3_bind_null(stmt, 1);
        break;
    case 1:
        i = (int64_t)take(p, end, 8);
        sqlite3_bind_int64(stmt, 1, i);
        break;
    case 2:
        bits = take(p, end, 8);
        memcpy(&d, &bits, 8);
        sqlite3_bind_double(stmt, 1, d);
        break;
    default:
        n = (size_t)take(p, end, 1);
        if (n > (size_t)(end - *p))
            n = (size_t)(end - *p);
        if (storage % 5 == 3)
            sqlite3_bind_text(stmt, 1, (const char *)*p, (int)n, SQLITE_TRANSIENT);
        else
            sqlite3_bind_blob(stmt, 1, *p, (int)n, SQLITE_TRANSIENT);
        *p += n;
        break;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sqlite3 *db;
    static sqlite3_stmt *stmt;
    if (!db && (sqlite3_open(":memory:", &db) != SQLITE_OK ||
                sqlite3_prepare_v2(db, "SELECT ?1", -1, &stmt, NULL) != SQLITE_OK))
        abort();
    const uint8_t *p = data, *end = data + size;
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return 0;
    char *declared = strndup((const char *)data, (size_t)(nul - data));
    p = nul + 1;
    uint8_t flags = (uint8_t)take(&p, end, 1);
    column_plan plan = sqlite_plan_column(declared);
    plan.declared = declared;
    cursor cur = {.stmt = stmt, .n_cols = 1, .plans = &plan, .fetched_once = flags & 1};
    dbp_column col;
    if (dbp_column_init(&col, "v", plan.type) != DBP_OK)
        abort();
    for (int row = 0; row < 16 && bind_next(stmt, &p, end); row++) {
        if (sqlite3_step(stmt) != SQLITE_ROW)
            abort();
        dbp_error err;
        int64_t before = col.length;
        int rc = append_value(&cur, 0, &col, &err);
        if (rc == DBP_OK ? col.length != before + 1
                         : rc != DBP_E_DATA || col.length != before)
            abort();
        cur.rows_read++;
        sqlite3_reset(stmt);
    }
    sqlite3_clear_bindings(stmt);
    if (col.type.id != DBP_T_NULL)
        fuzz_check_column(&col);
    dbp_column_free(&col);
    free(declared);
    return 0;
}
