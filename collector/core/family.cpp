#include "core/family.h"

#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <charconv>
#include <cstring>

#include "core/session.h"
#include "core/uprobe_multi.h"
#include "core/shared_maps.h"

namespace tickprobe {

Result<uint64_t> FamilySettings::get_u64(const std::string& key, uint64_t def, uint64_t min, uint64_t max) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return def;
  const std::string& s = it->second;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    return Error("usage: " + key + "=" + s + " is not a non-negative integer");
  if (v < min || v > max)
    return Error("usage: " + key + "=" + s + " is out of range [" + std::to_string(min) + ", " +
                 std::to_string(max) + "]");
  return v;
}

Result<bool> FamilySettings::get_bool(const std::string& key, bool def) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return def;
  if (it->second == "1" || it->second == "true" || it->second == "on") return true;
  if (it->second == "0" || it->second == "false" || it->second == "off") return false;
  return Error("usage: " + key + "=" + it->second + " is not a boolean (true/false)");
}

std::string FamilySettings::get_string(const std::string& key, const std::string& def) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? def : it->second;
}

const FamilySpec* find_family(const std::string& name) {
  for (const auto& f : family_registry())
    if (name == f.name) return &f;
  return nullptr;
}

namespace {

// Hash maps that stay preallocated: each hit of their program inserts and
// deletes an entry (a context switch, a syscall, an allocator call), where
// the preallocated free list is the cheapest insert there is.
constexpr const char* kPreallocatedHashMaps[] = {
    "start",          // offcpu: one insert + delete per switch-out/in
    "inflight",       // sockets: per socket syscall
    "allocs",         // alloc: per allocation / free
    "alloc_threads",  // alloc: per allocator call (entry -> return)
};

bool keeps_preallocation(const char* name) {
  if (std::strncmp(name, "__bpf", 5) == 0 || name[0] == '.') return true;  // libbpf's own (USDT specs), sections
  for (const char* n : kPreallocatedHashMaps)
    if (std::strcmp(name, n) == 0) return true;
  return false;
}

}  // namespace

void family_allocate_maps_on_use(bpf_object* obj) {
  if (!lazy_hash_maps_supported()) return;  // kernels before 6.1: perf_event programs need preallocation
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    enum bpf_map_type type = bpf_map__type(map);
    if (type != BPF_MAP_TYPE_HASH && type != BPF_MAP_TYPE_PERCPU_HASH) continue;
    if (keeps_preallocation(bpf_map__name(map))) continue;
    bpf_map__set_map_flags(map, bpf_map__map_flags(map) | BPF_F_NO_PREALLOC);
  }
}

Status family_reuse_shared_maps(Session& session, bpf_object* obj) {
  family_allocate_maps_on_use(obj);
  return session.maps().reuse_in(obj);
}

Error family_load_error(const char* family, int err) {
  std::string hint = "run `tickprobe doctor`; rerun with -v for the verifier log";
  if (err == -EPERM || err == EPERM || err == -EACCES || err == EACCES)
    hint = "not permitted: loading BPF needs CAP_BPF and CAP_PERFMON (deploy/capabilities.txt); run `tickprobe doctor`";
  else if (err == -E2BIG || err == E2BIG)
    hint = "a map size is too large for this kernel; lower the --max-* options";
  else if (err == -ENOMEM || err == ENOMEM)
    hint = "not enough locked memory for the maps; lower the --max-* options";
  return Error::from_errno(std::string("failed to load the ") + family + " BPF programs", err, hint);
}

Error family_attach_error(const char* family, int err) {
  std::string hint = "run `tickprobe doctor`";
  if (err == -EPERM || err == EPERM || err == -EACCES || err == EACCES)
    hint = "not permitted: grant the capabilities of deploy/capabilities.txt (a readable tracefs needs uid 0 or "
           "CAP_DAC_READ_SEARCH); run `tickprobe doctor`";
  else if (err == -ENOENT || err == ENOENT)
    hint = "a tracepoint or function is missing; is tracefs mounted? run `tickprobe doctor`";
  return Error::from_errno(std::string("failed to attach the ") + family + " BPF programs", err, hint);
}

std::string uprobe_attach_hint(int err) {
  if (err == EACCES || err == EPERM || err == -EACCES || err == -EPERM)
    return uprobe_multi_supported()
               ? "not permitted: a process of another user needs CAP_SYS_PTRACE, uprobe_multi links CAP_BPF and "
                 "CAP_PERFMON (deploy/capabilities.txt); run `tickprobe doctor --pid PID`"
               : "not permitted: perf-event uprobes (no uprobe_multi in this kernel) need CAP_SYS_ADMIN, and a "
                 "process of another user CAP_SYS_PTRACE (deploy/capabilities.txt); run `tickprobe doctor --pid PID`";
  if (err == ENOENT || err == ESRCH || err == -ENOENT || err == -ESRCH) return "is the process still running?";
  return "run `tickprobe doctor --pid PID`";
}

}  // namespace tickprobe
