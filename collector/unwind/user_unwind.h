// The BPF unwinder (bpf/lib/unwind.bpf.h) replayed in user space: the same
// CFI rows (cfi_table.h), the same per-frame rules (leaf by CFI; binaries
// that keep frame pointers walked by FP above the leaf; rsp/rbp+offset,
// PLT, *(reg+a)+b CFA rules; rbp restored from CFA+off), reading another
// process's stack through /proc/PID/mem.
//
// Uses: stacks of threads that are blocked when a recording starts (their
// registers come from the offcpu family's task iterator, and no
// sched_switch will show them), and tests that check an unwind against a
// process whose stack is known.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "unwind/cfi_table.h"

namespace tickprobe {

struct UserRegs {
  uint64_t ip = 0;
  uint64_t sp = 0;
  uint64_t bp = 0;
};

struct UserUnwindResult {
  std::vector<uint64_t> ips;  // leaf first, as the BPF side stores them
  uint32_t flags = 0;         // TP_STACK_* (bpf/include/unwind.h)
};

class UserUnwinder {
 public:
  UserUnwinder() = default;
  // Unwinds a thread of `pid` from its user registers, reading its memory
  // through /proc/PID/mem. Tables are built once per binary (dev, inode).
  UserUnwindResult unwind(uint32_t pid, const UserRegs& regs, size_t max_frames = TP_MAX_FRAMES);

 private:
  struct Table {
    CfiTable cfi;
    bool ok = false;
  };
  const Table& table_for(uint32_t pid, const std::string& path, uint64_t dev, uint64_t inode, uint64_t start,
                         uint64_t end);
  std::map<std::pair<uint64_t, uint64_t>, std::unique_ptr<Table>> tables_;
};

}  // namespace tickprobe
