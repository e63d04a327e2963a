/* drivers.c - the engines compiled into this build (meson feature options
 * decide which), found by name. */
#include <string.h>

#include "driver.h"

#if DBP_HAVE_SQLITE
extern const dbp_driver dbp_sqlite_driver;
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
    {NULL, NULL},
};

static const char *const engines[] = {
#if DBP_HAVE_SQLITE
    "sqlite",
#endif
    NULL,
};

const dbp_driver *dbp_driver_find(const char *engine)
{
    for (size_t i = 0; registry[i].name; i++)
        if (strcmp(registry[i].name, engine) == 0)
            return registry[i].driver;
    return NULL;
}

const char *const *dbp_engines(void) { return engines; }
