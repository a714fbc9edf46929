#include "core/shared_maps.h"

#include <sys/mman.h>

#include <bpf/bpf.h>
#include <linux/types.h>

#include <dirent.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "bpf/include/unwind.h"

namespace tickprobe {
namespace {

Result<UniqueFd> make_map(bpf_map_type type, const char* name, uint32_t key_size, uint32_t value_size,
                          uint32_t max_entries, uint32_t flags) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  int fd = bpf_map_create(type, name, key_size, value_size, max_entries, &opts);
  if (fd < 0) {
    // Each errno has its own cause: only EPERM is about privileges.
    int err = errno;
    std::string size = std::string(name) + " (" + std::to_string(max_entries) + " entries)";
    std::string hint = "run `tickprobe doctor`";
    if (err == EPERM || err == EACCES) hint = "run as root (CAP_BPF and CAP_PERFMON), and check `tickprobe doctor`";
    else if (err == EINVAL) hint = "the size of " + size + " is not valid: check --max-stacks, --unwind-rows, --max-targets";
    else if (err == E2BIG) hint = size + " is larger than the kernel allows: lower --unwind-rows or --max-stacks";
    else if (err == ENOMEM) hint = "not enough memory for " + size + ": lower --unwind-rows or --max-stacks";
    return Error::from_errno(std::string("failed to create BPF map ") + name, err, hint);
  }
  return UniqueFd(fd);
}

}  // namespace

bool lazy_hash_maps_supported() {
  static const bool supported = [] {
    LIBBPF_OPTS(bpf_map_create_opts, mopts, .map_flags = BPF_F_NO_PREALLOC);
    int map_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "tp_lazy_probe", 4, 4, 1, &mopts);
    if (map_fd < 0) return false;
    struct bpf_insn insns[4] = {};
    insns[0].code = BPF_LD | BPF_DW | BPF_IMM;  // r1 = map (ld_imm64, two slots)
    insns[0].dst_reg = BPF_REG_1;
    insns[0].src_reg = BPF_PSEUDO_MAP_FD;
    insns[0].imm = map_fd;
    insns[2].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
    insns[2].dst_reg = BPF_REG_0;
    insns[3].code = BPF_JMP | BPF_EXIT;
    int prog_fd = bpf_prog_load(BPF_PROG_TYPE_PERF_EVENT, "tp_lazy_probe", "GPL", insns, 4, nullptr);
    ::close(map_fd);
    if (prog_fd < 0) return false;
    ::close(prog_fd);
    return true;
  }();
  return supported;
}

uint32_t lazy_hash_map_flags() { return lazy_hash_maps_supported() ? BPF_F_NO_PREALLOC : 0; }

Result<SharedMaps> SharedMaps::create(const SharedMapSizes& sizes) {
  SharedMaps m;
  m.sizes_ = sizes;
  // The hashes are charged per entry in use (BPF_F_NO_PREALLOC), not for
  // max_entries up front: a process's mapping table is 12 KiB, so 1024
  // preallocated ones were 10 MiB for one target, and 16k preallocated
  // stacks 9 MiB. max_entries still bounds them; a full map fails the
  // insert as before (stacks_full, "raise --max-targets"). Kernels before
  // 6.1 keep them preallocated (lazy_hash_maps_supported).
  const uint32_t lazy = lazy_hash_map_flags();
  auto t = make_map(BPF_MAP_TYPE_HASH, "targets", 4, 4, sizes.max_targets, lazy);
  if (!t) return t.error();
  auto r = make_map(BPF_MAP_TYPE_ARRAY, "unwind_rows", 4, sizeof(tp_unwind_row), sizes.unwind_rows, 0);
  if (!r) return r.error();
  auto p = make_map(BPF_MAP_TYPE_HASH, "proc_maps", 4, sizeof(tp_proc_maps), sizes.max_targets, lazy);
  if (!p) return p.error();
  auto s = make_map(BPF_MAP_TYPE_HASH, "stacks", 8, sizeof(tp_stack), sizes.max_stacks, lazy);
  if (!s) return s.error();
  // One page, mmapped: rewritten in place as a seqlock (publish_target_filter).
  auto f = make_map(BPF_MAP_TYPE_ARRAY, "target_filter", 4, sizeof(tp_target_filter), 1, BPF_F_MMAPABLE);
  if (!f) return f.error();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, f->get(), 0);
  if (mem == MAP_FAILED) return Error::from_errno("failed to map the target filter", errno, "run `tickprobe doctor`");
  m.target_filter_mem_ = std::unique_ptr<void, Unmap>(mem, Unmap{page});
  m.target_filter_ = f.take();
  m.targets_ = t.take();
  m.unwind_rows_ = r.take();
  m.proc_maps_ = p.take();
  m.stacks_ = s.take();
  return m;
}

Status SharedMaps::reuse_in(bpf_object* obj) const {
  struct {
    const char* name;
    int fd;
  } shared[] = {{"targets", targets_.get()},
                {"unwind_rows", unwind_rows_.get()},
                {"proc_maps", proc_maps_.get()},
                {"stacks", stacks_.get()},
                {"target_filter", target_filter_.get()}};
  for (const auto& s : shared) {
    bpf_map* map = bpf_object__find_map_by_name(obj, s.name);
    if (!map) continue;  // this family does not use it
    int err = bpf_map__reuse_fd(map, s.fd);
    if (err) return Error::from_errno(std::string("failed to share map ") + s.name, err);
  }
  return {};
}

void SharedMaps::Unmap::operator()(void* p) const {
  if (p) munmap(p, len);
}

void SharedMaps::publish_target_filter(const std::vector<uint32_t>& tgids) const {
  auto* f = static_cast<tp_target_filter*>(target_filter_mem_.get());
  if (!f) return;
  // Seqlock writer: readers (tp_is_target) retry through the hash while seq
  // is odd or moved. x86 keeps stores in order; the fences stop the compiler.
  uint32_t seq = __atomic_load_n(&f->seq, __ATOMIC_RELAXED);
  __atomic_store_n(&f->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t n = static_cast<uint32_t>(tgids.size());
  __atomic_store_n(&f->count, n, __ATOMIC_RELAXED);
  for (uint32_t i = 0; i < TP_FILTER_TGIDS; i++)
    __atomic_store_n(&f->tgids[i], i < n ? tgids[i] : 0u, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&f->seq, seq + 2, __ATOMIC_RELAXED);
  __atomic_store_n(&f->enabled, 1u, __ATOMIC_RELAXED);
}

uint64_t bpf_map_memory_bytes() {
  uint64_t total = 0;
  std::set<uint64_t> seen;  // shared maps are open under several fds
  DIR* d = opendir("/proc/self/fdinfo");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/fdinfo/") + e->d_name);
    std::string line;
    bool is_map = false;
    uint64_t memlock = 0, id = 0;
    while (std::getline(f, line)) {
      if (line.rfind("map_type:", 0) == 0) is_map = true;
      if (line.rfind("memlock:", 0) == 0) memlock = std::strtoull(line.c_str() + 8, nullptr, 10);
      if (line.rfind("map_id:", 0) == 0) id = std::strtoull(line.c_str() + 7, nullptr, 10);
    }
    if (is_map && seen.insert(id).second) total += memlock;
  }
  closedir(d);
  return total;
}

std::vector<uint64_t> read_percpu_counters(int map_fd, uint32_t entries) {
  std::vector<uint64_t> out(entries, 0);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> vals(static_cast<size_t>(ncpu));
  for (uint32_t i = 0; i < entries; i++) {
    if (bpf_map_lookup_elem(map_fd, &i, vals.data()) != 0) continue;
    for (uint64_t v : vals) out[i] += v;
  }
  return out;
}

}  // namespace tickprobe
