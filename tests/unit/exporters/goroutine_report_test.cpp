// The goroutine report (exporters/goroutine_report.h): JSON fields and the
// text of a leak, on a hand-made report.
#include <gtest/gtest.h>

#include "goroutine_report.h"

namespace tickprobe {
namespace {

GoroutineReport sample_report() {
  GoroutineReport r;
  r.pid = 42;
  r.executable = "/srv/game";
  r.go_version = "go1.19.8";
  r.layout_source = "table";
  r.layout_verified = true;
  r.allgs_source = "runtime.allgadd";
  r.snapshots = 10;
  r.elapsed_s = 9;
  r.live = 107;
  r.live_system = 5;
  r.counters = {{"bytes_read", 1000}, {"stack_retried", 2}, {"g_invalid", 0}};
  GoroutineGroup leak;
  leak.start_function = "main.worker";
  leak.created_by = "main.spawn (/src/main.go:10)";
  leak.count = 100;
  leak.first_count = 10;
  leak.oldest_s = 9;
  leak.states = {{"chan receive", 100}};
  leak.stack_state = "chan receive";
  leak.stack = {{"runtime.gopark", "proc.go", 363, 0x1000, false},
                {"main.worker", "main.go", 20, 0x2000, false},
                {"runtime.goexit", "asm_amd64.s", 1594, 0x3000, false}};
  leak.verdict.leaking = true;
  leak.verdict.growth_bytes_per_s = 10;
  leak.verdict.r2 = 0.99;
  r.leaks = {leak};
  r.groups = {leak};
  return r;
}

TEST(GoroutineReport, Json) {
  auto j = goroutine_report_json(sample_report());
  EXPECT_EQ(j["live"], 107);
  EXPECT_EQ(j["allgs_source"], "runtime.allgadd");
  ASSERT_EQ(j["leaks"].size(), 1u);
  EXPECT_EQ(j["leaks"][0]["growth"]["per_second"], 10.0);
  EXPECT_EQ(j["leaks"][0]["states"]["chan receive"], 100);
  EXPECT_EQ(j["leaks"][0]["stack"][1]["function"], "main.worker");
  EXPECT_EQ(j["counters"]["stack_retried"], 2);
}

TEST(GoroutineReport, TextNamesTheLeakAndItsStackWithoutGoexit) {
  std::string t = goroutine_report_text(sample_report(), true);
  EXPECT_NE(t.find("+10.0 goroutines/s  (10 -> 100, r2 0.99, oldest seen 9.0s)  main.worker"), std::string::npos) << t;
  EXPECT_NE(t.find("created by main.spawn (/src/main.go:10)"), std::string::npos) << t;
  EXPECT_NE(t.find("parked [chan receive]"), std::string::npos) << t;
  EXPECT_NE(t.find("main.go:20"), std::string::npos) << t;
  EXPECT_EQ(t.find("runtime.goexit"), std::string::npos) << t;  // as Go's traceback
  EXPECT_NE(t.find("stack_retried=2"), std::string::npos) << t;
  EXPECT_EQ(t.find("bytes_read"), std::string::npos) << t;
  // No leak: said so, never a silent empty answer.
  GoroutineReport none = sample_report();
  none.leaks.clear();
  EXPECT_NE(goroutine_report_text(none, true).find("no goroutine group grew steadily"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
