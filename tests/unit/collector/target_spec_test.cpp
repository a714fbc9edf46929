#include <gtest/gtest.h>
#include <unistd.h>

#include "targets/target_spec.h"

namespace tickprobe {
namespace {

TEST(TargetSpec, MatchesByPidCommAndExe) {
  TargetSpec s;
  s.pids = {42};
  s.comms = {"tickgame"};
  s.exes = {"/opt/srv/bin/worldd", "authd"};
  EXPECT_TRUE(s.matches(42, "x", "/bin/x"));
  EXPECT_TRUE(s.matches(1, "tickgame", "/bin/x"));
  EXPECT_TRUE(s.matches(1, "x", "/opt/srv/bin/worldd"));
  EXPECT_TRUE(s.matches(1, "x", "/opt/srv/bin/worldd (deleted)"));  // replaced on disk while running
  EXPECT_TRUE(s.matches(1, "x", "/usr/sbin/authd"));                // basename form
  EXPECT_FALSE(s.matches(1, "x", "/usr/sbin/worldd"));              // path form is exact
  EXPECT_FALSE(s.matches(1, "tickgam", "/bin/x"));
}

TEST(TargetSpec, LongCommIsTruncatedLikeTheKernel) {
  TargetSpec s;
  s.comms = {"a_very_long_server_name"};
  EXPECT_TRUE(s.matches(1, "a_very_long_ser", ""));
}

TEST(TargetSpec, ResolvesThisProcessByExe) {
  TargetSpec s;
  s.exes = {process_exe(static_cast<uint32_t>(getpid()))};
  // resolve_targets skips the calling process itself (a tracer never traces itself).
  auto pids = resolve_targets(s);
  EXPECT_EQ(std::count(pids.begin(), pids.end(), static_cast<uint32_t>(getpid())), 0);
  TargetSpec p;
  p.pids = {static_cast<uint32_t>(getpid())};
  EXPECT_EQ(resolve_targets(p), std::vector<uint32_t>{static_cast<uint32_t>(getpid())});
}

}  // namespace
}  // namespace tickprobe
