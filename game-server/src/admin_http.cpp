// The admin endpoint (127.0.0.1 only): GET /stats, GET /healthz,
// POST /faults (JSON body) and GET /faults?name=value, on tinyhttp.
#include <tinyhttp.h>
#include <pthread.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "tickgame/server.h"

namespace tickgame {

struct GameServer::AdminState {
  explicit AdminState(const tinyhttp::Limits& l) : http(l) {}
  tinyhttp::Server http;
};

void GameServer::AdminStateDeleter::operator()(AdminState* a) const { delete a; }

namespace {

// Strict numbers: "-5", "1e23", "1.5", "0x10", " 5" are errors, never
// wrapped or truncated into something else.
bool parse_uint(const std::string& value, std::uint64_t max, std::uint64_t& out) {
  if (value.empty() || value.size() > 20 || value.find_first_not_of("0123456789") != std::string::npos) return false;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v > max) return false;
  out = v;
  return true;
}

bool parse_rate(const std::string& value, double max, double& out) {
  if (value.empty() || value.size() > 32 || value.find_first_not_of("0123456789.") != std::string::npos) return false;
  double v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || p != value.data() + value.size() || !std::isfinite(v) || v > max) return false;
  out = v;
  return true;
}

// Applies one "name=value" fault setting; false if the name or value is bad.
bool set_fault(FaultSettings& f, const std::string& name, const std::string& value, std::string& error) {
  struct IntFault {
    const char* name;
    std::atomic<std::uint64_t>* field;
    std::uint64_t max;
  };
  const IntFault ints[] = {{"leak_bytes_per_tick", &f.leak_bytes_per_tick, std::uint64_t{1} << 30},
                           {"gc_garbage_per_tick", &f.gc_garbage_per_tick, 1000000},
                           {"cpu_hog_us", &f.cpu_hog_us, 10000000}};
  for (const auto& i : ints) {
    if (name != i.name) continue;
    std::uint64_t v = 0;
    if (!parse_uint(value, i.max, v)) {
      error = "bad value '" + value + "' for " + name + ": must be a whole number in [0, " + std::to_string(i.max) + "]";
      return false;
    }
    *i.field = v;
    return true;
  }
  if (name == "coroutine_leak_per_sec") {
    double v = 0;
    if (!parse_rate(value, 100000, v)) {
      error = "bad value '" + value + "' for " + name + ": must be a decimal number in [0, 100000]";
      return false;
    }
    f.coroutine_leak_per_sec = v;
  } else if (name == "blocking_writes") {
    if (value == "1" || value == "true" || value == "on") f.blocking_writes = true;
    else if (value == "0" || value == "false" || value == "off") f.blocking_writes = false;
    else { error = "blocking_writes must be true/false"; return false; }
  } else {
    error = "unknown fault '" + name + "' (known: leak_bytes_per_tick, coroutine_leak_per_sec, gc_garbage_per_tick, blocking_writes, cpu_hog_us)";
    return false;
  }
  return true;
}

std::string json_value_to_string(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

tinyhttp::Response text(int status, std::string body) {
  tinyhttp::Response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

tinyhttp::Response json_reply(const nlohmann::json& j) {
  tinyhttp::Response r;
  r.content_type = "application/json";
  r.body = j.dump(2) + "\n";
  return r;
}

}  // namespace

void GameServer::start_admin() {
  // tinyhttp (http/tinyhttp.h): requests are read under total deadlines by
  // one event thread, so slow clients cannot hold the two workers that run
  // the handlers; the agent's endpoint works the same way.
  tinyhttp::Limits limits;
  limits.fast_workers = 2;
  limits.slow_workers = 0;
  limits.max_connections = 128;
  limits.max_body_bytes = 64 * 1024;
  admin_.reset(new AdminState(limits));
  auto& http = admin_->http;
  http.route("GET", "/healthz", [](const tinyhttp::Request&) { return text(200, "ok\n"); });
  http.route("GET", "/stats", [this](const tinyhttp::Request&) { return json_reply(stats_json()); });
  http.route("GET", "/faults", [this](const tinyhttp::Request& req) {
    for (auto& [name, value] : req.params) {
      std::string err;
      if (!set_fault(faults_, name, value, err)) return text(400, err + "\n");
    }
    return json_reply(faults_to_json(faults_));
  });
  http.route("POST", "/faults", [this](const tinyhttp::Request& req) {
    std::string err;
    size_t first = req.body.find_first_not_of(" \t\r\n");
    const bool json_body = first != std::string::npos && req.body[first] == '{';
    const bool form_body = req.header("content-type").rfind("application/x-www-form-urlencoded", 0) == 0;
    if (!json_body && first != std::string::npos && !form_body)
      return text(400, "body must be a JSON object, e.g. {\"cpu_hog_us\": 5000}\n");
    if (json_body) {
      auto j = nlohmann::json::parse(req.body, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return text(400, "body must be a JSON object, e.g. {\"cpu_hog_us\": 5000}\n");
      for (auto& [name, value] : j.items())
        if (!set_fault(faults_, name, json_value_to_string(value), err)) return text(400, err + "\n");
    } else {
      // Query parameters, and a form body (curl -d) parsed into the same.
      for (auto& [name, value] : req.params)
        if (!set_fault(faults_, name, value, err)) return text(400, err + "\n");
    }
    return json_reply(faults_to_json(faults_));
  });
  // The event thread and workers inherit the creating thread's name: make
  // it "admin-http" while they are created (docs/usdt.md: these threads
  // never fire probes, and tests tell them apart by name).
  char saved[16] = {};
  pthread_getname_np(pthread_self(), saved, sizeof saved);
  pthread_setname_np(pthread_self(), "admin-http");
  int err = http.start("127.0.0.1", cfg_.admin_port);
  pthread_setname_np(pthread_self(), saved);
  if (err != 0) admin_.reset();
}

GameServer::~GameServer() {
  stop_admin();
  sched_.destroy_all();
  sessions_.clear();
  if (tcp_listener_.fd >= 0) ::close(tcp_listener_.fd);
  if (tls_listener_.fd >= 0) ::close(tls_listener_.fd);
  if (signals_.fd >= 0) ::close(signals_.fd);
}

void GameServer::stop_admin() {
  if (admin_) admin_->http.stop();
}

}  // namespace tickgame
