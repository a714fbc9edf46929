// The BPF unwinder through CFA expressions (bpf/lib/unwind.bpf.h), against
// ground truth: our hand-written realigned functions (tests/fixtures/unwind)
// must reach their caller, and under a real TLS handshake load `openssl
// s_server`'s samples inside libcrypto must reach the s_server code that
// drives the handshake (as `perf record --call-graph dwarf` does). Needs
// root and BPF (label: bpf).
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

// `tickprobe profile --pid P -d D --json`; the JSON, or null.
json profile(pid_t pid, int seconds, const std::string& freq = "499", std::vector<std::string> env = {}) {
  tt::Subprocess probe({tt::bin_path("tickprobe"), "profile", "-q", "--pid", std::to_string(pid), "-d",
                        std::to_string(seconds), "-F", freq, "--json"},
                       std::move(env));
  auto st = probe.wait_for(std::chrono::seconds(seconds + 40));
  EXPECT_TRUE(st.has_value()) << "tickprobe profile did not finish";
  if (!st) return json();
  EXPECT_EQ(*st, 0) << probe.stderr_text();
  return json::parse(probe.stdout_text(), nullptr, false);
}

std::vector<json> user_frames(const json& sample) {
  std::vector<json> out;
  for (const auto& f : sample["stack"])
    if (!f.value("kernel", false)) out.push_back(f);
  return out;
}

bool wait_ready(tt::Subprocess& p) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (tt::read_file(p.stdout_path()).find("ready") != std::string::npos) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Share of the samples in `leaf_fn` whose stack has `caller` right above it.
// Returns the profile's counters.
json expect_caller_reached(const std::string& mode, const std::string& leaf_fn, double min_share,
                           std::vector<std::string> env = {}) {
  tt::Subprocess fx({tt::bin_path("cfi_expr_fixture"), mode, "20"});
  EXPECT_TRUE(wait_ready(fx)) << fx.stderr_text();
  json j = profile(fx.pid(), 3, "499", std::move(env));
  EXPECT_TRUE(j.is_object());
  if (!j.is_object()) return json::object();
  double in_leaf = 0, reached = 0;
  for (const auto& s : j["samples"]) {
    auto fr = user_frames(s);
    if (fr.empty() || fr[0]["function"] != leaf_fn) continue;
    double v = s["values"][0].get<double>();
    in_leaf += v;
    if (fr.size() > 2 && fr[1]["function"] == "spin_caller" && fr[2]["function"] == "main") reached += v;
  }
  EXPECT_GT(in_leaf, 100) << "too few samples in " << leaf_fn;
  if (in_leaf <= 0) return j["counters"];
  std::printf("%s: %.0f of %.0f samples reach spin_caller < main (%.1f%%)\n", leaf_fn.c_str(), reached, in_leaf,
              100 * reached / in_leaf);
  EXPECT_GE(reached / in_leaf, min_share);
  return j["counters"];
}

TEST(UnwindBpf, RealignedFrameThroughRsp) { expect_caller_reached("sp", "realigned_spin", 0.99); }
TEST(UnwindBpf, RealignedFrameThroughRbp) { expect_caller_reached("rbp", "realigned_spin_rbp", 0.99); }

// The profile family's per-CPU frame cache (TP_FRAME_CACHE) must give the
// rules the searches give. In verify mode every hit is searched again and
// compared: no mismatch over thousands of hits, and the stacks still reach
// main through the realigned (CFA = *(rsp+a)+b) frames. Off: no hits, the
// same stacks. (Its cost is in scripts/bench_profile.sh, not here.)
TEST(UnwindBpf, FrameCacheAgreesWithTheSearch) {
  json on = expect_caller_reached("sp", "realigned_spin", 0.99, {"TICKPROBE_FRAME_CACHE=verify"});
  std::printf("verify: frame_cache_hits=%d misses=%d mismatches=%d\n", on.value("frame_cache_hits", 0),
              on.value("frame_cache_misses", 0), on.value("frame_cache_mismatches", 0));
  // ~1500 samples of a 3-frame stack: outer frames hit from the 2nd sample.
  EXPECT_GT(on.value("frame_cache_hits", 0), 500) << on.dump();
  EXPECT_EQ(on.value("frame_cache_mismatches", -1), 0) << on.dump();
  json off = expect_caller_reached("sp", "realigned_spin", 0.99, {"TICKPROBE_FRAME_CACHE=off"});
  // (Work counters that stayed zero are left out of the profile's counters.)
  EXPECT_EQ(off.value("frame_cache_hits", 0), 0) << off.dump();
  EXPECT_EQ(off.value("frame_cache_misses", 0), 0) << off.dump();
}

