/* redis_tls.c - TLS on the driver's own sockets, with OpenSSL (hiredis 0.14
 * has none, and the driver does its own I/O anyway): the context a pool's
 * settings make, the handshake within the call's deadline, and reads and
 * writes that behave like recv/send on a non-blocking socket.
 *
 * Modes (the uniform `tls` setting): require encrypts without checking the
 * certificate; verify-ca checks it against ca_file ("system": the system's
 * CAs); verify-full also checks that it names the host connected to. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <string.h>

#include "error.h"
#include "redis_internal.h"

static int config_error(const char *what, const char *path, dbp_error *err)
{
    char reason[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "redis TLS: cannot load %s '%s': %s", what,
                         path, reason[0] ? reason : "unknown reason");
}

int rd_tls_context(rd_config *cfg, dbp_error *err)
{
    if (cfg->tls == RD_TLS_OFF)
        return DBP_OK;
    if (cfg->unix_socket)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "redis TLS runs over TCP only: a unix socket cannot use it");
    if (cfg->tls != RD_TLS_REQUIRE && !cfg->ca_file)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "redis tls verify-ca and verify-full need ca_file");
    if (!!cfg->cert_file != !!cfg->key_file)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "redis TLS: cert_file and key_file go together");
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return dbp_error_nomem(err);
    cfg->tls_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* SSL_write then behaves like send(): part of the buffer, and the rest
     * from wherever the caller's buffer now lies */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, cfg->tls == RD_TLS_REQUIRE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file) {
        int ok = strcmp(cfg->ca_file, "system") == 0
                     ? SSL_CTX_set_default_verify_paths(ctx)
                     : SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL);
        if (ok != 1)
            return config_error("ca_file", cfg->ca_file, err);
    }
    if (cfg->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
            return config_error("cert_file", cfg->cert_file, err);
        /* OpenSSL's default passphrase callback reads the user data */
        SSL_CTX_set_default_passwd_cb_userdata(ctx, cfg->key_password);
        int ok = SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) == 1 &&
                 SSL_CTX_check_private_key(ctx) == 1;
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
        if (!ok)
            return config_error("key_file (or its key_password)", cfg->key_file, err);
    }
    return DBP_OK;
}

/* Why the handshake failed: the certificate check's verdict when that was it. */
static int handshake_error(rd_conn *c, rd_node *node, SSL *ssl, int ssl_error, dbp_error *err)
{
    node->broken = c->broken = 1;
    long verdict = SSL_get_verify_result(ssl);
    char reason[256] = "";
    unsigned long e = ERR_get_error();
    if (verdict != X509_V_OK)
        snprintf(reason, sizeof reason, "the server's certificate is refused: %s",
                 X509_verify_cert_error_string(verdict));
    else if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN)
        snprintf(reason, sizeof reason, "the server closed the connection (is it a TLS port?)");
    ERR_clear_error();
    return dbp_error_set(err, DBP_E_NETWORK, 0, "08001", "TLS handshake with %s failed: %s",
                         node->label, reason[0] ? reason : "unknown reason");
}

int rd_tls_start(rd_conn *c, rd_node *node, const char *host, dbp_error *err)
{
    ERR_clear_error();
    SSL *ssl = node->ssl = SSL_new(c->tls_ctx);
    if (!ssl || SSL_set_fd(ssl, node->fd) != 1)
        return dbp_error_nomem(err);
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, host); /* SNI takes names only */
    if (c->tls_mode == RD_TLS_VERIFY_FULL) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                       : SSL_set1_host(ssl, host);
        if (ok != 1)
            return dbp_error_nomem(err);
    }
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            return DBP_OK;
        int e = SSL_get_error(ssl, r);
        short events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!events)
            return handshake_error(c, node, ssl, e, err);
        int rc = DBP_OK;
        if (!rd_wait_for(c, node, events, &rc, err))
            return rc != DBP_E_QUERY_TIMEOUT
                       ? rc
                       : dbp_error_set(err, DBP_E_TIMEOUT, 0, "08001",
                                       "the TLS handshake with %s timed out (is it a TLS port?)",
                                       node->label);
    }
}

/* recv()'s answer from SSL_read / SSL_write's: bytes, 0 for a close, or -1
 * with errno (EAGAIN: wait and call again). */
static ssize_t io_result(rd_node *node, int r)
{
    if (r > 0)
        return r;
    int e = SSL_get_error(node->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    if (e != SSL_ERROR_SYSCALL)
        errno = EPROTO; /* a TLS protocol error: the connection is lost */
    ERR_clear_error();
    return -1;
}

ssize_t rd_tls_read(rd_node *node, void *buf, size_t len)
{
    ERR_clear_error();
    errno = 0;
    return io_result(node, SSL_read(node->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len)));
}

ssize_t rd_tls_write(rd_node *node, const void *buf, size_t len)
{
    ERR_clear_error();
    errno = 0;
    return io_result(node, SSL_write(node->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len)));
}

int rd_tls_pending(const rd_node *node) { return node->ssl && SSL_pending(node->ssl) > 0; }

int rd_tls_idle_ok(rd_node *node)
{
    /* TLS 1.3 session tickets may still arrive after the handshake: records
     * that carry no data leave an idle connection usable */
    char byte;
    ERR_clear_error();
    int r = SSL_peek(node->ssl, &byte, 1);
    int ok = r <= 0 && SSL_get_error(node->ssl, r) == SSL_ERROR_WANT_READ;
    ERR_clear_error();
    return ok;
}

void rd_tls_close(rd_node *node)
{
    SSL_free(node->ssl); /* no close_notify: the socket closes at once after */
    node->ssl = NULL;
}
