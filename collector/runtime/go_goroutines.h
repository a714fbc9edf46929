// Goroutines of a running Go program, read from its memory — no probe, no
// ptrace stop: `/debug/pprof/goroutine?debug=2` from outside.
//
// The Go runtime keeps every g it ever made in `allgs`; `allglen` and
// `allgptr` (runtime/proc.go, Go 1.16+) are its lock-free copies, written
// allgptr-first, so reading allglen then allgptr never overruns. Each g
// holds its status, goid, wait reason, creation pc (gopc), start function
// (startpc) and, once parked, its saved registers (sched: sp, pc, bp). The
// reader copies all of it with process_vm_readv (one batched call per
// step: the g pointers, every g, every parked stack), then unwinds each
// parked stack with the pclntab's SP deltas exactly as runtime.gentraceback
// does, and names the frames with the pclntab symbolizer.
//
// Finding allgs:
//   - .symtab (runtime.allglen / runtime.allgptr): ordinary builds;
//   - stripped (-s -w) builds: the RIP-relative operands of runtime.allgadd
//     (the function that appends to allgs, named by the pclntab), tried in
//     pairs; a pair is accepted only when its first g is the main goroutine
//     (goid 1, startpc runtime.main). The same check guards table offsets
//     (go_layout.h) against a wrong row: a mismatch is refused, never shown.
//
// The target runs on while it is read, so a snapshot is not atomic: a g may
// change between its header and its stack. The reader validates every
// pointer and field (status, stack bounds, pcs inside Go text, frames
// inside the stack) and counts what it drops (GoSnapshot::counters), never
// guesses. Cost: the target is not stopped; the reader's own time is a few
// syscalls plus the copy (bench in docs/go.md).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/goroutine_report.h"
#include "model/leak_detector.h"
#include "model/profile.h"
#include "unwind/go_layout.h"

namespace tickprobe {

class GoPclntab;

// runtime2.go _G* (stable since Go 1.0; 1.13 added _Gpreempted).
enum GoStatus : uint32_t {
  kGoIdle = 0,
  kGoRunnable = 1,
  kGoRunning = 2,
  kGoSyscall = 3,
  kGoWaiting = 4,
  kGoDead = 6,
  kGoCopystack = 8,
  kGoPreempted = 9,
  kGoScanBit = 0x1000,
};

struct GoGoroutine {
  uint64_t goid = 0;
  uint32_t status = 0;             // without the _Gscan bit
  uint8_t waitreason = 0;          // runtime.waitReason, when status is waiting
  uint64_t gopc = 0, startpc = 0;  // process addresses
  bool system = false;             // runtime.* start function (not counted by NumGoroutine)
  std::vector<uint64_t> pcs;       // parked stack, leaf first, as saved (return addresses); empty when running
  bool stack_truncated = false;    // the walk stopped before runtime.goexit
};

struct GoSnapshot {
  uint64_t monotonic_ns = 0;  // when the read began
  uint64_t read_ns = 0;       // how long it took
  uint64_t allglen = 0;
  std::vector<GoGoroutine> goroutines;  // live ones (not dead, not idle)
  // Self-accounting: "g_unreadable", "g_invalid" (a field failed validation:
  // torn or reused g), "stack_unreadable", "stack_retried" (a walk failed
  // and the g and its stack were read again, once), "stack_truncated" (it
  // failed again: shown with the frames found), "bytes_read".
  std::map<std::string, uint64_t> counters;
  size_t user_count() const;  // what runtime.NumGoroutine counts
};

class GoProcessReader {
 public:
  // Opens pid's executable, its layout (DWARF or table) and finds allgs.
  static Result<std::unique_ptr<GoProcessReader>> open(pid_t pid);
  ~GoProcessReader();

  Result<GoSnapshot> snapshot(bool include_system = true);

  const GoRuntimeLayout& layout() const { return layout_; }
  const std::string& allgs_source() const { return allgs_source_; }  // "symtab" or "runtime.allgadd"
  const std::string& executable() const { return exe_; }
  pid_t pid() const { return pid_; }

  // Frames at a saved pc (innermost inlined first). Return addresses are
  // looked up at pc-1, as Go's traceback does.
  std::vector<GoStackFrame> frames(uint64_t pc) const;
  std::vector<GoStackFrame> stack(const GoGoroutine& g) const;
  // "main.leakyWorker", "" when unknown.
  std::string function_at(uint64_t pc) const;
  // "main.leakGoroutines (/src/main.go:168)": gopc's call site.
  std::string created_by(uint64_t gopc) const;
  // "chan receive", "IO wait", "runnable", "syscall", ...
  std::string state_name(const GoGoroutine& g) const;

  // Build-time mapping of the executable for exporters (pprof mappings).
  ProfileMapping mapping() const;

 private:
  GoProcessReader() = default;
  bool read(uint64_t addr, void* out, size_t len) const;
  Status find_allgs(void* elf);
  bool looks_like_main_goroutine(uint64_t allglen_addr, uint64_t allgptr_addr) const;
  void load_wait_reasons(void* elf);
  bool in_text(uint64_t pc) const;

  pid_t pid_ = 0;
  std::string exe_;
  GoRuntimeLayout layout_;
  std::unique_ptr<GoPclntab> pclntab_;
  uint64_t bias_ = 0;  // process address - ELF vaddr (0 unless PIE)
  uint64_t allglen_addr_ = 0, allgptr_addr_ = 0;
  std::string allgs_source_;
  uint64_t runtime_main_ = 0, goexit_ = 0, systemstack_switch_ = ~0ull;  // ELF vaddrs
  std::vector<std::string> wait_reasons_;
  ProfileMapping mapping_;
  size_t g_read_size_ = 0;
  std::map<uint64_t, bool> system_start_;  // startpc => a runtime goroutine (cache: few distinct startpcs)
};

// ------------------------------------------------------------ the hunt

struct GoroutineHuntOptions {
  pid_t pid = 0;
  double duration_s = 0;  // 0: one snapshot
  double interval_s = 1;
  bool include_system = false;
  size_t top = 10;
  LeakCriteria criteria;           // on goroutine counts per group
  double min_leak_goroutines = 5;  // net growth over the hunt to call a group a leak
  const std::atomic<bool>* stop = nullptr;
  std::function<void(double elapsed_s, const std::string& line)> on_progress;
};

Result<GoroutineReport> run_goroutine_hunt(const GoroutineHuntOptions& o);

// Every goroutine of a snapshot (runtime ones with include_system) as
// /debug/pprof/goroutine?debug=2 prints them ("goroutine 7 [chan receive]:", frames, "created by").
std::string goroutine_dump_text(const GoProcessReader& r, const GoSnapshot& s, bool include_system);

}  // namespace tickprobe
