// Ground truth for `tickprobe tls` against a TLS peer not written here:
// `openssl s_server` (blocking, -nbio, and -www, whose handshakes run
// implicitly inside SSL_read), driven by a known number of `openssl
// s_client` connections and raw TCP clients that send garbage or hang up
// mid-ClientHello. Counts are compared exactly: tickprobe is attached (its
// uprobe fds exist) before the first client starts, and stopped only after
// s_server has closed every client connection. Needs root and BPF (label: bpf).
#include <gtest/gtest.h>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

const char* kOpenssl = "/usr/bin/openssl";

using tt::count_fds;
using tt::count_probe_fds;

class TlsBpfTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("tickprobe-tls-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::string cmd = std::string(kOpenssl) + " req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout " +
                      (dir_ / "key.pem").string() + " -out " + (dir_ / "cert.pem").string() + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl req failed";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  void start_server(const std::vector<std::string>& extra) {
    port_ = tt::pick_free_port();
    std::vector<std::string> argv = {kOpenssl, "s_server", "-accept", "127.0.0.1:" + std::to_string(port_),
                                     "-cert", (dir_ / "cert.pem").string(), "-key", (dir_ / "key.pem").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    server_ = std::make_unique<tt::Subprocess>(argv);
    ASSERT_TRUE(tt::wait_for_tcp_port(port_, 10s)) << "s_server did not listen: " << server_->stderr_text();
  }

  // Waits until s_server has held no socket but its listener for 300 ms:
  // every client connection it accepted has been handled and freed.
  void wait_server_idle() {
    auto deadline = Clock::now() + 30s;
    auto idle_since = Clock::now();
    while (Clock::now() < deadline) {
      if (count_fds(server_->pid(), "socket:") > 1) idle_since = Clock::now();
      else if (Clock::now() - idle_since >= 300ms) return;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "s_server still has client connections";
  }

  size_t server_failures() const {
    std::string err = server_->stderr_text();
    size_t c = 0;
    for (size_t at = err.find("CONNECTION FAILURE"); at != std::string::npos; at = err.find("CONNECTION FAILURE", at + 1))
      c++;
    return c;
  }

  // Waits until s_server has reported `n` more failed connections on stderr
  // than before the clients started (its port probe is one).
  void wait_server_failures(size_t n) {
    auto deadline = Clock::now() + 30s;
    while (server_failures() < failures_before_ + n && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server_failures(), failures_before_ + n) << server_->stderr_text();
  }

  // Runs `tickprobe tls --json` on the server while `clients` runs, and
  // returns the report. `extra` adds options (e.g. -o).
  json watch(const std::function<void()>& clients, const std::vector<std::string>& extra = {}) {
    wait_server_idle();  // the port probe of wait_for_tcp_port is done
    std::vector<std::string> argv = {tt::bin_path("tickprobe"), "tls", "--pid", std::to_string(server_->pid()),
                                     "-d", "0", "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    tt::Subprocess tp(argv);
    // Attached once its probes exist: one sampler per CPU, then the uprobes
    // (handshake entry/return, SSL_free, SSL_set0_rbio, BIO_int_ctrl).
    const int want = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) + 5;
    auto deadline = Clock::now() + 60s;
    while (count_probe_fds(tp.pid()) < want && tp.running() && Clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    EXPECT_GE(count_probe_fds(tp.pid()), want) << "tickprobe did not attach: " << tp.stderr_text();
    std::this_thread::sleep_for(500ms);
    failures_before_ = server_failures();
    clients();
    wait_server_idle();
    std::this_thread::sleep_for(300ms);
    int rc = tp.terminate(30s);
    EXPECT_EQ(rc, 0) << tp.stderr_text();
    std::string out = tp.stdout_text();
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << out << "\nstderr: " << tp.stderr_text();
    return j;
  }

  int run_s_clients(int n, const std::string& extra = "") {
    int ok = 0;
    for (int i = 0; i < n; i++) {
      std::string cmd = std::string(kOpenssl) + " s_client -connect 127.0.0.1:" + std::to_string(port_) + " " + extra +
                        " </dev/null >/dev/null 2>&1";
      if (std::system(cmd.c_str()) == 0) ok++;
    }
    return ok;
  }

  // A TLS client that connects and waits `delay_s` before its ClientHello:
  // the server's first handshake call on the new connection then finds no
  // data (WANT_READ) for certain. Python's ssl module, so the delay is in
  // the client's hands, not the scheduler's.
  bool delayed_tls_client(double delay_s) {
    std::string cmd = "python3 -c \"import socket,ssl,time; s=socket.create_connection(('127.0.0.1'," +
                      std::to_string(port_) + ")); time.sleep(" + std::to_string(delay_s) +
                      "); c=ssl.create_default_context(); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE; "
                      "t=c.wrap_socket(s); t.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); t.recv(64); t.close()\" "
                      ">/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }

  // A raw TCP client: sends `bytes`, then (unless hang_up) reads until the
  // server closes; always closes its end.
  void raw_client(const std::string& bytes, bool hang_up) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (!bytes.empty()) {
      ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    }
    if (!hang_up) {
      timeval tv{10, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char buf[4096];
      while (read(fd, buf, sizeof(buf)) > 0) {
      }
    }
    close(fd);
  }

  static uint64_t outcome_count(const json& r, const std::string& side, const std::string& result) {
    for (const auto& o : r["outcomes"])
      if (o["side"] == side && o["result"] == result) return o["count"].get<uint64_t>();
    return 0;
  }

  static void expect_sane_handshakes(const json& r) {
    ASSERT_FALSE(r["worst"].empty());
    for (const auto& h : r["worst"]) {
      EXPECT_EQ(h["side"], "server");
      EXPECT_GT(h["latency_ns"].get<uint64_t>(), 0u);
      EXPECT_GT(h["cpu_ns"].get<uint64_t>(), 0u);
      EXPECT_LE(h["cpu_ns"].get<uint64_t>(), h["latency_ns"].get<uint64_t>());
      EXPECT_GE(h["calls"].get<uint64_t>(), 1u);
      EXPECT_EQ(h["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << h.dump();
    }
  }

  static fs::path dir_;
  uint16_t port_ = 0;
  std::unique_ptr<tt::Subprocess> server_;
  size_t failures_before_ = 0;
};

fs::path TlsBpfTest::dir_;

constexpr int kClients = 20;

TEST_F(TlsBpfTest, BlockingServerCountsEveryHandshakeAndProfilesItsCpu) {
  start_server({"-rev", "-quiet"});
  std::string folded = (dir_ / "hs.folded").string();
  int ok = 0;
  json r = watch([&] { ok = run_s_clients(kClients); }, {"-o", folded});
  ASSERT_EQ(ok, kClients) << "s_client failed";
  std::printf("report: %s\n", r.dump().substr(0, 3000).c_str());
  EXPECT_EQ(r["handshakes"]["completed"].get<uint64_t>(), static_cast<uint64_t>(kClients));
  EXPECT_EQ(outcome_count(r, "server", "completed"), static_cast<uint64_t>(kClients));
  EXPECT_EQ(r["handshakes"]["failed"].get<uint64_t>(), 0u);
  EXPECT_EQ(r["handshakes"]["abandoned"].get<uint64_t>(), 0u);
  EXPECT_GT(r["latency"]["p50_ns"].get<double>(), 0);
  EXPECT_GE(r["latency"]["max_ns"].get<double>(), r["latency"]["p99_ns"].get<double>() * 0.999);
  EXPECT_GT(r["cpu"]["p50_ns"].get<double>(), 0);
  EXPECT_GT(r["cpu_share_of_latency"].get<double>(), 0);
  EXPECT_LE(r["cpu_share_of_latency"].get<double>(), 1.0);
  expect_sane_handshakes(r);

  // Handshake CPU: samples exist, and their stacks reach OpenSSL's
  // handshake code (libssl) and the application frames that called it
  // (s_server -rev: BIO_do_handshake -> SSL_do_handshake, which tail-calls
  // the handshake function, so it is no frame itself).
  int64_t samples = r["cpu_profile"]["samples"].get<int64_t>();
  EXPECT_GT(samples, 0);
  std::ifstream in(folded);
  std::string line;
  int64_t total = 0, in_app = 0;
  while (std::getline(in, line)) {
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    int64_t n = std::stoll(line.substr(sp + 1));
    total += n;
    if (line.find("__libc_start_main") != std::string::npos) in_app += n;
  }
  EXPECT_EQ(total, samples);
  double to_openssl = r["cpu_profile"]["share_reaching_openssl"].get<double>();
  double to_caller = r["cpu_profile"]["share_reaching_caller"].get<double>();
  std::printf("handshake CPU: %lld samples; %.1f%% reach libssl, %.1f%% the caller, %.1f%% main's caller\n",
              static_cast<long long>(total), 100 * to_openssl, 100 * to_caller,
              total ? 100.0 * static_cast<double>(in_app) / static_cast<double>(total) : 0.0);
  EXPECT_GE(to_openssl, 0.5) << "most handshake-CPU stacks should reach libssl";
  EXPECT_GE(to_caller, 0.5) << "most handshake-CPU stacks should reach the caller of OpenSSL";
}

TEST_F(TlsBpfTest, NonBlockingServerMeasuresAcrossWantReadCalls) {
  // -www -nbio: the handshake runs inside SSL_read on a non-blocking socket;
  // on WANT_READ s_server sleeps one second before it calls again. A
  // handshake whose client flight was not there yet at the server's first
  // read (the usual case; a client fast enough makes it one call) takes two
  // or more calls and at least a second end to end, with about a millisecond
  // of it on CPU: what per-call latency tools miss. It is still counted once.
  // Five s_clients (one or more calls each, as the race goes) and one
  // client that holds its ClientHello back for 300 ms (two or more calls,
  // deterministically).
  constexpr int kNbClients = 6;
  start_server({"-www", "-quiet", "-nbio"});
  int ok = 0;
  bool delayed_ok = false;
  json r = watch([&] {
    ok = run_s_clients(kNbClients - 1);
    delayed_ok = delayed_tls_client(0.3);
  });
  ASSERT_EQ(ok, kNbClients - 1);
  ASSERT_TRUE(delayed_ok) << "the delayed python TLS client failed";
  std::printf("report: %s\n", r.dump().substr(0, 1500).c_str());
  EXPECT_EQ(outcome_count(r, "server", "completed"), static_cast<uint64_t>(kNbClients));
  EXPECT_EQ(r["handshakes"]["total"].get<uint64_t>(), static_cast<uint64_t>(kNbClients));
  uint64_t multi_call = 0;
  for (const auto& h : r["worst"]) multi_call += h["calls"].get<uint64_t>() >= 2;
  EXPECT_GE(multi_call, 1u) << "the delayed client's handshake must take more than one call";
  expect_sane_handshakes(r);
  for (const auto& h : r["worst"]) {
    if (h["calls"].get<uint64_t>() < 2) continue;
    EXPECT_GE(h["latency_ns"].get<uint64_t>(), 900'000'000u) << "s_server sleeps 1 s between the calls";
    EXPECT_LT(h["cpu_ns"].get<uint64_t>() * 10, h["latency_ns"].get<uint64_t>());
  }
}

TEST_F(TlsBpfTest, ImplicitHandshakeInsideSslReadIsMeasured) {
  // -www never calls SSL_accept: its handshakes run inside SSL_read.
  start_server({"-www", "-quiet"});
  int ok = 0;
  json r = watch([&] { ok = run_s_clients(kClients); });
  ASSERT_EQ(ok, kClients);
  EXPECT_EQ(outcome_count(r, "server", "completed"), static_cast<uint64_t>(kClients));
  EXPECT_EQ(r["handshakes"]["total"].get<uint64_t>(), static_cast<uint64_t>(kClients));
  expect_sane_handshakes(r);
}

constexpr int kBad = 5;

TEST_F(TlsBpfTest, GarbageIsAFailedHandshake) {
  start_server({"-rev", "-quiet"});
  json r = watch([&] {
    for (int i = 0; i < kBad; i++) raw_client("GET / HTTP/1.1\r\nHost: x\r\n\r\n", /*hang_up=*/false);
    wait_server_failures(kBad);
  });
  EXPECT_EQ(outcome_count(r, "server", "failed"), static_cast<uint64_t>(kBad)) << r.dump();
  EXPECT_EQ(r["handshakes"]["total"].get<uint64_t>(), static_cast<uint64_t>(kBad));
}

// The first bytes of a ClientHello: a handshake record announcing 200 bytes.
const std::string kPartialHello("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11);

TEST_F(TlsBpfTest, HangUpMidClientHelloFailsUnderOpenssl3Defaults) {
  // OpenSSL 3 treats an EOF inside a handshake as fatal (unexpected EOF).
  start_server({"-rev", "-quiet"});
  json r = watch([&] {
    for (int i = 0; i < kBad; i++) raw_client(kPartialHello, /*hang_up=*/true);
    for (int i = 0; i < kBad; i++) raw_client("", /*hang_up=*/true);
    wait_server_failures(2 * kBad);
  });
  EXPECT_EQ(outcome_count(r, "server", "failed"), static_cast<uint64_t>(2 * kBad)) << r.dump();
  EXPECT_EQ(r["handshakes"]["total"].get<uint64_t>(), static_cast<uint64_t>(2 * kBad));
}

TEST_F(TlsBpfTest, HangUpWithIgnoredEofIsAbandoned) {
  // With SSL_OP_IGNORE_UNEXPECTED_EOF the EOF is no error: the server frees
  // the SSL object with the handshake unfinished.
  start_server({"-rev", "-quiet", "-ignore_unexpected_eof"});
  json r = watch([&] {
    for (int i = 0; i < kBad; i++) raw_client(kPartialHello, /*hang_up=*/true);
    wait_server_failures(kBad);
  });
  EXPECT_EQ(outcome_count(r, "server", "abandoned"), static_cast<uint64_t>(kBad)) << r.dump();
  EXPECT_EQ(r["handshakes"]["total"].get<uint64_t>(), static_cast<uint64_t>(kBad));
}

TEST(TlsBpfMissingLibrary, ProcessWithoutOpensslIsOneClearError) {
  tt::Subprocess sleeper({"/bin/sleep", "60"});
  std::this_thread::sleep_for(200ms);
  tt::Subprocess tp({tt::bin_path("tickprobe"), "tls", "--pid", std::to_string(sleeper.pid()), "-d", "1"});
  auto rc = tp.wait_for(60s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 1);
  std::string err = tp.stderr_text();
  std::string first = err.substr(0, err.find('\n'));
  EXPECT_NE(first.find("no OpenSSL"), std::string::npos) << err;
  EXPECT_NE(first.find("sleep"), std::string::npos) << err;
  EXPECT_NE(first.find("libc.so.6"), std::string::npos) << err;
  EXPECT_TRUE(tp.stdout_text().empty());
}

}  // namespace
