#include "exporters/http_server.h"

#include <cerrno>
#include <charconv>

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
  explicit Impl(const HttpLimits& l) : server(l) {}
  tinyhttp::Server server;
};

HttpServer::HttpServer(HttpLimits limits) : impl_(std::make_unique<Impl>(limits)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle_get(const std::string& path, HttpHandler handler, HandlerKind kind) {
  impl_->server.route(
      "GET", path,
      [handler = std::move(handler)](const tinyhttp::Request& req) {
        HttpRequest request;
        request.path = req.path;
        request.params = req.params;
        HttpResponse response = handler(request);
        tinyhttp::Response res;
        res.status = response.status;
        res.content_type = response.content_type;
        res.body = std::move(response.body);
        for (const auto& [k, v] : response.headers) res.headers.emplace_back(k, v);
        return res;
      },
      kind == HandlerKind::kLongRunning ? tinyhttp::Lane::kSlow : tinyhttp::Lane::kFast);
}

Status HttpServer::start(const BindAddress& address) {
  if (impl_->server.running())
    return Error("HTTP server already running on port " + std::to_string(impl_->server.port()));
  if (int err = impl_->server.start(address.host, address.port))
    return Error::from_errno("failed to listen on " + address.to_string(), err,
                             "is another process (another agent?) using that port, or is the address local?");
  return {};
}

void HttpServer::stop() { impl_->server.stop(); }

bool HttpServer::running() const { return impl_->server.running(); }

uint16_t HttpServer::port() const { return impl_->server.port(); }

HttpServerStats HttpServer::stats() const { return impl_->server.stats(); }

}  // namespace tickprobe
