// Thin HTTP server for the agent (/metrics, /debug/pprof/profile, ...),
// wrapping cpp-httplib behind a small interface so httplib.h (a very large
// header) is compiled only in http_server.cpp.
//
// Lifecycle: construct, handle_get() for each path, start() (binds in the
// caller's thread so bind errors are returned, then serves from one
// background thread with httplib's worker pool), stop() (idempotent; also
// done by the destructor). Handlers run on worker threads and must be
// thread-safe. Handlers may not be added after start().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace tickprobe {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr const char* kPprofContentType = "application/octet-stream";
inline constexpr const char* kJsonContentType = "application/json";
inline constexpr const char* kSvgContentType = "image/svg+xml";
inline constexpr const char* kTextContentType = "text/plain; charset=utf-8";

struct BindAddress {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0"
  uint16_t port = 0;  // 0 = any free port (see HttpServer::port())
  std::string to_string() const;  // "127.0.0.1:9464", "[::1]:9464"
};

// Accepts "host:port", "[v6]:port", ":port" (all interfaces, 0.0.0.0) and a
// bare "port". Fails with a hint on anything else.
Result<BindAddress> parse_bind_address(std::string_view text);

struct HttpRequest {
  std::string path;
  std::multimap<std::string, std::string> params;  // query parameters
  // Last value of a query parameter, or fallback.
  std::string param(const std::string& name, const std::string& fallback = {}) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = kTextContentType;
  std::string body;
  std::map<std::string, std::string> headers;  // extra, e.g. Content-Disposition
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Exact-path GET handler. A handler that throws yields a 500 response.
  void handle_get(const std::string& path, HttpHandler handler);

  Status start(const BindAddress& address);
  void stop();
  bool running() const;
  // The bound port (useful after binding port 0); 0 before start().
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickprobe
