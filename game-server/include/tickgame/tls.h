// OpenSSL 3 helpers shared by tickgame and tickbots.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace tickgame {

struct SslCtxDeleter { void operator()(SSL_CTX* c) const { SSL_CTX_free(c); } };
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Server context. With empty cert/key paths, generates an EC P-256 key and a
// self-signed certificate (CN=tickgame) in memory. On failure returns null
// and sets `error` (with OpenSSL's reason).
SslCtxPtr make_server_tls_context(const std::string& cert_path, const std::string& key_path, std::string& error);
// Client context that does not verify the peer (a load generator, not a client of record).
SslCtxPtr make_client_tls_context(std::string& error);
// The last OpenSSL error as text ("" if none); clears the queue.
std::string openssl_error_string();

}  // namespace tickgame
