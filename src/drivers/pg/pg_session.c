/* pg_session.c - session state a caller may leave on a PostgreSQL
 * connection, and the reset that clears it before the next caller.
 *
 * The driver notes, from each statement's text, what it may have changed
 * (settings other than SET LOCAL, temporary objects, LISTEN, advisory locks,
 * cursors, prepared statements of the caller's own); the reset on release then sends only the
 * commands that undo those, in one round trip, and nothing at all after
 * plain statements. A change made inside a function body is not seen in
 * the text: reset_on_release="always" covers that. The reset never uses
 * DISCARD ALL, which would drop the driver's prepared-statement cache. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "pg_internal.h"
#include "textbuf.h"
#include "textparse.h"

static int is_ident(char ch) { return isalnum((unsigned char)ch) || ch == '_'; }

/* Whether `sql` has `word` at i as a whole word, any case. */
static int word_at(const char *sql, size_t len, size_t i, const char *word)
{
    size_t n = strlen(word);
    return i + n <= len && strncasecmp(sql + i, word, n) == 0 &&
           (i == 0 || !is_ident(sql[i - 1])) && (i + n == len || !is_ident(sql[i + n]));
}

/* Whether `word` occurs in `sql` as a whole word, any case. */
static int has_word(const char *sql, size_t len, const char *word)
{
    for (size_t i = 0; i < len; i++)
        if (word_at(sql, len, i, word))
            return 1;
    return 0;
}

/* SET, except SET LOCAL (which ends with its transaction, and the pool
 * rolls back what is open). */
static int has_session_set(const char *sql, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!word_at(sql, len, i, "set"))
            continue;
        size_t j = i + 3;
        while (j < len && isspace((unsigned char)sql[j]))
            j++;
        if (!word_at(sql, len, j, "local"))
            return 1;
    }
    return 0;
}

unsigned pg_session_changes(const char *sql, size_t len)
{
    unsigned changes = 0;
    if (has_session_set(sql, len) || dbp_text_mentions(sql, len, "set_config"))
        changes |= PG_SESSION_SETTINGS;
    if (has_word(sql, len, "temp") || has_word(sql, len, "temporary"))
        changes |= PG_SESSION_TEMP;
    if (has_word(sql, len, "listen"))
        changes |= PG_SESSION_LISTEN;
    if (dbp_text_mentions(sql, len, "advisory"))
        changes |= PG_SESSION_ADVISORY;
    if (has_word(sql, len, "declare"))
        changes |= PG_SESSION_CURSORS;
    if (has_word(sql, len, "prepare"))
        changes |= PG_SESSION_PREPARED;
    return changes;
}

int pg_session_changed(void *conn) { return ((pg_conn *)conn)->session_changes != 0; }

int pg_reset(void *conn, int always, const dbp_exec_ctx *ctx, int *did_reset, dbp_error *err)
{
    pg_conn *c = conn;
    unsigned changes = always ? PG_SESSION_ALL & ~PG_SESSION_LISTEN : 0;
    changes |= c->session_changes;
    *did_reset = changes != 0;
    if (!changes)
        return DBP_OK;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "RESET ALL; DISCARD SEQUENCES");
    if (changes & PG_SESSION_TEMP)
        dbp_textbuf_str(&sql, "; DISCARD TEMP");
    if (changes & PG_SESSION_LISTEN) /* never on a standby, where LISTEN fails anyway */
        dbp_textbuf_str(&sql, "; UNLISTEN *");
    if (changes & PG_SESSION_ADVISORY)
        dbp_textbuf_str(&sql, "; SELECT pg_advisory_unlock_all()");
    if (changes & PG_SESSION_CURSORS)
        dbp_textbuf_str(&sql, "; CLOSE ALL");
    if (changes & PG_SESSION_PREPARED)
        dbp_textbuf_str(&sql, "; DEALLOCATE ALL");
    int rc = sql.failed ? dbp_error_nomem(err) : DBP_OK;
    if (rc == DBP_OK) {
        pg_call_begin(c, ctx);
        rc = pg_exec(c, sql.data, err);
        pg_call_end(c);
    }
    dbp_textbuf_free(&sql);
    if (changes & PG_SESSION_PREPARED)
        pg_forget_statements(c); /* DEALLOCATE ALL took ours too */
    if (rc == DBP_OK)
        c->session_changes = 0;
    return rc;
}
