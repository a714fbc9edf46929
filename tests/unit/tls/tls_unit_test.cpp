// The TLS family's pure parts: finding OpenSSL's handshake function and
// state-machine fields in the system's libssl (Debian 12: OpenSSL 3.0,
// stripped), the report summaries, and the JSON field names.
#include <gtest/gtest.h>

#include <unistd.h>

#include "exporters/tls_report.h"
#include "probes/openssl_layout.h"
#include "runtime/tls_hunt.h"
#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

const char* kLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

TEST(OpensslLayout, FindsTheHandshakeFunctionInTheSystemLibssl) {
  ASSERT_EQ(access(kLibssl, R_OK), 0) << "no " << kLibssl << "\nhint: run scripts/bootstrap.sh (installs libssl-dev)";
  Symbolizer sym;
  auto l = find_openssl_layout(kLibssl, [&](const std::string& n) { return sym.find_symbol_address(kLibssl, n); });
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_NE(l->statem_accept, 0u);
  EXPECT_NE(l->statem_connect, 0u);
  EXPECT_NE(l->statem_accept, l->statem_connect);
  // OpenSSL 3.0's ossl_statem_accept/connect tail-call state_machine(s, 1/0).
  EXPECT_NE(l->state_machine, 0u);
  // struct ossl_statem_st: state, 5 ints, hand_state, request_state, in_init.
  EXPECT_GE(l->hand_state_off, 20);
  EXPECT_EQ(l->statem_state_off, l->hand_state_off - 20);
  EXPECT_TRUE(l->notes.empty());
}

TEST(OpensslLayout, RejectsABinaryWithoutOpenssl) {
  Symbolizer sym;
  auto l = find_openssl_layout("/bin/sleep", [&](const std::string& n) { return sym.find_symbol_address("/bin/sleep", n); });
  EXPECT_FALSE(l.ok());
}

TlsHandshake hs(const char* result, uint64_t latency, uint64_t cpu, uint32_t calls) {
  TlsHandshake h;
  h.side = "server";
  h.result = result;
  h.start_ns = 1000;
  h.end_ns = 1000 + latency;
  h.cpu_ns = cpu;
  h.calls = calls;
  h.peer = "127.0.0.1:5000";
  return h;
}

TEST(TlsReport, SummaryCountsOutcomesAndKeepsTheSlowest) {
  TlsSnapshot snap;
  TlsOutcome done, failed;
  done.side = failed.side = "server";
  done.result = "completed";
  failed.result = "failed";
  for (uint64_t l : {1'000'000, 2'000'000, 3'000'000}) {
    done.count++;
    done.calls += 2;
    done.cpu_ns += l / 2;
    done.latency.add(l);
    done.cpu.add(l / 2);
  }
  failed.count = 1;
  failed.latency.add(10'000);
  snap.outcomes = {done, failed};
  snap.worst = {hs("completed", 3'000'000, 1'500'000, 2), hs("completed", 2'000'000, 1'000'000, 2)};
  TlsReport r;
  summarize_tls_outcomes(snap, 2.0, 1, r);
  EXPECT_EQ(r.total, 4u);
  EXPECT_EQ(r.completed, 3u);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_DOUBLE_EQ(r.rate_per_s, 2.0);
  EXPECT_DOUBLE_EQ(r.mean_calls, 2.0);
  EXPECT_DOUBLE_EQ(r.cpu_share_of_latency, 0.5);
  ASSERT_EQ(r.worst.size(), 1u);
  EXPECT_EQ(r.worst[0].latency_ns(), 3'000'000u);

  auto j = tls_report_json(r);
  EXPECT_EQ(j["handshakes"]["completed"], 3);
  EXPECT_EQ(j["worst"][0]["peer"], "127.0.0.1:5000");
  EXPECT_TRUE(j["cpu_profile"].contains("share_reaching_caller"));
  EXPECT_NE(tls_report_text(r).find("3 completed"), std::string::npos);
}

TEST(TlsReport, ProfileSharesTellOpensslFramesFromTheirCaller) {
  auto frame = [](const char* fn, const char* module) {
    Frame f;
    f.function = fn;
    f.module = module;
    return f;
  };
  Profile p;
  Sample deep;  // leaf in libcrypto, through libssl, into the application
  deep.frames = {frame("bn_mul", "/usr/lib/libcrypto.so.3"), frame("", "/usr/lib/libssl.so.3"),
                 frame("serve", "/usr/bin/server")};
  deep.values = {3};
  Sample cut;  // the walk died inside libcrypto
  cut.frames = {frame("", "/usr/lib/libcrypto.so.3")};
  cut.values = {1};
  p.samples = {deep, cut};
  TlsReport r;
  r.library = "/usr/lib/libssl.so.3";
  summarize_tls_profile(p, 10, r);
  EXPECT_EQ(r.cpu_samples, 4);
  EXPECT_DOUBLE_EQ(r.share_reaching_openssl, 0.75);
  EXPECT_DOUBLE_EQ(r.share_reaching_caller, 0.75);
  ASSERT_EQ(r.top_stacks.size(), 2u);
  EXPECT_EQ(r.top_stacks[0].samples, 3);
}

}  // namespace
}  // namespace tickprobe
