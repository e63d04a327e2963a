/* drivers.c - the engines compiled into this build (meson feature options
 * decide which), found by name. */
#include <string.h>

#include "driver.h"

#if DBP_HAVE_SQLITE
extern const dbp_driver dbp_sqlite_driver;
#endif
#if DBP_HAVE_PG
extern const dbp_driver dbp_pg_driver;
#endif
#if DBP_HAVE_MSSQL
extern const dbp_driver dbp_mssql_driver;
#endif
#if DBP_HAVE_MYSQL
extern const dbp_driver dbp_mysql_driver;
#endif
#if DBP_HAVE_REDIS
extern const dbp_driver dbp_redis_driver;
#endif

/* Aliases map the names users type to one driver. */
static const struct {
    const char *name;
    const dbp_driver *driver;
} registry[] = {
#if DBP_HAVE_SQLITE
    {"sqlite", &dbp_sqlite_driver},
    {"sqlite3", &dbp_sqlite_driver},
#endif
#if DBP_HAVE_PG
    {"postgresql", &dbp_pg_driver},
    {"postgres", &dbp_pg_driver},
#endif
#if DBP_HAVE_MSSQL
    {"mssql", &dbp_mssql_driver},
    {"sqlserver", &dbp_mssql_driver},
#endif
#if DBP_HAVE_MYSQL
    {"mysql", &dbp_mysql_driver},
    {"mariadb", &dbp_mysql_driver},
#endif
#if DBP_HAVE_REDIS
    {"redis", &dbp_redis_driver},
#endif
    {NULL, NULL},
};

static const char *const engines[] = {
#if DBP_HAVE_SQLITE
    "sqlite",
#endif
#if DBP_HAVE_PG
    "postgresql",
#endif
#if DBP_HAVE_MSSQL
    "mssql",
#endif
#if DBP_HAVE_MYSQL
    "mysql",
#endif
#if DBP_HAVE_REDIS
    "redis",
#endif
    NULL,
};

/* Drivers added at run time (the C tests' fault-injecting engine). */
static const dbp_driver *extra[8];
static size_t n_extra;

int dbp_driver_register(const dbp_driver *driver)
{
    if (n_extra == sizeof extra / sizeof *extra || driver->abi_version != DBP_DRIVER_ABI_VERSION ||
        (driver->reset && !driver->session_changed))
        return DBP_E_MISUSE;
    extra[n_extra++] = driver;
    return DBP_OK;
}

const dbp_driver *dbp_driver_find(const char *engine)
{
    for (size_t i = 0; registry[i].name; i++)
        if (strcmp(registry[i].name, engine) == 0)
            return registry[i].driver;
    for (size_t i = 0; i < n_extra; i++)
        if (strcmp(extra[i]->name, engine) == 0)
            return extra[i];
    return NULL;
}

const char *const *dbp_engines(void) { return engines; }

int dbp_engine_runs_inline(const char *engine)
{
    const dbp_driver *d = engine ? dbp_driver_find(engine) : NULL;
    return d && (d->caps & DBP_CAP_INLINE);
}
