/* textbuf.h - a growable byte string for building SQL and COPY data. An
 * allocation failure sets `failed` and turns later appends into no-ops, so
 * callers check once at the end. */
#ifndef DBP_TEXTBUF_H
#define DBP_TEXTBUF_H

#include <stddef.h>

typedef struct dbp_textbuf {
    char *data; /* NUL-terminated while not failed */
    size_t len;
    size_t cap;
    int failed;
} dbp_textbuf;

void dbp_textbuf_add(dbp_textbuf *t, const char *s, size_t n);
void dbp_textbuf_str(dbp_textbuf *t, const char *s);
void dbp_textbuf_printf(dbp_textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `name` as a quoted identifier, `quote` doubled inside: "a""b" or [a]]b].
 * With `dotted`, each dot-separated part is quoted on its own (schema.table). */
void dbp_textbuf_identifier(dbp_textbuf *t, const char *name, char open, char close, int dotted);
/* `table (col1, col2, ...)`, every name quoted as dbp_textbuf_identifier
 * does (the table's dot-separated parts each on their own). */
void dbp_textbuf_table_columns(dbp_textbuf *t, const char *table, const char *const *columns,
                               size_t n, char open, char close);
/* `SELECT "col1", "col2" FROM "table"`: how bulk loaders learn the types
 * of the columns they are about to fill. */
void dbp_textbuf_select_columns(dbp_textbuf *t, const char *table, const char *const *columns,
                                size_t n, char open, char close);
void dbp_textbuf_clear(dbp_textbuf *t); /* empties, keeps the memory */
void dbp_textbuf_free(dbp_textbuf *t);

#endif
