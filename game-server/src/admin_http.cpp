// The admin endpoint (127.0.0.1 only): GET /stats, GET /healthz,
// POST /faults (JSON body) and GET /faults?name=value.
#include <httplib.h>
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "tickgame/server.h"

namespace tickgame {

struct GameServer::AdminState {
  httplib::Server http;
};

void GameServer::AdminStateDeleter::operator()(AdminState* a) const { delete a; }

namespace {

// Applies one "name=value" fault setting; false if the name or value is bad.
bool set_fault(FaultSettings& f, const std::string& name, const std::string& value, std::string& error) {
  try {
    if (name == "leak_bytes_per_tick") f.leak_bytes_per_tick = std::stoull(value);
    else if (name == "coroutine_leak_per_sec") f.coroutine_leak_per_sec = std::stod(value);
    else if (name == "gc_garbage_per_tick") f.gc_garbage_per_tick = std::stoull(value);
    else if (name == "cpu_hog_us") f.cpu_hog_us = std::stoull(value);
    else if (name == "blocking_writes") {
      if (value == "1" || value == "true" || value == "on") f.blocking_writes = true;
      else if (value == "0" || value == "false" || value == "off") f.blocking_writes = false;
      else { error = "blocking_writes must be true/false"; return false; }
    } else {
      error = "unknown fault '" + name + "' (known: leak_bytes_per_tick, coroutine_leak_per_sec, gc_garbage_per_tick, blocking_writes, cpu_hog_us)";
      return false;
    }
  } catch (const std::exception&) {
    error = "bad value '" + value + "' for " + name;
    return false;
  }
  return true;
}

std::string json_value_to_string(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

}  // namespace

void GameServer::start_admin() {
  admin_.reset(new AdminState());
  auto& http = admin_->http;
  // Two workers are plenty for a stats endpoint; they inherit "admin-http".
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  http.Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(stats_json().dump(2) + "\n", "application/json");
  });
  auto reply_faults = [this](httplib::Response& res) { res.set_content(faults_to_json(faults_).dump(2) + "\n", "application/json"); };
  http.Get("/faults", [this, reply_faults](const httplib::Request& req, httplib::Response& res) {
    for (auto& [name, value] : req.params) {
      std::string err;
      if (!set_fault(faults_, name, value, err)) { res.status = 400; res.set_content(err + "\n", "text/plain"); return; }
    }
    reply_faults(res);
  });
  http.Post("/faults", [this, reply_faults](const httplib::Request& req, httplib::Response& res) {
    std::string err;
    // A JSON object body wins. (curl -d sends it as form-urlencoded, which
    // httplib would also split into bogus params, so those are ignored then.)
    const bool json_body = req.body.find_first_not_of(" \t\r\n") != std::string::npos &&
                           req.body[req.body.find_first_not_of(" \t\r\n")] == '{';
    const bool form_body = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
    if (!json_body && !req.body.empty() && !form_body) {
      res.status = 400;
      res.set_content("body must be a JSON object, e.g. {\"cpu_hog_us\": 5000}\n", "text/plain");
      return;
    }
    if (!json_body) {
      for (auto& [name, value] : req.params) {
        if (!set_fault(faults_, name, value, err)) { res.status = 400; res.set_content(err + "\n", "text/plain"); return; }
      }
    }
    if (json_body) {
      auto j = nlohmann::json::parse(req.body, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        res.status = 400;
        res.set_content("body must be a JSON object, e.g. {\"cpu_hog_us\": 5000}\n", "text/plain");
        return;
      }
      for (auto& [name, value] : j.items()) {
        if (!set_fault(faults_, name, json_value_to_string(value), err)) { res.status = 400; res.set_content(err + "\n", "text/plain"); return; }
      }
    }
    reply_faults(res);
  });
  if (!http.bind_to_port("127.0.0.1", cfg_.admin_port)) {
    admin_.reset();
    return;
  }
  admin_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "admin-http");
    admin_->http.listen_after_bind();
  });
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
  if (!admin_thread_.joinable()) return;
  admin_->http.stop();
  admin_thread_.join();
}

}  // namespace tickgame
