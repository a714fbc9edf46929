// Ground truth from the kernel itself: the memlock it charges per map fd
// (/proc/self/fdinfo), the entries a drain returns, the rows a process's
// binaries need (their CFI tables, built).
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "bpf/include/unwind.h"
#include "core/map_read.h"
#include "core/shared_maps.h"
#include "unwind/unwind_tables.h"

namespace tickprobe {
namespace {

uint64_t memlock_of(int fd) {
  std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("memlock:", 0) == 0) return std::strtoull(line.c_str() + 8, nullptr, 10);
  return 0;
}

TEST(MapsBpf, ProcessTablesAreChargedPerEntryAndStayBounded) {
  SharedMapSizes sizes;
  sizes.max_targets = 64;
  sizes.unwind_rows = 1024;
  auto maps = SharedMaps::create(sizes);
  ASSERT_TRUE(maps) << maps.error().message;
  int fd = maps->proc_maps_fd();
  const uint64_t empty = memlock_of(fd);
  // Preallocated, 64 tables would be charged 64 * 12 KiB up front.
  EXPECT_LT(empty, 8 * sizeof(tp_proc_maps)) << "proc_maps charged " << empty << " bytes while empty";
  static tp_proc_maps pm;
  std::memset(&pm, 0, sizeof pm);
  for (uint32_t pid = 1; pid <= sizes.max_targets; ++pid)
    ASSERT_EQ(bpf_map_update_elem(fd, &pid, &pm, BPF_ANY), 0) << "pid " << pid << ": " << std::strerror(errno);
  const uint64_t full = memlock_of(fd);
  EXPECT_GE(full - empty, sizes.max_targets * sizeof(tp_proc_maps));
  // The bound holds: one more process does not fit.
  uint32_t extra = sizes.max_targets + 1;
  EXPECT_NE(bpf_map_update_elem(fd, &extra, &pm, BPF_ANY), 0);
  EXPECT_EQ(errno, E2BIG);
}

TEST(MapsBpf, DrainReturnsEveryEntryOnceAndEmptiesTheMap) {
  struct Key {
    uint64_t id;
    uint64_t other;
  };
  const uint32_t n = 10000;  // more than two batches
  int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "drain_test", sizeof(Key), sizeof(uint64_t), n, nullptr);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  for (uint64_t i = 0; i < n; ++i) {
    Key k{i, ~i};
    uint64_t v = i * 3 + 1;
    ASSERT_EQ(bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST), 0);
  }
  std::map<uint64_t, uint64_t> seen;
  size_t calls = 0;
  size_t drained = drain_hash_map<Key, uint64_t>(
      fd,
      [&](const Key& k, uint64_t v) {
        calls++;
        EXPECT_EQ(k.other, ~k.id);
        seen[k.id] = v;
      },
      n);
  EXPECT_EQ(drained, n);
  EXPECT_EQ(calls, n);
  ASSERT_EQ(seen.size(), n);
  for (const auto& [id, v] : seen) ASSERT_EQ(v, id * 3 + 1) << "id " << id;
  Key next{};
  EXPECT_NE(bpf_map_get_next_key(fd, nullptr, &next), 0) << "entries left after the drain";
  // An empty map drains to nothing.
  EXPECT_EQ((drain_hash_map<Key, uint64_t>(fd, [](const Key&, uint64_t) {}, n)), 0u);
  ::close(fd);
}

TEST(MapsBpf, UnwindRowsSizedFromAProcessFitItsBinaries) {
  uint32_t pid = static_cast<uint32_t>(getpid());
  size_t needed = 64;  // the vDSO
  for (const UnwindBinaryInfo& b : inspect_process_unwind(pid)) needed += b.rows;
  uint32_t sized = auto_unwind_rows({pid});
  std::printf("measured: this process needs %zu unwind rows; sized %u\n", needed, sized);
  EXPECT_GE(sized, needed);
  EXPECT_GE(sized, kMinAutoUnwindRows);
  EXPECT_LE(sized, kMaxAutoUnwindRows);
  EXPECT_EQ(sized % 65536, 0u);
  EXPECT_EQ(auto_unwind_rows({}), kMinAutoUnwindRows);  // nothing running yet: the floor
}

}  // namespace
}  // namespace tickprobe
