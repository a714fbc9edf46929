// A small HTTP/1.1 server that a local client cannot stall, shared by the
// agent (exporters/http_server.*) and tickgame's admin endpoint.
//
// Why not cpp-httplib's server: it ties one worker thread to a connection
// for the connection's whole life and only bounds each single read, so a
// client sending one header line per second holds a worker forever; eight
// of them (its pool size) stop every scrape, and its listen backlog is 5.
//
// Model: one event thread owns every socket (epoll, non-blocking). It reads
// a request head and body under *total* deadlines, limits sizes and
// keep-alive, and writes responses under a deadline. Only a complete request
// reaches a handler, on one of two pools:
//   - the fast lane (metrics, health): a few workers, never held by I/O;
//   - the slow lane (long profile captures): at most `slow_workers` at once;
//     one more is answered `429 Too Many Requests` with `Retry-After`.
// So slow clients cost a connection slot (bounded, `max_connections`), never
// a worker, and long requests cannot starve the fast lane.
//
// Dependency-free on purpose (POSIX + the standard library): tickgame links
// it without pulling in tickprobe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tinyhttp {

struct Request {
  std::string method;                              // "GET", "POST"
  std::string path;                                // decoded path, no query
  std::multimap<std::string, std::string> params;  // query (and form-urlencoded body) parameters
  std::map<std::string, std::string> headers;      // names lower-cased
  std::string body;
  // Last value of a parameter, or fallback.
  std::string param(const std::string& name, const std::string& fallback = {}) const;
  bool has_param(const std::string& name) const { return params.count(name) > 0; }
  std::string header(const std::string& lower_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using Handler = std::function<Response(const Request&)>;

enum class Lane { kFast, kSlow };

struct Limits {
  double header_timeout_s = 5;  // whole request head, from its first byte
  double body_timeout_s = 10;   // whole body, after the head
  double idle_timeout_s = 5;    // keep-alive: wait for the next request (also the first)
  double write_timeout_s = 10;  // whole response
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
  size_t max_requests_per_connection = 100;
  size_t max_connections = 512;  // beyond: the oldest idle connection is closed, else the new one
  int listen_backlog = 512;
  size_t fast_workers = 2;
  size_t slow_workers = 4;  // slow-lane requests running at once; more get 429
  int retry_after_s = 5;    // in the 429's Retry-After
};

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;  // over max_connections
  uint64_t requests = 0;
  uint64_t header_timeouts = 0;
  uint64_t body_timeouts = 0;
  uint64_t idle_closes = 0;
  uint64_t write_timeouts = 0;
  uint64_t bad_requests = 0;        // malformed or too large
  uint64_t slow_lane_rejected = 0;  // 429s
  uint64_t open_connections = 0;
};

class Server {
 public:
  explicit Server(Limits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Exact path (and method) routes; before start(). A handler that throws
  // yields 500 with the exception's message.
  void route(const std::string& method, const std::string& path, Handler handler, Lane lane = Lane::kFast);

  // Binds host:port (port 0 = any free port) in the caller's thread and
  // starts serving. Returns 0 or an errno value.
  int start(const std::string& host, uint16_t port);
  void stop();  // idempotent; waits for running handlers
  bool running() const;
  uint16_t port() const;
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Strict parsing of a decimal number of seconds as found in query strings:
// digits with an optional fraction ("30", "0.5"); no sign, exponent, hex,
// nan/inf, spaces or trailing text. Fails when outside [min, max].
bool parse_decimal_seconds(std::string_view text, double min, double max, double& out);

}  // namespace tinyhttp
