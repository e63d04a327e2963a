/* textbuf.c - see textbuf.h. */
#include "textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static int reserve(dbp_textbuf *t, size_t extra)
{
    if (t->failed)
        return 0;
    if (t->len + extra + 1 <= t->cap)
        return 1;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + extra + 1)
        cap *= 2;
    char *grown = dbp_realloc(t->data, cap);
    if (!grown) {
        t->failed = 1;
        return 0;
    }
    t->data = grown;
    t->cap = cap;
    return 1;
}

void dbp_textbuf_add(dbp_textbuf *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

void dbp_textbuf_str(dbp_textbuf *t, const char *s) { dbp_textbuf_add(t, s, strlen(s)); }

void dbp_textbuf_printf(dbp_textbuf *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void dbp_textbuf_identifier(dbp_textbuf *t, const char *name, char open, char close, int dotted)
{
    dbp_textbuf_add(t, &open, 1);
    for (const char *s = name; *s; s++) {
        if (dotted && *s == '.') {
            char sep[3] = {close, '.', open};
            dbp_textbuf_add(t, sep, 3);
            continue;
        }
        if (*s == close)
            dbp_textbuf_add(t, &close, 1);
        dbp_textbuf_add(t, s, 1);
    }
    dbp_textbuf_add(t, &close, 1);
}

void dbp_textbuf_table_columns(dbp_textbuf *t, const char *table, const char *const *columns,
                               size_t n, char open, char close)
{
    dbp_textbuf_identifier(t, table, open, close, 1);
    for (size_t i = 0; i < n; i++) {
        dbp_textbuf_str(t, i ? ", " : " (");
        dbp_textbuf_identifier(t, columns[i], open, close, 0);
    }
    dbp_textbuf_str(t, ")");
}

void dbp_textbuf_select_columns(dbp_textbuf *t, const char *table, const char *const *columns,
                                size_t n, char open, char close)
{
    dbp_textbuf_str(t, "SELECT ");
    for (size_t i = 0; i < n; i++) {
        dbp_textbuf_str(t, i ? ", " : "");
        dbp_textbuf_identifier(t, columns[i], open, close, 0);
    }
    dbp_textbuf_str(t, " FROM ");
    dbp_textbuf_identifier(t, table, open, close, 1);
}

void dbp_textbuf_clear(dbp_textbuf *t)
{
    t->len = 0;
    if (t->data)
        t->data[0] = '\0';
}

void dbp_textbuf_free(dbp_textbuf *t)
{
    dbp_free(t->data);
    *t = (dbp_textbuf){0};
}
