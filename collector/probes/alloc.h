// Allocation family (bpf/alloc.bpf.c): outstanding allocations per stack,
// from uprobes on the target's allocator and the mmap/munmap syscalls.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/bpf_link.h"
#include "core/family.h"
#include "core/result.h"
#include "core/uprobe_site.h"

struct alloc_bpf;

namespace tickprobe {

class Session;

struct AllocOptions {
  uint64_t sample_bytes = 0;     // 0: track every allocation (exact mode)
  std::string allocator_prefix;  // "je_", "tc_": prefixed entry points (jemalloc, tcmalloc builds)
  bool track_mmap = true;        // anonymous mmap/munmap outside the allocator
  uint32_t max_tracked = 262144; // outstanding allocations tracked (beyond: dropped, counted)
  uint32_t max_stacks = 16384;   // distinct allocation stacks
};

// Go's runtime.MemProfileRate default: a Go target's heap is read from the
// runtime's own samples (one per this many bytes), scaled like pprof does.
// A program that sets another rate is scaled wrongly (not read from memory).
constexpr uint64_t kGoMemProfileRate = 512 * 1024;

struct AllocStackKey {
  uint32_t tgid = 0;
  uint32_t kind = 0;  // enum alloc_kind: 0 heap, 1 mmap
  uint64_t user_stack = 0;
  bool operator<(const AllocStackKey& o) const {
    return std::tie(tgid, kind, user_stack) < std::tie(o.tgid, o.kind, o.user_stack);
  }
};

struct AllocStackTotals {
  int64_t outstanding_bytes = 0;
  int64_t outstanding_count = 0;
  uint64_t allocs = 0, alloc_bytes = 0, frees = 0;
};

struct AllocAge {
  uint64_t oldest_ns = 0;  // CLOCK_MONOTONIC time of the oldest outstanding allocation
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct AllocAttachment {
  std::string function;  // "malloc", "_ZdlPvm", ...
  std::string object;    // where the process's calls land: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
  std::string reason;    // why that object: its place in the lookup order ("DT_NEEDED of /usr/bin/server")
  bool alias = false;    // same address as an entry point already probed
  // Where its probes sit: bytes past the entry, and what a hit costs there
  // (core/uprobe_site.h; aliases: of the entry point they alias).
  uint64_t site_delta = 0;
  UprobeCost site_cost = UprobeCost::kSingleStep;
};

struct AllocAttachReport {
  std::vector<std::string> attached;  // "malloc in /usr/lib/x86_64-linux-gnu/libc.so.6"
  std::vector<std::string> missing;   // standard entry points found in no mapped binary
  std::vector<AllocAttachment> attachments;
  std::string allocator_object;       // the object malloc resolves to
};

class AllocProbe : public Family {
 public:
  static Result<std::unique_ptr<AllocProbe>> create(Session& session, const AllocOptions& opts);
  ~AllocProbe();
  AllocProbe(const AllocProbe&) = delete;
  AllocProbe& operator=(const AllocProbe&) = delete;

  // Uprobes on the allocator entry points of `pid`, each in the object the
  // process's calls bind to: the first object of the dynamic linker's global
  // lookup order (symbolize/link_order.h) that defines it. Covers the C API,
  // the sized frees and extended APIs of jemalloc, tcmalloc and mimalloc
  // (sdallocx, free_sized, mi_free_size, ...), and C++ operator new/delete
  // when the allocator's own object defines them (libstdc++'s call malloc,
  // which is probed anyway). The process must already be a session target.
  // Fails when malloc or free is missing.
  Result<AllocAttachReport> attach_process(uint32_t pid);
  void detach_process(uint32_t pid);
  // Family
  const char* name() const override { return "alloc"; }
  Status attach(uint32_t pid) override;
  void detach(uint32_t pid) override { detach_process(pid); }
  void release_links() override;

  // Per-stack totals since attach (read, not reset).
  std::map<AllocStackKey, AllocStackTotals> stack_totals() const;
  // Oldest outstanding allocation per stack (walks every tracked allocation).
  std::map<AllocStackKey, AllocAge> ages(uint32_t tgid = 0) const;
  // Frees of never-seen addresses (allocated before attach), per glibc
  // chunk size (exact mode on glibc only; key 0 = size unknown).
  std::map<uint64_t, uint64_t> untracked_frees(uint32_t tgid) const;
  // glibc's chunk size for a request of `bytes` (x86_64).
  static uint64_t glibc_chunk_size(uint64_t bytes);
  Counters counters() const override;
  const AllocOptions& options() const { return opts_; }

  // Estimated real bytes behind sampled totals: with sampling mean S, an
  // allocation of s bytes is sampled with probability 1 - exp(-s/S), so each
  // sampled one stands for s / (1 - exp(-s/S)) bytes. Uses the stack's mean
  // allocation size. Exact mode returns the bytes unchanged.
  double estimate_bytes(double sampled_bytes, double sampled_count) const;
  double estimate_count(double sampled_bytes, double sampled_count) const;

 private:
  AllocProbe(Session& s, const AllocOptions& o) : session_(s), opts_(o) {}
  // A Go program: uprobes on its sampled heap profile instead of malloc
  // (scaled right when options().sample_bytes == kGoMemProfileRate).
  Result<AllocAttachReport> attach_go(uint32_t pid, const std::string& exe);
  Session& session_;
  AllocOptions opts_;
  alloc_bpf* skel_ = nullptr;
  std::vector<BpfLink> global_links_;
  std::map<uint32_t, std::vector<BpfLink>> links_;
};

// Registry entry (settings: sample_bytes, allocator_prefix). Off in the
// agent unless enabled (--leaks): it costs a trap per allocator call.
FamilySpec alloc_family_spec();

}  // namespace tickprobe
