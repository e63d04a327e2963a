#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const category_names[] = {
    [DBP_OK] = "ok",
    [DBP_E_TIMEOUT] = "timeout",
    [DBP_E_AUTH] = "auth",
    [DBP_E_NETWORK] = "network",
    [DBP_E_SERVER] = "server",
    [DBP_E_PROTOCOL] = "protocol",
    [DBP_E_NOMEM] = "no-memory",
    [DBP_E_MISUSE] = "misuse",
    [DBP_E_CLOSED] = "closed",
    [DBP_E_NOT_FOUND] = "not-found",
    [DBP_E_EXISTS] = "exists",
    [DBP_E_POOL_FULL] = "pool-full",
    [DBP_E_CANCELLED] = "cancelled",
    [DBP_E_DATA] = "data",
    [DBP_E_CONFIG] = "config",
    [DBP_E_UNAVAILABLE] = "unavailable",
    [DBP_E_OUTCOME_UNKNOWN] = "outcome-unknown",
    [DBP_E_QUERY_TIMEOUT] = "query-timeout",
};

const char *dbp_category_name(int category)
{
    if (category < 0 || (size_t)category >= sizeof category_names / sizeof *category_names ||
        !category_names[category])
        return "unknown";
    return category_names[category];
}

int dbp_error_set(dbp_error *err, int category, int native_code, const char *sqlstate,
                  const char *fmt, ...)
{
    if (!err)
        return category;
    err->category = category;
    err->native_code = native_code;
    err->detail[0] = err->hint[0] = '\0';
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate ? sqlstate : "");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof err->message)
        dbp_utf8_trim(err->message);
    return category;
}

void dbp_utf8_trim(char *text)
{
    size_t len = strlen(text);
    size_t start = len; /* where the last, maybe partial, sequence begins */
    while (start > 0 && ((unsigned char)text[start - 1] & 0xC0) == 0x80 && len - start < 3)
        start--;
    if (start == 0 || ((unsigned char)text[start - 1] & 0x80) == 0)
        return; /* ends in ASCII (or is all continuation bytes: left as is) */
    unsigned char lead = (unsigned char)text[start - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (start - 1) < need)
        text[start - 1] = '\0';
}

int dbp_error_nomem(dbp_error *err)
{
    return dbp_error_set(err, DBP_E_NOMEM, 0, NULL, "out of memory");
}

void dbp_error_clear(dbp_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}
