// The probe-family interface. A family is one BPF object (bpf/X.bpf.c with
// its shared structs in bpf/include/X.h) and the class that owns it
// (collector/probes/X.*). The agent, the one-shot recorder and the hunts
// only talk to families through this interface and the registry
// (collector/probes/registry.cpp), so adding a family is: the BPF source,
// its header, the class, a CLI file and one registration line.
//
// Lifecycle: create (open -> configure -> share maps -> load -> attach the
// global programs, see load_skeleton()) -> attach(pid)/detach(pid) per
// target -> drain() on an interval -> destruction detaches everything.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <bpf/libbpf.h>

#include "model/counters.h"
#include "core/result.h"
#include "model/metrics.h"

namespace tickprobe {

class Session;

class Family {
 public:
  virtual ~Family() = default;
  // Stable name: "sockets", used in metrics labels and logs.
  virtual const char* name() const = 0;
  // Starts tracing one process that is already a session target. Families
  // that filter in the kernel through the shared targets map need nothing;
  // those that attach uprobes or USDT per process do it here. An error is
  // reported per target; it does not stop the other families.
  virtual Status attach(uint32_t pid) {
    (void)pid;
    return {};
  }
  // The process exited or changed image: drop its links and state.
  virtual void detach(uint32_t pid) { (void)pid; }
  // Detaches every probe now (shutdown), before the destructor. The agent
  // calls it for all families at once from separate threads, so that the
  // kernel's detach waits (a grace period per uprobe_multi link) overlap:
  // it touches only the family's own links.
  virtual void release_links() {}
  // Folds what the kernel aggregated since the last call into the family's
  // cumulative state. Calls are serialized by the caller.
  virtual void drain() {}
  // Self-accounting (counters.def rows), cumulative.
  virtual Counters counters() const = 0;
  // The Prometheus families it contributes to /metrics (bounded labels).
  virtual void metrics(MetricsSnapshot& out) const { (void)out; }
};

// Settings a family takes from the agent's command line as key=value
// (`--family-opt sockets.tcp_probe_every=8`), with typed getters. Unknown
// keys are a usage error: a family lists what it reads in `keys`.
class FamilySettings {
 public:
  FamilySettings() = default;
  explicit FamilySettings(std::map<std::string, std::string> kv) : kv_(std::move(kv)) {}
  Result<uint64_t> get_u64(const std::string& key, uint64_t def, uint64_t min = 0, uint64_t max = UINT64_MAX) const;
  Result<bool> get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  const std::map<std::string, std::string>& values() const { return kv_; }

 private:
  std::map<std::string, std::string> kv_;
};

struct FamilySpec {
  const char* name;
  const char* summary;    // one line for --help and doctor
  bool agent_default_on;  // enabled in the agent unless --disable NAME
  std::vector<const char*> setting_keys;
  std::function<Result<std::unique_ptr<Family>>(Session&, const FamilySettings&)> create;
};

// Every family, in registration order (collector/probes/registry.cpp).
const std::vector<FamilySpec>& family_registry();
const FamilySpec* find_family(const std::string& name);

// The shared open -> configure -> share maps -> load -> attach sequence of
// a bpftool skeleton. `configure` sets rodata, max_entries and autoload
// between open and load. With attach=false the caller attaches per target.
template <typename Skel>
struct SkeletonOps {
  Skel* (*open)();
  int (*load)(Skel*);
  int (*attach)(Skel*);
  void (*destroy)(Skel*);
};
#define TP_SKELETON_OPS(x) ::tickprobe::SkeletonOps<x##_bpf>{x##_bpf__open, x##_bpf__load, x##_bpf__attach, x##_bpf__destroy}

// Deleter so a skeleton can live in a std::unique_ptr.
template <typename Skel>
struct SkeletonDeleter {
  void (*destroy)(Skel*) = nullptr;
  void operator()(Skel* s) const {
    if (s && destroy) destroy(s);
  }
};
template <typename Skel>
using SkeletonPtr = std::unique_ptr<Skel, SkeletonDeleter<Skel>>;

// Non-template parts (error texts, shared-map reuse) live in family.cpp.
//
// Memory to need (issue 12): a preallocated hash map charges all of
// max_entries up front (a family's two 16k-entry count maps are ~4 MiB,
// mostly empty at one target). Before load, every hash map of a family's
// object is switched to BPF_F_NO_PREALLOC, so the kernel charges entries
// as they are inserted; max_entries still bounds each map and an insert
// into a full map fails as before (counted by the family, counters.def).
// The exceptions are maps that insert and delete on every hit of a hot
// program (offcpu's `start`, sockets' `inflight`, alloc's per-call maps),
// where preallocation is the cheaper insert, and libbpf's own maps.
void family_allocate_maps_on_use(bpf_object* obj);
// Also calls family_allocate_maps_on_use(obj).
Status family_reuse_shared_maps(Session& session, bpf_object* obj);
Error family_load_error(const char* family, int err);
Error family_attach_error(const char* family, int err);
// The hint for a failed uprobe/USDT attach (perf_event_open of a uprobe):
// EACCES/EPERM is a missing capability (CAP_SYS_ADMIN for uprobes on this
// kernel, CAP_SYS_PTRACE for another user's process), not a wrong path.
std::string uprobe_attach_hint(int err);

template <typename Skel, typename Configure>
Result<SkeletonPtr<Skel>> load_skeleton(Session& session, const char* family, SkeletonOps<Skel> ops,
                                        Configure&& configure, bool attach = true) {
  SkeletonPtr<Skel> skel(ops.open(), SkeletonDeleter<Skel>{ops.destroy});
  if (!skel) return Error::from_errno(std::string("failed to open the ") + family + " BPF object", errno);
  if (Status st = configure(skel.get()); !st) return st.error();
  if (Status st = family_reuse_shared_maps(session, skel->obj); !st) return st.error();
  if (int err = ops.load(skel.get())) return family_load_error(family, err);
  if (attach)
    if (int err = ops.attach(skel.get())) return family_attach_error(family, err);
  return skel;
}

}  // namespace tickprobe
