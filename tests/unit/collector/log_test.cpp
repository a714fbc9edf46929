// The logger's rate limit: repeats of one call site are summarized in one
// line and counted (issue 11.4). No sleeps: the window is long and the
// summary is forced.
#include "core/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace tickprobe {
namespace {

std::vector<std::string> lines_of(FILE* f) {
  std::vector<std::string> out;
  std::rewind(f);
  char buf[1024];
  while (std::fgets(buf, sizeof buf, f)) out.emplace_back(buf);
  return out;
}

TEST(LogRateLimit, StormIsSummarizedAndCounted) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  set_log_stream(f);
  set_log_level(LogLevel::kWarn);
  set_log_rate_limit(5, 3600);
  auto before = log_stats();
  for (int i = 0; i < 25561; i++) TP_LOG_WARN("cannot trace new process %d: gone", i);
  TP_LOG_WARN("another site %d", 1);  // a different call site is not limited by the first
  flush_log_summaries(true);
  set_log_stream(nullptr);
  auto lines = lines_of(f);
  std::fclose(f);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0], "warning: cannot trace new process 0: gone\n");
  EXPECT_EQ(lines[4], "warning: cannot trace new process 4: gone\n");
  EXPECT_EQ(lines[5], "warning: another site 1\n");
  EXPECT_EQ(lines[6], "warning: ... and 25,556 more like this in the last 3600 s: cannot trace new process %d: gone\n");
  auto after = log_stats();
  EXPECT_EQ(after.suppressed - before.suppressed, 25556u);
  EXPECT_EQ(after.printed - before.printed, 7u);
  set_log_rate_limit(5, 10);
}

TEST(LogRateLimit, DebugIsNotLimited) {
  FILE* f = std::tmpfile();
  set_log_stream(f);
  set_log_level(LogLevel::kDebug);
  for (int i = 0; i < 20; i++) TP_LOG_DEBUG("detail %d", i);
  set_log_level(LogLevel::kWarn);
  set_log_stream(nullptr);
  EXPECT_EQ(lines_of(f).size(), 20u);
  std::fclose(f);
}

}  // namespace
}  // namespace tickprobe
