// The Go fixture game server (tests/fixtures/go/gameserver) and tickprobe
// runs against it, for the Go tests of pauses/hitches, TLS and the heap.
#pragma once

#include <cstdio>
#include <cstring>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.h"

namespace tickprobe::test::go {

struct GoServer {
  std::unique_ptr<Subprocess> proc;
  uint16_t http_port = 0, tcp_port = 0, tls_port = 0;
};

inline GoServer start_go_server(std::vector<std::string> flags, std::vector<std::string> env = {},
                                const std::string& binary = "go_gameserver_stripped") {
  GoServer s;
  std::vector<std::string> argv = {bin_path(binary)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"-duration", "150s"});
  s.proc = std::make_unique<Subprocess>(argv, env);
  for (int i = 0; i < 400 && !s.http_port; ++i) {
    std::istringstream out(s.proc->stdout_text());
    std::string word;
    int http = 0, tcp = 0, tls = 0;
    if (out >> word >> http >> tcp >> tls && word == "ready") {
      s.http_port = static_cast<uint16_t>(http);
      s.tcp_port = static_cast<uint16_t>(tcp);
      s.tls_port = static_cast<uint16_t>(tls);
    } else {
      usleep(25000);
    }
  }
  EXPECT_NE(s.http_port, 0) << "the Go fixture did not start: " << s.proc->stderr_text();
  return s;
}

inline nlohmann::json get_json(const GoServer& s, const std::string& path) {
  auto r = http_get("127.0.0.1", s.http_port, path, std::chrono::seconds(20));
  EXPECT_EQ(r.status, 200) << path;
  return r.status == 200 ? nlohmann::json::parse(r.body) : nlohmann::json::object();
}

using tickprobe::test::count_fds;
using tickprobe::test::count_probe_fds;

// `tickprobe <args>` in the background (-d 0: until terminate()), attached
// once its probe attachments (count_probe_fds: perf events, uprobe_multi
// links) reach `min_fds` and stop growing for a second.
struct Tickprobe {
  std::unique_ptr<Subprocess> proc;
  // When the last perf_event fd appeared (its probes are all in place).
  std::chrono::steady_clock::time_point attached_at;
  explicit Tickprobe(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {bin_path("tickprobe")};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = std::make_unique<Subprocess>(argv);
  }
  bool wait_attached(int min_fds) {
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + std::chrono::seconds(90);
    int last = -1;
    auto stable_since = Clock::now();
    while (Clock::now() < deadline && proc->running()) {
      int n = count_probe_fds(proc->pid());
      if (n != last) {
        last = n;
        stable_since = Clock::now();
      } else if (n >= min_fds && Clock::now() - stable_since > std::chrono::seconds(1)) {
        attached_at = stable_since;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  nlohmann::json finish() {
    int rc = proc->terminate(std::chrono::seconds(30));
    EXPECT_EQ(rc, 0) << proc->stderr_text();
    auto j = nlohmann::json::parse(proc->stdout_text(), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << proc->stdout_text().substr(0, 2000) << "\n"
                                   << proc->stderr_text();
    return j.is_discarded() ? nlohmann::json::object() : j;
  }
};

}  // namespace tickprobe::test::go
