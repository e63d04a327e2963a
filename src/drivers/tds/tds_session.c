/* tds_session.c - session state a caller may leave on an MSSQL connection.
 *
 * db-lib cannot send sp_reset_connection (the RESETCONNECTION flag of the
 * TDS header is not reachable through it), and the server's defaults for
 * SET options depend on the login and the server's configuration, so no
 * batch of ours could restore them faithfully. So a connection whose
 * session a statement may have changed is not reset but replaced: the
 * reset reports that it cannot, and the pool closes the connection and
 * opens a fresh one when needed. What counts as a change, judged from the
 * statement's words: SET of a session option, USE, temporary tables (#t),
 * application roles and session context. Transactions are rolled back and
 * the isolation level restored by tds.c, whatever this says. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "tds_internal.h"
#include "textparse.h"

/* SET options that outlive a batch (SET @variable does not). */
static const char *const session_options[] = {
    "ansi_", "arith", "concat_null", "context_info", "cursor_close", "datefirst",
    "dateformat", "deadlock_priority", "fips_flagger", "fmtonly", "forceplan",
    "identity_insert", "implicit_transactions", "language", "lock_timeout", "nocount",
    "noexec", "numeric_roundabort", "offsets", "parseonly", "query_governor",
    "quoted_identifier", "remote_proc", "rowcount", "showplan", "statistics", "textsize",
    "xact_abort",
};

static int is_ident(char ch) { return isalnum((unsigned char)ch) || ch == '_' || ch == '#'; }

/* Whether `sql` has the word `word` at i (case-insensitively). */
static int word_at(const char *sql, size_t len, size_t i, const char *word)
{
    size_t n = strlen(word);
    return i + n <= len && strncasecmp(sql + i, word, n) == 0 &&
           (i == 0 || !is_ident(sql[i - 1])) && (i + n == len || !is_ident(sql[i + n]));
}

/* SET followed by a session option at i. */
static int sets_option(const char *sql, size_t len, size_t i)
{
    if (!word_at(sql, len, i, "set"))
        return 0;
    size_t j = i + 3;
    while (j < len && isspace((unsigned char)sql[j]))
        j++;
    for (size_t k = 0; k < sizeof session_options / sizeof *session_options; k++) {
        size_t n = strlen(session_options[k]);
        if (j + n <= len && strncasecmp(sql + j, session_options[k], n) == 0)
            return 1;
    }
    return 0;
}

int tds_session_changes(const char *sql, size_t len)
{
    int in_string = 0; /* inside '...' ('' inside toggles twice) */
    for (size_t i = 0; i < len; i++) {
        char ch = sql[i];
        if (ch == '\'')
            in_string = !in_string;
        if (in_string)
            continue;
        /* a temporary table or procedure: #name or ##name */
        if (ch == '#' && i + 1 < len && (isalpha((unsigned char)sql[i + 1]) || sql[i + 1] == '#' ||
                                         sql[i + 1] == '_'))
            return 1;
        if ((ch == 's' || ch == 'S') && sets_option(sql, len, i))
            return 1;
        if ((ch == 'u' || ch == 'U') && word_at(sql, len, i, "use"))
            return 1;
    }
    return dbp_text_mentions(sql, len, "sp_setapprole") ||
           dbp_text_mentions(sql, len, "sp_set_session_context");
}

int tds_session_changed(void *conn) { return ((tds_conn *)conn)->session_changed; }

int tds_reset(void *conn, int always, const dbp_exec_ctx *ctx, int *did_reset, dbp_error *err)
{
    (void)ctx;
    tds_conn *c = conn;
    *did_reset = 0;
    if (!always && !c->session_changed)
        return DBP_OK;
    return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                         "the session was changed and db-lib cannot reset it: the connection "
                         "is replaced");
}
