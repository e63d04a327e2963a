/* tds_conf.c - the driver's own freetds.conf (see tds_conf.h).
 *
 * The file is a memory file (memfd_create): it has no name in any
 * directory, so nobody else can read or replace it and nothing is left
 * behind when the process ends, however it ends. FreeTDS opens it by the
 * path /proc/self/fd/N. Every change writes a new memory file whole and
 * puts it behind that same descriptor number with dup3(), so a connection
 * being opened reads either the old or the new version, never half of
 * one, and the path FreeTDS holds never changes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sybfront.h>
#include <sybdb.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "tds_conf.h"
#include "textbuf.h"

typedef struct section {
    struct section *next;
    char name[64];
    char *body;
} section;

static pthread_mutex_t conf_mu = PTHREAD_MUTEX_INITIALIZER;
/* dbopen holds it shared; naming the file to db-lib holds it exclusive. */
static pthread_rwlock_t open_lock = PTHREAD_RWLOCK_INITIALIZER;
static section *sections;
static int conf_fd = -1; /* what /proc/self/fd/<conf_fd> shows FreeTDS */
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

/* A new memory file holding every section (conf_mu held); -1 on failure. */
static int write_sections(dbp_error *err)
{
    dbp_textbuf text = {0};
    dbp_textbuf_str(&text, "# written by db-pool: one section per mssql pool\n");
    for (section *s = sections; s; s = s->next)
        dbp_textbuf_printf(&text, "[%s]\n%s", s->name, s->body);
    if (text.failed) {
        dbp_textbuf_free(&text);
        dbp_error_nomem(err);
        return -1;
    }
    int fd = memfd_create("db-pool-freetds.conf", MFD_CLOEXEC);
    int e = fd < 0 ? errno : 0;
    for (size_t done = 0; fd >= 0 && done < text.len;) {
        ssize_t n = write(fd, text.data + done, text.len - done);
        if (n > 0) {
            done += (size_t)n;
        } else if (errno != EINTR) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        dbp_error_set(err, DBP_E_CONFIG, e, NULL,
                      "cannot write the FreeTDS settings to a memory file: %s", strerror(e));
    dbp_textbuf_free(&text);
    return fd;
}

/* Puts the sections behind conf_fd; the first time, names the file to
 * db-lib (conf_mu held). */
static int publish(dbp_error *err)
{
    int fd = write_sections(err);
    if (fd < 0)
        return err ? err->category : DBP_E_CONFIG;
    if (conf_fd >= 0) {
        int rc = dup3(fd, conf_fd, O_CLOEXEC) < 0 ? errno : 0;
        close(fd);
        if (rc)
            return dbp_error_set(err, DBP_E_CONFIG, rc, NULL,
                                 "cannot replace the FreeTDS settings: %s", strerror(rc));
        return DBP_OK;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (access(path, R_OK) != 0) {
        int e = errno;
        close(fd);
        return dbp_error_set(err, DBP_E_CONFIG, e, NULL,
                             "FreeTDS cannot read its settings through %s: %s (is /proc "
                             "mounted?)",
                             path, strerror(e));
    }
    conf_fd = fd;
    pthread_rwlock_wrlock(&open_lock);
    dbsetifile(path);
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
    snprintf(s->name, sizeof s->name, "dbpool_%ld_%lu", (long)getpid(), ++next_id);
    s->next = sections;
    sections = s;
    int rc = publish(err);
    if (rc != DBP_OK)
        sections = s->next;
    else
        snprintf(name, name_size, "%s", s->name);
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
    dbp_error ignored;
    publish(&ignored); /* a stale extra section harms nobody */
    pthread_mutex_unlock(&conf_mu);
}