TEST(UnwindBpf, UnsupportedRowsAreCounted) {
  // CFA = rax + 8 is not evaluated: the walk falls back to the frame pointer
  // (skipping spin_caller) and says so in the counters.
  tt::Subprocess fx({tt::bin_path("cfi_expr_fixture"), "rax", "20"});
  ASSERT_TRUE(wait_ready(fx)) << fx.stderr_text();
  json j = profile(fx.pid(), 2);
  ASSERT_TRUE(j.is_object());
  EXPECT_GT(j["counters"].value("unwind_expr_unsupported", 0), 50) << j["counters"].dump();
  EXPECT_GE(j["counters"].value("unwind_rows_unsupported", 0), 3) << j["counters"].dump();
}

TEST(UnwindBpf, TlsHandshakesReachTheServerCode) {
  ASSERT_EQ(access("/usr/bin/openssl", X_OK), 0) << "openssl not installed\nhint: run scripts/bootstrap.sh (installs openssl)";
  char tmpl[] = "/tmp/tickprobe-unwind-tls-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string key = dir + "/key.pem", cert = dir + "/cert.pem";
  {
    tt::Subprocess req({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                        "-days", "1", "-keyout", key, "-out", cert});
    ASSERT_EQ(req.wait_for(30s).value_or(-1), 0) << req.stderr_text();
  }
  uint16_t port = tt::pick_free_port();
  tt::Subprocess server({"/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", cert,
                         "-key", key, "-quiet", "-www"});
  ASSERT_TRUE(tt::wait_for_tcp_port(port, 10s)) << server.stderr_text();
  tt::Subprocess load({"/usr/bin/openssl", "s_time", "-connect", "127.0.0.1:" + std::to_string(port), "-new", "-time",
                       "10"});
  std::this_thread::sleep_for(1s);
  json j = profile(server.pid(), 8);
  load.terminate();
  server.terminate();
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(j.is_object());
  // Among samples with a libcrypto frame (the handshake's CPU), the share
  // that also has a frame in the openssl binary: Debian's openssl is
  // stripped, so its frames are "func@0x... in openssl" (FDE names) and are matched
  // by module (the outermost is s_server's www_body/sv_body, under which
  // BIO_gets/SSL_read drive the handshake).
  double crypto = 0, reached = 0;
  for (const auto& s : j["samples"]) {
    bool in_crypto = false, in_openssl = false;
    for (const auto& f : user_frames(s)) {
      std::string m = f.value("module", "");
      in_crypto |= m.find("libcrypto.so") != std::string::npos;
      in_openssl |= m == "/usr/bin/openssl" || (m.size() >= 8 && m.compare(m.size() - 8, 8, "/openssl") == 0);
    }
    if (!in_crypto) continue;
    double v = s["values"][0].get<double>();
    crypto += v;
    if (in_openssl) reached += v;
  }
  ASSERT_GT(crypto, 200) << "too few handshake samples: is s_time loading the server?";
  std::printf("TLS handshakes: %.0f of %.0f libcrypto samples reach the openssl binary (%.1f%%); "
              "unwind_expr_unsupported=%d unwind_rows_unsupported=%d\n",
              reached, crypto, 100 * reached / crypto, j["counters"].value("unwind_expr_unsupported", 0),
              j["counters"].value("unwind_rows_unsupported", 0));
  EXPECT_GE(reached / crypto, 0.95);
}

}  // namespace
