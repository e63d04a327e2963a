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
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return category;
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
