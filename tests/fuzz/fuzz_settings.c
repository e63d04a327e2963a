/* fuzz_settings.c - libFuzzer harness for the engines' connection
 * settings: each driver's parse_config (values checked and turned into
 * libpq keywords, a PostgreSQL URL checked and handed to libpq's parser,
 * FreeTDS's freetds.conf section written from the values), describe and
 * free_config, reached through dbp_driver_find as the pool reaches them.
 *
 * Input: byte 0 picks the engine; then up to 8 settings, each a key byte
 * (one of the engine's keys, or 0xff: the key's text follows up to a NUL)
 * and the value's text up to a NUL; then a byte for describe's buffer size.
 * Findings: a sanitizer report, a result other than OK or CONFIG, a
 * description that is not a NUL-terminated string within its buffer, or a
 * password in an error message or a description. To tell a password, the
 * harness appends a marker to every "password" value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

#define MARKER "S3cr3t-pw"

static const char *const engines[] = {"sqlite", "postgresql", "mssql", "redis"};
static const char *const keys[][20] = {
    {"database", "path", "mode", "busy_timeout_ms", "journal_mode", "foreign_keys",
     "statement_cache_size", NULL},
    {"dsn", "url", "host", "port", "dbname", "database", "user", "password",
     "statement_cache_size", "connect_timeout", "sslmode", "application_name", "options",
     "client_encoding", "hostaddr", "target_session_attrs", NULL},
    {"host", "server", "port", "instance", "database", "dbname", "user", "username",
     "password", "app_name", "login_timeout", "packet_size", "encrypt", "encryption",
     "ca_file", "crl_file", "check_hostname", NULL},
    {"host", "port", "unix_socket", "user", "username", "password", "client_name", "database",
     "db", "cluster", "tls", "ca_file", "cert_file", "key_file", "key_password", NULL},
};

/* The text up to the next NUL (or the end), as a new string. */
static char *take_string(const uint8_t **p, const uint8_t *end, const char *suffix)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    size_t n = (size_t)((nul ? nul : end) - *p);
    char *s = malloc(n + strlen(suffix) + 1);
    memcpy(s, *p, n);
    strcpy(s + n, suffix);
    *p += nul ? n + 1 : n;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t engine = data[0] % 4;
    const dbp_driver *driver = dbp_driver_find(engines[engine]);
    if (!driver)
        abort();
    size_t n_keys = 0;
    while (keys[engine][n_keys])
        n_keys++;
    const uint8_t *p = data + 1, *end = data + size;
    dbp_setting settings[8];
    char *owned[16];
    size_t n = 0, n_owned = 0;
    int marker_elsewhere = 0;
    for (; n < 8 && end - p >= 2; n++) {
        uint8_t pick = *p++;
        const char *key = pick == 0xff ? (owned[n_owned++] = take_string(&p, end, ""))
                                       : keys[engine][pick % n_keys];
        int is_password = strcmp(key, "password") == 0 || strcmp(key, "key_password") == 0;
        char *value = owned[n_owned++] = take_string(&p, end, is_password ? MARKER : "");
        marker_elsewhere |= strstr(key, MARKER) || (!is_password && strstr(value, MARKER));
        settings[n] = (dbp_setting){key, value};
    }
    size_t describe_size = p < end ? 1 + *p : 64;
    void *config = NULL;
    dbp_error err;
    memset(&err, 0, sizeof err);
    int rc = driver->parse_config(settings, n, &config, &err);
    if (rc != DBP_OK && rc != DBP_E_CONFIG)
        abort();
    if (rc != DBP_OK && !marker_elsewhere && strstr(err.message, MARKER))
        abort();
    if (rc == DBP_OK) {
        if (driver->describe) {
            char *buf = malloc(describe_size);
            driver->describe(config, buf, describe_size);
            if (!memchr(buf, 0, describe_size) || (!marker_elsewhere && strstr(buf, MARKER)))
                abort();
            free(buf);
        }
        driver->free_config(config);
    }
    while (n_owned)
        free(owned[--n_owned]);
    return 0;
}
