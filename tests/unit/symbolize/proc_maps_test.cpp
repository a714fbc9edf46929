#include <gtest/gtest.h>
#include <unistd.h>

#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

const char kMaps[] =
    "55d0c8a00000-55d0c8a02000 r--p 00000000 08:01 1312 /usr/bin/my game\n"
    "55d0c8a02000-55d0c8a08000 r-xp 00002000 08:01 1312 /usr/bin/my game\n"
    "7f1000000000-7f1000021000 rw-p 00000000 00:00 0 \n"
    "7f1000100000-7f1000180000 r-xp 00010000 fd:02 99 /opt/srv/libgame.so (deleted)\n"
    "7f1000200000-7f1000201000 r-xp 00000000 00:00 0\n"
    "7ffd8e5f0000-7ffd8e5f2000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    "garbage line\n";

TEST(ProcMaps, ParsesAllFieldsAndSpecialPaths) {
  auto all = parse_proc_maps(kMaps, /*executable_only=*/false);
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all[0].path, "/usr/bin/my game");  // spaces in the path survive
  EXPECT_FALSE(all[0].executable);
  EXPECT_EQ(all[1].start, 0x55d0c8a02000u);
  EXPECT_EQ(all[1].end, 0x55d0c8a08000u);
  EXPECT_EQ(all[1].file_offset, 0x2000u);
  EXPECT_EQ(all[1].dev_major, 8u);
  EXPECT_EQ(all[1].dev_minor, 1u);
  EXPECT_EQ(all[1].inode, 1312u);
  EXPECT_TRUE(all[1].executable);
  EXPECT_EQ(all[2].path, "");  // anonymous
  EXPECT_EQ(all[3].path, "/opt/srv/libgame.so");
  EXPECT_TRUE(all[3].deleted);
  EXPECT_EQ(all[3].dev_major, 0xfdu);
  EXPECT_EQ(all[4].path, "");
  EXPECT_EQ(all[5].path, "[vdso]");
  EXPECT_FALSE(all[5].deleted);
  EXPECT_EQ(all[6].path, "[vsyscall]");
}

TEST(ProcMaps, ExecutableOnlyFilters) {
  auto exec = parse_proc_maps(kMaps, /*executable_only=*/true);
  ASSERT_EQ(exec.size(), 5u);
  for (const auto& m : exec) EXPECT_TRUE(m.executable);
}

TEST(ProcMaps, ReadsOwnMaps) {
  auto maps = read_proc_maps(static_cast<uint32_t>(getpid()));
  ASSERT_FALSE(maps.empty());
  bool found_self = false;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = 0;
  for (const auto& m : maps) found_self |= m.path == exe;
  EXPECT_TRUE(found_self) << "no executable mapping of " << exe;
  EXPECT_TRUE(read_proc_maps(0x7ffffff0u).empty());  // no such process
}

}  // namespace
}  // namespace tickprobe
