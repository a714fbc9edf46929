// tickprobe_test_support: small helpers for tests that run real processes
// (tickgame, tickbots, the tickprobe CLI) and talk to them over HTTP/TCP.
//
//   using namespace tickprobe::test;
//   auto port = pick_free_port();
//   Subprocess game({bin_path("tickgame"), "--admin-port", std::to_string(port)});
//   ASSERT_TRUE(wait_for_tcp_port(port, std::chrono::seconds(5)));
//   auto [status, body] = http_get("127.0.0.1", port, "/stats");
//   game.terminate();            // SIGTERM, then SIGKILL after a grace period
//   std::string out = game.stdout_text();
//
// A Subprocess is killed (SIGKILL) and reaped when destroyed, and also dies
// if the test process dies (PR_SET_PDEATHSIG), so a failing test leaves no
// strays behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tickprobe::test {

class Subprocess {
 public:
  // Starts argv[0] (a path; no PATH search) with the current environment
  // plus `extra_env` ("KEY=VALUE", overriding). stdout/stderr go to the
  // given files, or to temporary files (removed on destruction) when empty.
  explicit Subprocess(std::vector<std::string> argv, std::vector<std::string> extra_env = {},
                      std::string stdout_path = "", std::string stderr_path = "");
  ~Subprocess();
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  bool running();
  // Exit status once the process ended within `timeout`: the exit code, or
  // 128 + signal number. nullopt if it is still running.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));
  void kill_now();  // SIGKILL and reap

  const std::string& stdout_path() const { return out_path_; }
  const std::string& stderr_path() const { return err_path_; }
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_path_, err_path_;
  bool own_out_ = false, own_err_ = false;
};

struct HttpResult {
  int status = 0;  // 0 when the request failed (no connection, timeout)
  std::string body;
};
HttpResult http_get(const std::string& host, std::uint16_t port, const std::string& path,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));
HttpResult http_post(const std::string& host, std::uint16_t port, const std::string& path, const std::string& body,
                     const std::string& content_type = "application/json",
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

// True once a TCP connect to host:port succeeds, false after `timeout`.
bool wait_for_tcp_port(std::uint16_t port, std::chrono::milliseconds timeout, const std::string& host = "127.0.0.1");
// A port that was free on 127.0.0.1 a moment ago (bind to :0, read, close).
std::uint16_t pick_free_port();
// Path of a built binary: TICKPROBE_BIN_DIR/name.
std::string bin_path(const std::string& name);
// Whole file as a string ("" if unreadable).
std::string read_file(const std::string& path);
// Open fds of `pid` whose link target starts with `prefix` (e.g. "socket:").
int count_fds(pid_t pid, const std::string& prefix);
// Probe attachments of `pid`: perf_event fds (samplers, perf-event uprobes)
// plus uprobe_multi links (one per probe where the kernel has them,
// collector/core/uprobe_multi.h), the latter told by /proc/PID/fdinfo.
int count_probe_fds(pid_t pid);

}  // namespace tickprobe::test
