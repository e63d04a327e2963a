/* tds_conf.h - per-pool FreeTDS settings through a private freetds.conf.
 *
 * db-lib (FreeTDS 1.3) has no login-record setter for TLS (DBSETLENCRYPT is
 * a stub; DBSETENCRYPTION arrived in 1.4.6), the port, the CA file or the
 * connect timeout: those are read from freetds.conf sections only. The
 * driver therefore keeps one section per pool in a file of its own, a
 * memory file that exists in no directory (tds_conf.c), named once with
 * dbsetifile() (which FreeTDS searches before $FREETDSCONF and the system
 * file), and opens connections by section name. Each connection thus gets
 * exactly its pool's settings; no environment variable changes, no other
 * file is read for these servers, and no file is ever left on disk. The
 * password is not in it: it goes in the login record. */
#ifndef DBP_TDS_CONF_H
#define DBP_TDS_CONF_H

#include <stddef.h>

#include "db_pool.h"

/* Adds a section whose lines are `body` ("\tkey = value\n" ...) and writes
 * its server name (for dbopen) into `name`. */
int tds_conf_add(const char *body, char *name, size_t name_size, dbp_error *err);
/* Drops the section (the memory file, one descriptor, stays while the
 * process lives). */
void tds_conf_remove(const char *name);

/* Held (shared) around dbopen: the file's location only changes while
 * nobody opens a connection. */
void tds_conf_open_begin(void);
void tds_conf_open_end(void);

/* 1 when `value` can be written as a freetds.conf value unchanged (no
 * line breaks, comment characters or doubled spaces, which the parser
 * would cut or fold). */
int tds_conf_value_ok(const char *value);

#endif
