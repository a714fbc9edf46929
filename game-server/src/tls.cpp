#include "tickgame/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace tickgame {

std::string openssl_error_string() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

namespace {
void set_modes(SSL_CTX* ctx) {
  // Non-blocking writes from a queue that grows between retries.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A peer that closes without close_notify is an EOF, not an error.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

bool use_generated_identity(SSL_CTX* ctx, std::string& error) {
  EVP_PKEY* key = EVP_EC_gen("P-256");  // ECDSA: cheap handshakes for hundreds of bots
  if (!key) { error = "EVP_EC_gen failed: " + openssl_error_string(); return false; }
  X509* cert = X509_new();
  bool ok = cert != nullptr;
  if (ok) {
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tickgame"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ok = X509_sign(cert, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, cert) == 1 &&
         SSL_CTX_use_PrivateKey(ctx, key) == 1;
    if (!ok) error = "self-signed certificate setup failed: " + openssl_error_string();
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}
}  // namespace

SslCtxPtr make_server_tls_context(const std::string& cert_path, const std::string& key_path, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) { error = "SSL_CTX_new failed: " + openssl_error_string(); return nullptr; }
  set_modes(ctx.get());
  if (cert_path.empty() != key_path.empty()) {
    error = "--tls-cert and --tls-key must be given together";
    return nullptr;
  }
  if (cert_path.empty()) {
    if (!use_generated_identity(ctx.get(), error)) return nullptr;
  } else {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_path.c_str()) != 1) {
      error = "cannot load certificate " + cert_path + ": " + openssl_error_string();
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      error = "cannot load private key " + key_path + ": " + openssl_error_string();
      return nullptr;
    }
  }
  return ctx;
}

SslCtxPtr make_client_tls_context(std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) { error = "SSL_CTX_new failed: " + openssl_error_string(); return nullptr; }
  set_modes(ctx.get());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  return ctx;
}

}  // namespace tickgame
