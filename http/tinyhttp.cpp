#include "tinyhttp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace tinyhttp {

std::string Request::param(const std::string& name, const std::string& fallback) const {
  auto range = params.equal_range(name);
  if (range.first == range.second) return fallback;
  return std::prev(range.second)->second;
}

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

bool parse_decimal_seconds(std::string_view text, double min, double max, double& out) {
  if (text.empty() || text.size() > 32) return false;
  size_t dots = 0;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '.') {
      if (++dots > 1 || i == 0 || i + 1 == text.size()) return false;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) return false;
  if (v < min || v > max) return false;
  out = v;
  return true;
}

namespace {

using Clock = std::chrono::steady_clock;

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

std::string serialize(const Response& r, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

Response text_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); i++) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return true;
}

bool parse_params(std::string_view query, std::multimap<std::string, std::string>& params) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string k, v;
    if (!percent_decode(pair.substr(0, eq), true, k)) return false;
    if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), true, v)) return false;
    params.emplace(std::move(k), std::move(v));
  }
  return true;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// Parses the head (without the final blank line). Returns 0 or an HTTP
// error status.
int parse_head(std::string_view head, Request& req, bool& http10) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos)
    return 400;
  req.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return 400;
  http10 = version == "HTTP/1.0";
  if (req.method.empty() || target.empty() || target[0] != '/') return 400;
  size_t q = target.find('?');
  if (!percent_decode(target.substr(0, q), false, req.path)) return 400;
  if (q != std::string_view::npos && !parse_params(target.substr(q + 1), req.params)) return 400;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return 400;
    std::string name(h.substr(0, colon));
    for (char& c : name) {
      if (c == ' ' || c == '\t') return 400;
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string value = trim(h.substr(colon + 1));
    auto it = req.headers.find(name);
    if (it != req.headers.end()) {
      if (name == "content-length" && it->second != value) return 400;
      it->second += ", " + value;
    } else {
      req.headers.emplace(std::move(name), std::move(value));
    }
  }
  return 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

struct Server::Impl {
  struct Route {
    std::string method, path;
    Handler handler;
    Lane lane;
  };
  struct Conn {
    int fd = -1;
    uint64_t id = 0;
    enum Phase { kIdle, kHead, kBody, kHandling, kWriting } phase = kIdle;
    std::string in;
    size_t head_len = 0;  // including the blank line
    size_t body_len = 0;
    Request req;
    bool keep_alive = false;
    size_t served = 0;
    std::string out;
    size_t out_off = 0;
    bool close_after = false;
    Clock::time_point deadline;
    Clock::time_point since;  // start of the current phase (eviction order)
  };
  struct Job {
    uint64_t conn_id;
    Request req;
    const Route* route;
    bool keep_alive;
  };
  struct Done {
    uint64_t conn_id;
    std::string bytes;
    bool close_after;
  };
  struct Pool {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> jobs;
    std::vector<std::thread> threads;
  };

  explicit Impl(Limits l) : limits(l) {}

  Limits limits;
  std::vector<Route> routes;
  int listen_fd = -1, epoll_fd = -1, wake_fd = -1;
  uint16_t port = 0;
  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};
  std::thread loop_thread;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;  // loop thread only
  uint64_t next_id = 1;
  Pool fast, slow;
  std::mutex done_mu;
  std::vector<Done> done;
  std::atomic<size_t> slow_busy{0};
  mutable std::mutex stats_mu;
  ServerStats st;

  void bump(uint64_t ServerStats::*field) {
    std::lock_guard<std::mutex> lock(stats_mu);
    st.*field += 1;
  }

  // ---- event loop (one thread) ----
  void set_events(Conn& c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void close_conn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, it->second->fd, nullptr);
    ::close(it->second->fd);
    conns.erase(it);
    std::lock_guard<std::mutex> lock(stats_mu);
    st.open_connections = conns.size();
  }

  // Queues a response on the loop thread (errors, 429) and starts writing.
  void respond_now(Conn& c, const Response& r, bool close_after) {
    start_write(c, serialize(r, !close_after), close_after);
  }

  void start_write(Conn& c, std::string bytes, bool close_after) {
    c.out = std::move(bytes);
    c.out_off = 0;
    c.close_after = close_after;
    c.phase = Conn::kWriting;
    c.since = Clock::now();
    c.deadline =
        c.since + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.write_timeout_s));
    if (!flush(c)) return;  // closed
    if (c.phase == Conn::kWriting) set_events(c, EPOLLOUT);
  }

  // Writes what the socket takes; false when the connection was closed.
  bool flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      close_conn(c.id);
      return false;
    }
    if (c.close_after || stopping) {
      close_conn(c.id);
      return false;
    }
    // Back to waiting for the next request on this connection.
    c.out.clear();
    c.out.shrink_to_fit();
    c.phase = Conn::kIdle;
    c.since = Clock::now();
    c.deadline =
        c.since + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.idle_timeout_s));
    set_events(c, EPOLLIN | EPOLLRDHUP);
    return process_input(c);
  }

  void fail(Conn& c, int status, const char* msg) {
    bump(&ServerStats::bad_requests);
    c.in.clear();
    respond_now(c, text_response(status, std::string(msg) + "\n"), true);
  }

  // Advances the request state machine over buffered input; false when the
  // connection was closed.
  bool process_input(Conn& c) {
    // Responding may close the connection (and free `c`): only `id` is
    // used after a fail() or dispatch().
    const uint64_t id = c.id;
    auto now = Clock::now();
    if (c.phase == Conn::kIdle) {
      if (c.in.empty()) return true;
      c.phase = Conn::kHead;
      c.since = now;
      c.deadline =
          now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.header_timeout_s));
    }
    if (c.phase == Conn::kHead) {
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (c.in.size() > limits.max_header_bytes) fail(c, 431, "request head too large");
        return conns.count(id) > 0;
      }
      if (end + 4 > limits.max_header_bytes) {
        fail(c, 431, "request head too large");
        return conns.count(id) > 0;
      }
      c.req = Request();
      bool http10 = false;
      if (int status = parse_head(std::string_view(c.in).substr(0, end), c.req, http10)) {
        fail(c, status, "malformed request");
        return conns.count(id) > 0;
      }
      std::string conn_hdr = lower(c.req.header("connection"));
      c.keep_alive =
          http10 ? conn_hdr.find("keep-alive") != std::string::npos : conn_hdr.find("close") == std::string::npos;
      if (!c.req.header("transfer-encoding").empty()) {
        fail(c, 411, "chunked bodies are not supported; send Content-Length");
        return conns.count(id) > 0;
      }
      c.body_len = 0;
      std::string cl = c.req.header("content-length");
      if (!cl.empty()) {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), v);
        if (ec != std::errc() || p != cl.data() + cl.size()) {
          fail(c, 400, "bad Content-Length");
          return conns.count(id) > 0;
        }
        if (v > limits.max_body_bytes) {
          fail(c, 413, "request body too large");
          return conns.count(id) > 0;
        }
        c.body_len = static_cast<size_t>(v);
      }
      c.head_len = end + 4;
      c.phase = Conn::kBody;
      c.since = now;
      c.deadline =
          now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.body_timeout_s));
      if (c.body_len > 0 && c.in.size() < c.head_len + c.body_len && lower(c.req.header("expect")) == "100-continue") {
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)!::send(c.fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL);
      }
    }
    if (c.phase == Conn::kBody) {
      if (c.in.size() < c.head_len + c.body_len) return true;
      c.req.body = c.in.substr(c.head_len, c.body_len);
      c.in.erase(0, c.head_len + c.body_len);  // a pipelined next request stays buffered
      if (c.req.header("content-type").rfind("application/x-www-form-urlencoded", 0) == 0 &&
          !parse_params(c.req.body, c.req.params)) {
        fail(c, 400, "malformed form body");
        return conns.count(id) > 0;
      }
      dispatch(c);
      return conns.count(id) > 0;
    }
    return true;
  }

  void dispatch(Conn& c) {
    bump(&ServerStats::requests);
    c.served++;
    bool keep = c.keep_alive && c.served < limits.max_requests_per_connection && !stopping;
    const Route* route = nullptr;
    bool path_known = false;
    for (const auto& r : routes) {
      if (r.path != c.req.path) continue;
      path_known = true;
      if (r.method == c.req.method) route = &r;
    }
    if (!route) {
      respond_now(c, path_known ? text_response(405, "method not allowed\n") : text_response(404, "not found\n"),
                  !keep);
      return;
    }
    if (route->lane == Lane::kSlow) {
      // Reserve a slow worker now, so an over-limit request is told at once.
      size_t busy = slow_busy.load();
      do {
        if (busy >= limits.slow_workers) {
          bump(&ServerStats::slow_lane_rejected);
          Response r = text_response(429, "too many long requests at once (at most " +
                                              std::to_string(limits.slow_workers) + "); retry later\n");
          r.headers.emplace_back("Retry-After", std::to_string(limits.retry_after_s));
          respond_now(c, r, !keep);
          return;
        }
      } while (!slow_busy.compare_exchange_weak(busy, busy + 1));
    }
    c.phase = Conn::kHandling;
    set_events(c, 0);
    Pool& pool = route->lane == Lane::kSlow ? slow : fast;
    {
      std::lock_guard<std::mutex> lock(pool.mu);
      pool.jobs.push_back(Job{c.id, std::move(c.req), route, keep});
    }
    pool.cv.notify_one();
  }

  void on_readable(Conn& c) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (c.in.size() > limits.max_header_bytes + limits.max_body_bytes + sizeof buf) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_conn(c.id);  // EOF or error
      return;
    }
    process_input(c);
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN, or out of fds (the listen backlog holds the rest)
      }
      if (conns.size() >= limits.max_connections && !evict_one()) {
        ::close(fd);
        bump(&ServerStats::connections_rejected);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->id = next_id++;
      c->since = Clock::now();
      c->deadline =
          c->since + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.idle_timeout_s));
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = c->id;
      if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      conns.emplace(c->id, std::move(c));
      std::lock_guard<std::mutex> lock(stats_mu);
      st.connections_accepted++;
      st.open_connections = conns.size();
    }
  }

  // At the connection limit, the connection that has waited longest for a
  // complete request makes room (a slow client, not a served one).
  bool evict_one() {
    Conn* victim = nullptr;
    for (auto& [id, c] : conns)
      if (c->phase == Conn::kIdle || c->phase == Conn::kHead || c->phase == Conn::kBody)
        if (!victim || c->since < victim->since) victim = c.get();
    if (!victim) return false;
    bump(&ServerStats::connections_rejected);
    close_conn(victim->id);
    return true;
  }

  void expire(Clock::time_point now) {
    std::vector<uint64_t> expired;
    for (auto& [id, c] : conns)
      if (c->phase != Conn::kHandling && now >= c->deadline) expired.push_back(id);
    for (uint64_t id : expired) {
      Conn& c = *conns[id];
      switch (c.phase) {
        case Conn::kIdle:
          bump(&ServerStats::idle_closes);
          close_conn(id);
          break;
        case Conn::kHead:
        case Conn::kBody: {
          bump(c.phase == Conn::kHead ? &ServerStats::header_timeouts : &ServerStats::body_timeouts);
          // Best effort: tell the client, then close.
          std::string r = serialize(text_response(408, "request not received in time\n"), false);
          (void)!::send(c.fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          close_conn(id);
          break;
        }
        case Conn::kWriting:
          bump(&ServerStats::write_timeouts);
          close_conn(id);
          break;
        case Conn::kHandling:
          break;
      }
    }
  }

  void take_done() {
    std::vector<Done> ready;
    {
      std::lock_guard<std::mutex> lock(done_mu);
      ready.swap(done);
    }
    for (auto& d : ready) {
      auto it = conns.find(d.conn_id);
      if (it == conns.end()) continue;
      start_write(*it->second, std::move(d.bytes), d.close_after);
    }
  }

  void loop() {
    std::vector<epoll_event> events(256);
    auto next_scan = Clock::now();
    while (!stopping) {
      int n = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; i++) {
        uint64_t id = events[i].data.u64;
        if (id == 0) {
          accept_all();
          continue;
        }
        if (id == UINT64_MAX) {
          uint64_t v;
          (void)!::read(wake_fd, &v, sizeof v);
          take_done();
          continue;
        }
        auto it = conns.find(id);
        if (it == conns.end()) continue;
        Conn& c = *it->second;
        if (c.phase == Conn::kWriting) {
          if (events[i].events & (EPOLLERR | EPOLLHUP))
            close_conn(id);
          else
            flush(c);
        } else if (c.phase != Conn::kHandling) {
          on_readable(c);
        }
      }
      auto now = Clock::now();
      if (now >= next_scan) {
        expire(now);
        next_scan = now + std::chrono::milliseconds(100);
      }
    }
    take_done();
    for (auto& [id, c] : conns) ::close(c->fd);
    conns.clear();
  }

  // ---- workers ----
  void work(Pool& pool, bool is_slow) {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(pool.mu);
        pool.cv.wait(lock, [&] { return stopping || !pool.jobs.empty(); });
        if (pool.jobs.empty()) return;
        job = std::move(pool.jobs.front());
        pool.jobs.pop_front();
      }
      Response r;
      try {
        r = job.route->handler(job.req);
      } catch (const std::exception& e) {
        r = text_response(500, std::string(e.what()) + "\n");
      } catch (...) {
        r = text_response(500, "internal error\n");
      }
      if (is_slow) slow_busy--;
      {
        std::lock_guard<std::mutex> lock(done_mu);
        done.push_back(Done{job.conn_id, serialize(r, job.keep_alive), !job.keep_alive});
      }
      uint64_t one = 1;
      (void)!::write(wake_fd, &one, sizeof one);
    }
  }
};

Server::Server(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}

Server::~Server() {
  stop();
}

void Server::route(const std::string& method, const std::string& path, Handler handler, Lane lane) {
  impl_->routes.push_back(Impl::Route{method, path, std::move(handler), lane});
}

int Server::start(const std::string& host, uint16_t port) {
  if (impl_->running) return EALREADY;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res); rc != 0)
    return rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
  int err = EADDRNOTAVAIL;
  int fd = -1;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR (a quick restart past TIME_WAIT) but not SO_REUSEPORT,
    // which would let a second agent silently take half the scrapes.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, impl_->limits.listen_backlog) == 0) break;
    err = errno;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return err;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  impl_->port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  impl_->listen_fd = fd;
  impl_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  ev.data.u64 = UINT64_MAX;
  epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, impl_->wake_fd, &ev);
  impl_->stopping = false;
  impl_->running = true;
  Impl* impl = impl_.get();
  for (size_t i = 0; i < std::max<size_t>(1, impl->limits.fast_workers); i++)
    impl->fast.threads.emplace_back([impl] { impl->work(impl->fast, false); });
  for (size_t i = 0; i < impl->limits.slow_workers; i++)
    impl->slow.threads.emplace_back([impl] { impl->work(impl->slow, true); });
  impl->loop_thread = std::thread([impl] { impl->loop(); });
  return 0;
}

void Server::stop() {
  if (!impl_->running.exchange(false)) return;
  impl_->stopping = true;
  uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->loop_thread.joinable()) impl_->loop_thread.join();
  for (Impl::Pool* pool : {&impl_->fast, &impl_->slow}) {
    {
      std::lock_guard<std::mutex> lock(pool->mu);
      pool->jobs.clear();
    }
    pool->cv.notify_all();
    for (auto& t : pool->threads) t.join();
    pool->threads.clear();
  }
  ::close(impl_->listen_fd);
  ::close(impl_->epoll_fd);
  ::close(impl_->wake_fd);
  impl_->listen_fd = impl_->epoll_fd = impl_->wake_fd = -1;
  impl_->done.clear();
  impl_->slow_busy = 0;
}

bool Server::running() const {
  return impl_->running;
}

uint16_t Server::port() const {
  return impl_->port;
}

ServerStats Server::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  return impl_->st;
}

}  // namespace tinyhttp
