// Shared harness of the e2e tests against tickgame: a server on free ports,
// /stats snapshots with their times, a tickprobe subcommand in the
// background, and the poll loop that ties them together.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.h"

namespace tickprobe::test::game {

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

using Clock = std::chrono::steady_clock;

inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr double kMs = 1e6;

// One tickgame on free ports (no TLS listener unless tls is set).
class Game {
 public:
  explicit Game(std::vector<std::string> extra = {}, bool tls = false) {
    port = tt::pick_free_port();
    admin_port = tt::pick_free_port();
    std::vector<std::string> argv = {tt::bin_path("tickgame"), "--port",     std::to_string(port), "--admin-port",
                                     std::to_string(admin_port), "--duration", "120"};
    if (tls) {
      tls_port = tt::pick_free_port();
      argv.insert(argv.end(), {"--tls-port", std::to_string(tls_port)});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<tt::Subprocess>(argv);
    ready = tt::wait_for_tcp_port(admin_port, 10s);
  }
  pid_t pid() const { return proc->pid(); }
  json stats() const {
    auto r = tt::http_get("127.0.0.1", admin_port, "/stats");
    return r.status == 200 ? json::parse(r.body, nullptr, false) : json();
  }
  template <class P>
  json wait_stats(P pred, std::chrono::milliseconds timeout = 10s) const {
    auto end = Clock::now() + timeout;
    json s;
    while (Clock::now() < end) {
      s = stats();
      if (s.is_object() && pred(s)) return s;
      std::this_thread::sleep_for(20ms);
    }
    return s;
  }
  bool set_fault(const std::string& name, const json& value) const {
    return tt::http_post("127.0.0.1", admin_port, "/faults", json{{name, value}}.dump()).status == 200;
  }
  // Bots that stay connected for `seconds` (then half-close and drain).
  std::unique_ptr<tt::Subprocess> bots(int clients, int slow_readers, double seconds) const {
    return std::make_unique<tt::Subprocess>(std::vector<std::string>{
        tt::bin_path("tickbots"), "--port", std::to_string(port), "--clients", std::to_string(clients), "--slow-readers",
        std::to_string(slow_readers), "--duration", std::to_string(seconds)});
  }

  std::uint16_t port, admin_port, tls_port = 0;
  std::unique_ptr<tt::Subprocess> proc;
  bool ready = false;
};

// /stats snapshots with the time they were taken (seconds since the test's t0).
class StatsLog {
 public:
  void poll(const Game& g, Clock::time_point t0) {
    json s = g.stats();
    if (s.is_object()) samples_.push_back({since(t0), std::move(s)});
  }
  // The latest snapshot taken at or before t (the first one if none).
  const json& at(double t) const {
    const json* best = &samples_.front().second;
    for (const auto& [ts, s] : samples_)
      if (ts <= t) best = &s;
    return *best;
  }
  const json& last() const { return samples_.back().second; }
  bool empty() const { return samples_.empty(); }
  const std::vector<std::pair<double, json>>& samples() const { return samples_; }

 private:
  std::vector<std::pair<double, json>> samples_;
};

inline int count_attach_fds(pid_t pid) {
  int n = 0;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (int fd = 0; fd < 4096; fd++) {
    char buf[64] = {};
    ssize_t len = readlink((dir + "/" + std::to_string(fd)).c_str(), buf, sizeof(buf) - 1);
    if (len <= 0) continue;
    std::string t(buf, static_cast<size_t>(len));
    if (t == "anon_inode:bpf_link" || t == "anon_inode:[perf_event]") n++;
  }
  return n;
}

// A tickprobe subcommand running in the background.
class Probe {
 public:
  Probe(Clock::time_point t0, std::vector<std::string> args) : t0_(t0) {
    args.insert(args.begin(), {tt::bin_path("tickprobe")});
    started_s = since(t0);
    proc_ = std::make_unique<tt::Subprocess>(args);
  }
  // Waits until tickprobe holds its attachments: the number of its BPF
  // link and perf-event fds is non-zero and has not changed for 500 ms.
  // (No ready signal yet; the families attach before their first drain.)
  bool wait_attached(std::chrono::milliseconds timeout = 20s) {
    auto end = Clock::now() + timeout;
    int last = -1;
    auto stable_since = Clock::now();
    while (Clock::now() < end) {
      if (done()) return false;
      int n = count_attach_fds(proc_->pid());
      if (n != last) {
        last = n;
        stable_since = Clock::now();
      } else if (n > 0 && Clock::now() - stable_since >= 500ms) {
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  pid_t pid() const { return proc_->pid(); }
  // Non-blocking form of wait_attached(), for poll loops: true once the
  // attachment count has been non-zero and unchanged for 500 ms.
  bool attached_now() {
    if (attached_) return true;
    if (done()) return false;
    int n = count_attach_fds(proc_->pid());
    if (n != last_fds_) {
      last_fds_ = n;
      fds_since_ = Clock::now();
    } else if (n > 0 && Clock::now() - fds_since_ >= 500ms) {
      attached_ = true;
    }
    return attached_;
  }

  // True once it exited (and its report is read).
  bool done() {
    if (exit_s) return true;
    if (auto st = proc_->wait_for(0ms)) {
      exit_s = since(t0_);
      rc = *st;
      report = json::parse(proc_->stdout_text(), nullptr, false);
      stderr_text = proc_->stderr_text();
    }
    return exit_s.has_value();
  }
  // Its watch: the report's exact window (CLOCK_MONOTONIC, steady_clock's
  // clock) when it has one; else it lasted duration_s and ended just before
  // the process exited (teardown, detaching uprobes, can take a second).
  double watch_start_s() const {
    if (auto w = window_ns("start_ns")) return (*w - t0_ns()) / 1e9;
    return *exit_s - report.value("duration_s", 0.0);
  }
  double watch_end_s() const {
    if (auto w = window_ns("end_ns")) return (*w - t0_ns()) / 1e9;
    return *exit_s;
  }

  double started_s = 0;
  std::optional<double> exit_s;
  int rc = -1;
  json report;
  std::string stderr_text;

 private:
  std::optional<double> window_ns(const char* key) const {
    if (!report.is_object() || !report.contains("window") || !report["window"].contains(key)) return std::nullopt;
    double v = report["window"][key].get<double>();
    return v > 0 ? std::optional<double>(v) : std::nullopt;
  }
  double t0_ns() const {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t0_.time_since_epoch()).count());
  }
  Clock::time_point t0_;
  std::unique_ptr<tt::Subprocess> proc_;
  bool attached_ = false;
  int last_fds_ = -1;
  Clock::time_point fds_since_ = Clock::now();
};

// Polls /stats every 40 ms until every probe has exited (or 60 s), calling
// `at(t)` on the way for timed actions; then lets one tick pass and takes a
// last snapshot.
template <class F>
void run_until_done(const Game& g, Clock::time_point t0, StatsLog& log, std::vector<Probe*> probes, F at) {
  for (;;) {
    log.poll(g, t0);
    at(since(t0));
    bool all = true;
    for (Probe* p : probes) all &= p->done();
    if (all || since(t0) > 60) break;
    std::this_thread::sleep_for(40ms);
  }
  std::this_thread::sleep_for(120ms);  // /stats is published once per tick
  log.poll(g, t0);
}

inline std::uint64_t u(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) p = &p->at(k);
  return p->get<std::uint64_t>();
}

}  // namespace tickprobe::test::game
