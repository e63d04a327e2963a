/* tds_settings.c - the MSSQL driver's settings: checked, split between the
 * login record (user, password, database, app name, packet size) and the
 * pool's freetds.conf section (host, port or instance, login timeout, TLS;
 * tds_conf.h says why those go there).
 *
 * encrypt=strict|require|off (alias encryption=; request, FreeTDS's
 * opportunistic default, and on/off booleans are accepted too): with
 * require or strict, or a ca_file, FreeTDS refuses a server that does not
 * offer TLS instead of logging in in plaintext; strict also verifies the
 * certificate (against the system's CAs unless ca_file names others) and
 * its host name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "tds_conf.h"
#include "tds_internal.h"
#include "textparse.h"

void tds_free_config(void *p)
{
    tds_config *cfg = p;
    if (!cfg)
        return;
    if (cfg->server[0])
        tds_conf_remove(cfg->server);
    dbp_free(cfg->host);
    dbp_free(cfg->user);
    dbp_free_secret(cfg->password);
    dbp_free(cfg->database);
    dbp_free(cfg->app_name);
    dbp_free(cfg);
}

static int int_setting(const char *key, const char *value, long lo, long hi, long *out,
                       dbp_error *err)
{
    return dbp_parse_setting_int("mssql", key, value, lo, hi, out, err);
}

static int bool_setting(const char *key, const char *value, int *out, dbp_error *err)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0)
            return *out = 1, DBP_OK;
        if (strcasecmp(value, no[i]) == 0)
            return *out = 0, DBP_OK;
    }
    return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "mssql setting %s must be on or off, got '%s'",
                         key, value);
}

typedef struct parsed_settings {
    const char *host, *instance, *ca_file, *crl_file;
    const char *encryption; /* FreeTDS's word: off, request, require; NULL: its default */
    int strict;             /* encrypt=strict: require, and a verified certificate */
    long port, login_timeout;
    int check_hostname; /* -1: FreeTDS's default */
} parsed_settings;

/* encrypt= (or encryption=): strict, require, off; request (FreeTDS's
 * default: TLS if the server offers it); on/off booleans. */
static int encrypt_setting(parsed_settings *ps, const char *key, const char *value,
                           dbp_error *err)
{
    int on = 0;
    ps->strict = strcasecmp(value, "strict") == 0;
    if (ps->strict)
        ps->encryption = "require";
    else if (strcasecmp(value, "off") == 0 || strcasecmp(value, "request") == 0 ||
             strcasecmp(value, "require") == 0)
        ps->encryption = value;
    else if (bool_setting(key, value, &on, NULL) == DBP_OK)
        ps->encryption = on ? "require" : "off";
    else
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "mssql %s must be strict, require or off (or request), got '%s'", key,
                             value);
    return DBP_OK;
}

/* What the TLS settings add up to: strict means a verified certificate
 * (the system's CAs unless ca_file names others) for the host; a CA file
 * means the user wants TLS, so a server without it is refused. */
static int settle_encryption(parsed_settings *ps, dbp_error *err)
{
    if (ps->strict) {
        if (ps->check_hostname == 0)
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "mssql encrypt=strict checks the certificate's host name: "
                                 "check_hostname=off contradicts it (use encrypt=require)");
        ps->check_hostname = 1;
        if (!ps->ca_file)
            ps->ca_file = "system";
    }
    if (ps->ca_file && ps->encryption && strcasecmp(ps->encryption, "off") == 0)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "mssql ca_file is for encrypted connections: encrypt=off "
                             "contradicts it");
    if (ps->ca_file && (!ps->encryption || strcasecmp(ps->encryption, "request") == 0))
        ps->encryption = "require";
    return DBP_OK;
}

static int apply_setting(tds_config *cfg, parsed_settings *ps, const char *key, const char *value,
                         dbp_error *err)
{
    char **target = NULL;
    if (strcmp(key, "host") == 0 || strcmp(key, "server") == 0) {
        ps->host = value;
    } else if (strcmp(key, "port") == 0) {
        return int_setting(key, value, 1, 65535, &ps->port, err);
    } else if (strcmp(key, "instance") == 0) {
        ps->instance = value;
    } else if (strcmp(key, "database") == 0 || strcmp(key, "dbname") == 0) {
        target = &cfg->database;
    } else if (strcmp(key, "user") == 0 || strcmp(key, "username") == 0) {
        target = &cfg->user;
    } else if (strcmp(key, "password") == 0) {
        target = &cfg->password;
    } else if (strcmp(key, "app_name") == 0 || strcmp(key, "application_name") == 0) {
        target = &cfg->app_name;
    } else if (strcmp(key, "login_timeout") == 0 || strcmp(key, "connect_timeout") == 0) {
        return int_setting(key, value, 1, 3600, &ps->login_timeout, err);
    } else if (strcmp(key, "packet_size") == 0) {
        return int_setting(key, value, 512, 32767, &cfg->packet_size, err);
    } else if (strcmp(key, "encrypt") == 0 || strcmp(key, "encryption") == 0) {
        return encrypt_setting(ps, key, value, err);
    } else if (strcmp(key, "ca_file") == 0 || strcmp(key, "cafile") == 0 ||
               strcmp(key, "sslrootcert") == 0) {
        ps->ca_file = value;
    } else if (strcmp(key, "crl_file") == 0) {
        ps->crl_file = value;
    } else if (strcmp(key, "check_hostname") == 0) {
        return bool_setting(key, value, &ps->check_hostname, err);
    } else {
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "unknown mssql setting '%s' (settings: host, port, instance, "
                             "database, user, password, app_name, login_timeout, packet_size, "
                             "encrypt, ca_file, crl_file, check_hostname)",
                             key);
    }
    if (target) {
        dbp_free(*target);
        if (!(*target = dbp_strdup(value)))
            return dbp_error_nomem(err);
    }
    return DBP_OK;
}

/* Appends "\tkey = value\n" to the section body, refusing values the
 * freetds.conf parser would read differently. */
static int conf_line(char *body, size_t size, const char *key, const char *value,
                     const char *setting, dbp_error *err)
{
    if (!tds_conf_value_ok(value))
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "mssql setting %s '%s' cannot be passed to FreeTDS: no line "
                             "breaks, '#', ';', brackets or doubled spaces",
                             setting, value);
    size_t used = strlen(body);
    int n = snprintf(body + used, size - used, "\t%s = %s\n", key, value);
    if (n < 0 || (size_t)n >= size - used)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "mssql setting %s is too long", setting);
    return DBP_OK;
}

static int section_body(const parsed_settings *ps, char *body, size_t size, dbp_error *err)
{
    char num[32];
    body[0] = '\0';
    int rc = conf_line(body, size, "host", ps->host, "host", err);
    if (rc == DBP_OK && ps->instance)
        rc = conf_line(body, size, "instance", ps->instance, "instance", err);
    if (rc == DBP_OK && !ps->instance) {
        snprintf(num, sizeof num, "%ld", ps->port);
        rc = conf_line(body, size, "port", num, "port", err);
    }
    if (rc == DBP_OK)
        rc = conf_line(body, size, "tds version", "7.4", "", err);
    if (rc == DBP_OK)
        rc = conf_line(body, size, "client charset", "UTF-8", "", err);
    if (rc == DBP_OK) {
        snprintf(num, sizeof num, "%ld", ps->login_timeout);
        rc = conf_line(body, size, "connect timeout", num, "login_timeout", err);
    }
    if (rc == DBP_OK && ps->encryption)
        rc = conf_line(body, size, "encryption", ps->encryption, "encryption", err);
    if (rc == DBP_OK && ps->ca_file)
        rc = conf_line(body, size, "ca file", ps->ca_file, "ca_file", err);
    if (rc == DBP_OK && ps->crl_file)
        rc = conf_line(body, size, "crl file", ps->crl_file, "crl_file", err);
    if (rc == DBP_OK && ps->check_hostname >= 0)
        rc = conf_line(body, size, "check certificate hostname",
                       ps->check_hostname ? "yes" : "no", "check_hostname", err);
    return rc;
}

int tds_parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    if (tds_dblib_init() != 0)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "FreeTDS db-lib failed to initialise");
    tds_config *cfg = dbp_calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    parsed_settings ps = {.host = "localhost", .port = 1433, .login_timeout = 15,
                          .check_hostname = -1};
    int rc = DBP_OK;
    for (size_t i = 0; i < n && rc == DBP_OK; i++)
        rc = apply_setting(cfg, &ps, settings[i].key, settings[i].value, err);
    if (rc == DBP_OK && (!cfg->user || !*cfg->user))
        rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                           "mssql needs a user (SQL Server logins; DOMAIN\\user for NTLM)");
    if (rc == DBP_OK && !cfg->app_name && !(cfg->app_name = dbp_strdup("db-pool")))
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK)
        rc = settle_encryption(&ps, err);
    if (rc == DBP_OK && !(cfg->host = dbp_strdup(ps.host)))
        rc = dbp_error_nomem(err);
    char body[2048];
    if (rc == DBP_OK)
        rc = section_body(&ps, body, sizeof body, err);
    if (rc == DBP_OK)
        rc = tds_conf_add(body, cfg->server, sizeof cfg->server, err);
    if (rc != DBP_OK) {
        tds_free_config(cfg);
        return rc;
    }
    if (ps.encryption)
        snprintf(cfg->encryption, sizeof cfg->encryption, "%s",
                 ps.strict ? "strict" : ps.encryption);
    cfg->encrypt_required = ps.encryption && strcasecmp(ps.encryption, "require") == 0;
    cfg->port = ps.instance ? 0 : ps.port;
    if (ps.instance)
        snprintf(cfg->where, sizeof cfg->where, "%s\\%s", ps.host, ps.instance);
    else
        snprintf(cfg->where, sizeof cfg->where, "%s:%ld", ps.host, ps.port);
    *out = cfg;
    return DBP_OK;
}

/* host:port/database; never the password. */
void tds_describe(const void *config, char *buf, size_t size)
{
    const tds_config *cfg = config;
    snprintf(buf, size, "%s/%s", cfg->where, cfg->database ? cfg->database : "");
}
