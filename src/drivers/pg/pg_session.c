/* pg_session.c - session state a caller may leave on a PostgreSQL
 * connection, and the reset that clears it before the next caller.
 *
 * The driver notes, from each statement's text, what it may have changed:
 * a statement starting with SET (not SET LOCAL), RESET, LISTEN, DECLARE or
 * PREPARE, set_config(), CREATE TEMP ..., advisory locks. The reset on
 * release then sends only the commands that undo those, in one round trip,
 * and nothing at all after plain statements (UPDATE ... SET included). A
 * change made inside a function body is not seen in the text:
 * reset_on_release="always" covers that. The reset never uses DISCARD ALL,
 * which would drop the driver's prepared-statement cache. */
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

/* The position of the first word at or after i, past spaces and comments. */
static size_t skip_blank(const char *sql, size_t len, size_t i)
{
    for (;;) {
        while (i < len && isspace((unsigned char)sql[i]))
            i++;
        if (i + 1 < len && sql[i] == '-' && sql[i + 1] == '-') {
            while (i < len && sql[i] != '\n')
                i++;
        } else if (i + 1 < len && sql[i] == '/' && sql[i + 1] == '*') {
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < len && !end; j++)
                if (sql[j] == '*' && sql[j + 1] == '/')
                    end = sql + j + 2;
            i = end ? (size_t)(end - sql) : len;
        } else {
            return i;
        }
    }
}

/* What the statement starting at i may change, judged by its first words:
 * SET (not SET LOCAL, which ends with its transaction) and RESET, LISTEN,
 * DECLARE (a cursor that may be WITH HOLD), PREPARE. */
static unsigned statement_changes(const char *sql, size_t len, size_t i)
{
    i = skip_blank(sql, len, i);
    if (word_at(sql, len, i, "set"))
        return word_at(sql, len, skip_blank(sql, len, i + 3), "local") ? 0 : PG_SESSION_SETTINGS;
    if (word_at(sql, len, i, "reset"))
        return PG_SESSION_SETTINGS;
    if (word_at(sql, len, i, "listen"))
        return PG_SESSION_LISTEN;
    if (word_at(sql, len, i, "declare"))
        return PG_SESSION_CURSORS;
    if (word_at(sql, len, i, "prepare"))
        return PG_SESSION_PREPARED;
    return 0;
}

/* TEMP or TEMPORARY as in CREATE [LOCAL|GLOBAL] TEMP ... or SELECT ... INTO
 * TEMP ...: the word before it says so (a column named temp does not). */
static int creates_temp(const char *sql, size_t len)
{
    static const char *const before[] = {"create", "local", "global", "into"};
    for (size_t i = 0; i < len; i++) {
        if (!word_at(sql, len, i, "temp") && !word_at(sql, len, i, "temporary"))
            continue;
        size_t j = i;
        while (j > 0 && isspace((unsigned char)sql[j - 1]))
            j--;
        for (size_t k = 0; k < sizeof before / sizeof *before; k++) {
            size_t n = strlen(before[k]);
            if (j >= n && word_at(sql, len, j - n, before[k]))
                return 1;
        }
    }
    return 0;
}

unsigned pg_session_changes(const char *sql, size_t len)
{
    unsigned changes = statement_changes(sql, len, 0);
    for (size_t i = 0; i < len; i++) /* each statement of a script */
        if (sql[i] == ';')
            changes |= statement_changes(sql, len, i + 1);
    if (dbp_text_mentions(sql, len, "set_config"))
        changes |= PG_SESSION_SETTINGS;
    if (creates_temp(sql, len))
        changes |= PG_SESSION_TEMP;
    if (dbp_text_mentions(sql, len, "advisory"))
        changes |= PG_SESSION_ADVISORY;
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
