/* tds_conf.c - the driver's own freetds.conf (see tds_conf.h).
 *
 * The file lives in a private directory (mkdtemp, mode 0700) so nobody else
 * can redirect a pool to another host. It is rewritten whole through a
 * temporary file and rename(), so a connection being opened reads either
 * the old or the new version, never half of one. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sybfront.h>
#include <sybdb.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "tds_conf.h"

typedef struct section {
    struct section *next;
    char name[64];
    char *body;
} section;

static pthread_mutex_t conf_mu = PTHREAD_MUTEX_INITIALIZER;
/* dbopen holds it shared; changing the file's location holds it exclusive. */
static pthread_rwlock_t open_lock = PTHREAD_RWLOCK_INITIALIZER;
static section *sections;
static char dir_path[PATH_MAX];
static char file_path[PATH_MAX + 32];
static unsigned long next_id;

void tds_conf_open_begin(void) { pthread_rwlock_rdlock(&open_lock); }
void tds_conf_open_end(void) { pthread_rwlock_unlock(&open_lock); }

int tds_conf_value_ok(const char *value)
{
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '#' || *p == ';' || *p == '[' || *p == ']' ||
            *p == 0x7f)
            return 0;
        if (*p == ' ' && p[1] == ' ')
            return 0;
    }
    return *value != ' ' && (!*value || value[strlen(value) - 1] != ' ');
}

/* Writes every section (conf_mu held). */
static int write_file(dbp_error *err)
{
    char tmp[sizeof file_path + 8];
    snprintf(tmp, sizeof tmp, "%s.new", file_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return dbp_error_set(err, DBP_E_CONFIG, errno, NULL,
                             "cannot write the FreeTDS settings file %s: %s", tmp,
                             strerror(errno));
    fputs("# written by db-pool: one section per mssql pool\n", f);
    for (section *s = sections; s; s = s->next)
        fprintf(f, "[%s]\n%s", s->name, s->body);
    int failed = ferror(f);
    if (fclose(f) != 0 || failed || rename(tmp, file_path) != 0) {
        int e = errno;
        unlink(tmp);
        return dbp_error_set(err, DBP_E_CONFIG, e, NULL,
                             "cannot write the FreeTDS settings file %s: %s", file_path,
                             strerror(e));
    }
    return DBP_OK;
}

/* Creates the private directory and points db-lib at the file in it
 * (conf_mu held, no section yet). */
static int make_dir(dbp_error *err)
{
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir || strlen(tmpdir) > PATH_MAX - 64)
        tmpdir = "/tmp";
    snprintf(dir_path, sizeof dir_path, "%s/db-pool-freetds-XXXXXX", tmpdir);
    if (!mkdtemp(dir_path)) {
        int e = errno;
        dir_path[0] = '\0';
        return dbp_error_set(err, DBP_E_CONFIG, e, NULL,
                             "cannot create a directory for the FreeTDS settings in %s: %s",
                             tmpdir, strerror(e));
    }
    snprintf(file_path, sizeof file_path, "%s/freetds.conf", dir_path);
    pthread_rwlock_wrlock(&open_lock);
    dbsetifile(file_path);
    pthread_rwlock_unlock(&open_lock);
    return DBP_OK;
}

int tds_conf_add(const char *body, char *name, size_t name_size, dbp_error *err)
{
    section *s = dbp_calloc(1, sizeof *s);
    char *copy = dbp_strdup(body);
    if (!s || !copy) {
        dbp_free(s);
        dbp_free(copy);
        return dbp_error_nomem(err);
    }
    s->body = copy;
    pthread_mutex_lock(&conf_mu);
    int rc = sections ? DBP_OK : make_dir(err);
    if (rc == DBP_OK) {
        snprintf(s->name, sizeof s->name, "dbpool_%ld_%lu", (long)getpid(), ++next_id);
        s->next = sections;
        sections = s;
        rc = write_file(err);
        if (rc != DBP_OK)
            sections = s->next;
    }
    if (rc == DBP_OK)
        snprintf(name, name_size, "%s", s->name);
    if (rc != DBP_OK && !sections && dir_path[0]) {
        rmdir(dir_path);
        dir_path[0] = '\0';
    }
    pthread_mutex_unlock(&conf_mu);
    if (rc != DBP_OK) {
        dbp_free(s->body);
        dbp_free(s);
    }
    return rc;
}

void tds_conf_remove(const char *name)
{
    pthread_mutex_lock(&conf_mu);
    for (section **p = &sections; *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            section *s = *p;
            *p = s->next;
            dbp_free(s->body);
            dbp_free(s);
            break;
        }
    }
    if (sections) {
        dbp_error ignored;
        write_file(&ignored); /* a stale extra section harms nobody */
    } else if (dir_path[0]) {
        unlink(file_path);
        rmdir(dir_path);
        dir_path[0] = '\0';
    }
    pthread_mutex_unlock(&conf_mu);
}
