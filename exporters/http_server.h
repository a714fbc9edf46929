// Thin HTTP server for the agent (/metrics, /debug/pprof/profile, ...) on
// tinyhttp (http/tinyhttp.h): one event thread reads requests under total
// deadlines (head, body, keep-alive idle, write), so slow clients cannot
// hold a worker; handlers run on a fast pool, long ones (profile captures)
// on their own bounded pool, `429` + `Retry-After` beyond it.
//
// Lifecycle: construct (with limits), handle_get() for each path, start()
// (binds in the caller's thread so bind errors are returned), stop()
// (idempotent; also done by the destructor). Handlers run on worker threads
// and must be thread-safe. Handlers may not be added after start().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "tinyhttp.h"

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

// Limits: deadlines, sizes, pools (defaults in http/tinyhttp.h).
using HttpLimits = tinyhttp::Limits;
using HttpServerStats = tinyhttp::ServerStats;

enum class HandlerKind {
  kFast,         // answers at once (metrics, health): the fast pool
  kLongRunning,  // may take seconds (profile captures): the bounded slow pool
};

class HttpServer {
 public:
  explicit HttpServer(HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Exact-path GET handler. A handler that throws yields a 500 response.
  void handle_get(const std::string& path, HttpHandler handler, HandlerKind kind = HandlerKind::kFast);

  Status start(const BindAddress& address);
  void stop();
  bool running() const;
  // The bound port (useful after binding port 0); 0 before start().
  uint16_t port() const;
  HttpServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickprobe
