#include "exporters/http_server.h"

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <thread>

namespace tickprobe {

std::string BindAddress::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

Result<uint16_t> parse_port(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value > 65535) {
    return Error("invalid listen address \"" + std::string(whole) + "\": bad port \"" + std::string(text) + "\"",
                 "use host:port, e.g. 127.0.0.1:9464");
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<BindAddress> parse_bind_address(std::string_view text) {
  const std::string hint = "use host:port, e.g. 127.0.0.1:9464, [::1]:9464 or :9464";
  if (text.empty()) return Error("invalid listen address: empty", hint);
  BindAddress out;
  std::string_view port_text;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error("invalid listen address \"" + std::string(text) + "\"", hint);
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      out.host = "0.0.0.0";
      port_text = text;
    } else {
      if (text.find(':') != colon) {
        return Error("invalid listen address \"" + std::string(text) + "\": IPv6 hosts need brackets", hint);
      }
      out.host = colon == 0 ? "0.0.0.0" : std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
    }
  }
  if (out.host.empty()) return Error("invalid listen address \"" + std::string(text) + "\": empty host", hint);
  auto port = parse_port(port_text, text);
  if (!port) return port.error();
  out.port = *port;
  return out;
}

std::string HttpRequest::param(const std::string& name, const std::string& fallback) const {
  auto range = params.equal_range(name);
  if (range.first == range.second) return fallback;
  return std::prev(range.second)->second;
}

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> running{false};
  uint16_t port = 0;
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {
  // httplib's default also sets SO_REUSEPORT, which lets a second agent bind
  // the same port and silently take half the scrapes. SO_REUSEADDR alone
  // still allows a quick restart (TIME_WAIT) but makes a live conflict fail.
  impl_->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl_->server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(what + "\n", kTextContentType);
  });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle_get(const std::string& path, HttpHandler handler) {
  // httplib patterns are regular expressions; escape so the path is literal.
  std::string pattern;
  for (char c : path) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) pattern += '\\';
    pattern += c;
  }
  impl_->server.Get(pattern, [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    HttpRequest request;
    request.path = req.path;
    for (const auto& [k, v] : req.params) request.params.emplace(k, v);
    HttpResponse response = handler(request);
    res.status = response.status;
    for (const auto& [k, v] : response.headers) res.set_header(k, v);
    res.set_content(std::move(response.body), response.content_type.c_str());
  });
}

Status HttpServer::start(const BindAddress& address) {
  if (impl_->running) return Error("HTTP server already running on port " + std::to_string(impl_->port));
  errno = 0;
  int port = address.port;
  if (address.port == 0) {
    port = impl_->server.bind_to_any_port(address.host.c_str());
    if (port < 0) port = -1;
  } else if (!impl_->server.bind_to_port(address.host.c_str(), address.port)) {
    port = -1;
  }
  if (port < 0) {
    int err = errno ? errno : EADDRNOTAVAIL;
    return Error::from_errno("failed to listen on " + address.to_string(), err,
                             "is another process (another agent?) using that port, or is the address local?");
  }
  impl_->port = static_cast<uint16_t>(port);
  impl_->running = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->server.listen_after_bind(); });
  // httplib's stop() is a no-op until the listen loop has marked itself
  // running; wait for that so an immediate stop() cannot hang the join.
  for (int i = 0; i < 2000 && !impl_->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {};
}

void HttpServer::stop() {
  if (!impl_->running.exchange(false)) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool HttpServer::running() const { return impl_->running; }

uint16_t HttpServer::port() const { return impl_->port; }

}  // namespace tickprobe
