#ifndef TANDEM_TLS_H
#define TANDEM_TLS_H

// OpenSSL macros and callbacks that Swift cannot call or write directly.
#include <openssl/ssl.h>

/// Server context: TLS 1.2 minimum, partial writes, moving write buffers; NULL on failure.
SSL_CTX *tandem_tls_server_ctx_new(void);
/// Client context: TLS 1.2 minimum, peer verification on, partial writes; NULL on failure.
SSL_CTX *tandem_tls_client_ctx_new(void);
/// Keeps a connection's read and write buffers while it is idle instead of freeing them.
void tandem_tls_keep_idle_buffers(SSL_CTX *ctx);
/// Sets the protocols (ALPN wire format) this server picks from, preferring the client's order.
int tandem_tls_set_server_alpn(SSL_CTX *ctx, const unsigned char *protocols, unsigned length);
/// Sets SNI on a client connection.
int tandem_tls_set_sni(SSL *ssl, const char *name);
/// Copies the oldest queued OpenSSL error text into buffer and clears the queue; 0 if none.
unsigned long tandem_tls_error_text(char *buffer, size_t length);
/// The ALPN protocol negotiated on ssl, copied into buffer (NUL terminated); length or 0.
unsigned tandem_tls_alpn_selected(const SSL *ssl, char *buffer, unsigned length);
/// The subject common name of the peer (or own, when peer == 0) certificate; length or 0.
int tandem_tls_certificate_cn(SSL *ssl, int peer, char *buffer, int length);
/// Uses a PEM certificate chain held in memory (leaf first) as ctx's own certificate; 1 on success.
int tandem_tls_use_pem_chain(SSL_CTX *ctx, const unsigned char *pem, size_t length);
/// Uses a PEM private key held in memory as ctx's key; 1 on success.
int tandem_tls_use_pem_key(SSL_CTX *ctx, const unsigned char *pem, size_t length);
/// Adds every certificate of a PEM bundle held in memory to ctx's trust store; how many, 0 on failure.
int tandem_tls_add_pem_trust(SSL_CTX *ctx, const unsigned char *pem, size_t length);

#endif
