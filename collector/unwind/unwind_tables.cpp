#include "unwind/unwind_tables.h"

#include <bpf/bpf.h>
#include <linux/types.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <libelf.h>

#include "core/log.h"
#include "symbolize/elf_info.h"
#include "symbolize/symbolizer.h"
#include "bpf/include/unwind.h"
#include "unwind/cfi_table.h"

namespace tickprobe {
namespace {

// Opens a target's binary as the target sees it (containers, replaced files).
std::string binary_path_for(uint32_t pid, const std::string& path, uint64_t start, uint64_t end) {
  std::string via_root = "/proc/" + std::to_string(pid) + "/root" + path;
  if (access(via_root.c_str(), R_OK) == 0) return via_root;
  char buf[96];
  std::snprintf(buf, sizeof buf, "/proc/%u/map_files/%lx-%lx", pid, static_cast<unsigned long>(start),
                static_cast<unsigned long>(end));
  if (access(buf, R_OK) == 0) return buf;
  return path;
}

// The target's [vdso] mapping, read through /proc/PID/mem. One kernel has
// one vDSO, so its table is built once and serves every process.
std::vector<char> read_vdso(uint32_t pid, uint64_t start, uint64_t end) {
  std::vector<char> bytes;
  if (end <= start || end - start > (1u << 20)) return bytes;
  int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bytes;
  bytes.resize(end - start);
  ssize_t n = ::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(start));
  ::close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) bytes.clear();
  return bytes;
}

Status write_rows(int fd, uint32_t start, const std::vector<tp_unwind_row>& rows) {
  // Batched update (v5.6+); one element at a time if the kernel refuses.
  std::vector<uint32_t> keys(rows.size());
  for (size_t i = 0; i < rows.size(); i++) keys[i] = start + static_cast<uint32_t>(i);
  uint32_t count = static_cast<uint32_t>(rows.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_update_batch(fd, keys.data(), rows.data(), &count, &opts) == 0 && count == rows.size())
    return {};
  for (size_t i = 0; i < rows.size(); i++) {
    if (bpf_map_update_elem(fd, &keys[i], &rows[i], BPF_ANY) != 0)
      return Error::from_errno("failed to write unwind rows", errno);
  }
  return {};
}

void fill_go_info(const GoRuntimeLayout& l, uint64_t bias, tp_go_info* go) {
  go->tls_g = l.tls_g;
  go->g_stack_lo = l.g_stack_lo;
  go->g_stack_hi = l.g_stack_hi;
  go->g_m = l.g_m;
  go->g_sched = l.g_sched;
  go->m_g0 = l.m_g0;
  go->m_curg = l.m_curg;
  go->m_gsignal = l.m_gsignal;
  go->gobuf_sp = l.gobuf_sp;
  go->gobuf_pc = l.gobuf_pc;
  go->gobuf_bp = l.gobuf_bp;
  go->nswitch = 0;
  for (const GoSwitchFunction& f : l.switch_functions) {
    if (go->nswitch >= TP_GO_MAX_SWITCH) break;
    tp_go_switch_fn& sw = go->sw[go->nswitch++];
    sw.start = f.start + bias;
    sw.end = f.end + bias;
    sw.frameless = f.frameless ? 1 : 0;
  }
  go->enabled = 1;
}

}  // namespace

const UnwindTables::Binary& UnwindTables::binary_for(uint32_t pid, const std::string& path, uint64_t dev,
                                                     uint64_t inode, uint64_t start, uint64_t end) {
  auto key = std::make_pair(dev, inode);
  auto it = binaries_.find(key);
  if (it != binaries_.end()) return it->second;
  Binary b;
  b.file_id = static_cast<uint32_t>(binaries_.size() + 1);
  const std::string open_path = binary_path_for(pid, path, start, end);
  if (is_go_executable(open_path)) {
    auto layout = read_go_runtime_layout(open_path);
    if (layout) {
      b.is_go = true;
      b.go = layout.take();
      stats_.go_binaries++;
      TP_LOG_DEBUG("Go binary %s (%s): runtime layout from %s", path.c_str(), b.go.version.c_str(),
                   b.go.source.c_str());
    } else {
      stats_.go_layout_unknown++;
      TP_LOG_WARN("%s: %s; its stacks on the system stack (GC, scheduler) stop there", path.c_str(),
                  layout.error().message.c_str());
      if (!layout.error().hint.empty()) TP_LOG_WARN("hint: %s", layout.error().hint.c_str());
    }
  }
  // The vDSO has no file but carries .eh_frame: stacks that start in
  // clock_gettime/gettimeofday/time keep their callers only with its table.
  auto table = path == "[vdso]" ? build_cfi_table_memory(read_vdso(pid, start, end)) : build_cfi_table(open_path);
  if (!table) {
    stats_.build_errors++;
    TP_LOG_DEBUG("no unwind table for %s: %s", path.c_str(), table.error().message.c_str());
  } else {
    b.loads = table->loads;
    b.frame_pointers = table->frame_pointers;
    const auto& rows = table->rows;
    if (rows.empty()) {
      stats_.binaries_no_cfi++;
    } else if (static_cast<uint64_t>(next_row_) + rows.size() > maps_.sizes().unwind_rows) {
      stats_.rows_dropped += rows.size();
      TP_LOG_WARN("unwind table space full: %s (%zu rows) walks by frame pointer only", path.c_str(),
                  rows.size());
      TP_LOG_WARN("hint: raise --unwind-rows (now %u, %u used)", maps_.sizes().unwind_rows, next_row_);
    } else if (auto st = write_rows(maps_.unwind_rows_fd(), next_row_, rows); !st) {
      stats_.build_errors++;
      TP_LOG_WARN("%s", st.error().message.c_str());
    } else {
      b.row_start = next_row_;
      b.row_count = static_cast<uint32_t>(rows.size());
      stats_.rows_unsupported += table->stats.unsupported_rows;
      stats_.rows_deref += table->stats.deref_rows;
      next_row_ += b.row_count;
      stats_.rows_used = next_row_;
      stats_.binaries++;
      TP_LOG_DEBUG("unwind table for %s: %u rows (%zu *(reg+a)+b, %zu unsupported), frame pointers: %s",
                   path.c_str(), b.row_count, table->stats.deref_rows, table->stats.unsupported_rows,
                   b.frame_pointers ? "yes" : "no");
    }
  }
  return binaries_.emplace(key, std::move(b)).first->second;
}

uint32_t auto_unwind_rows(const std::vector<uint32_t>& pids) {
  ensure_libelf_initialized();
  std::set<std::pair<uint64_t, uint64_t>> seen;  // (dev, inode)
  uint64_t estimate = 0;
  for (uint32_t pid : pids) {
    for (const Mapping& m : read_proc_maps(pid, /*executable_only=*/true)) {
      if (m.path.empty() || m.path[0] != '/' || m.inode == 0) continue;
      uint64_t dev = (static_cast<uint64_t>(m.dev_major) << 32) | m.dev_minor;
      if (!seen.insert({dev, m.inode}).second) continue;
      int fd = ::open(binary_path_for(pid, m.path, m.start, m.end).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
      size_t fdes = elf ? eh_frame_fde_starts(elf).size() : 0;
      estimate += fdes ? fdes * 8 : (m.end - m.start) / 16;
      if (elf) elf_end(elf);
      ::close(fd);
    }
  }
  estimate += 64;  // the vDSO
  estimate += estimate / 2;
  estimate = (estimate + 0xffff) & ~uint64_t{0xffff};
  return static_cast<uint32_t>(std::clamp<uint64_t>(estimate, kMinAutoUnwindRows, kMaxAutoUnwindRows));
}

Result<bool> UnwindTables::update_process(uint32_t pid) {
  std::vector<Mapping> maps = read_proc_maps(pid, /*executable_only=*/true);
  if (maps.empty()) {
    if (access(("/proc/" + std::to_string(pid)).c_str(), F_OK) != 0)
      return Error("process " + std::to_string(pid) + " does not exist", "is the process still running?");
  }
  std::string sig;
  for (const auto& m : maps) {
    sig += std::to_string(m.start) + "-" + std::to_string(m.end) + ":" + std::to_string(m.inode) + ";";
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto sit = process_signature_.find(pid);
  if (sit != process_signature_.end() && sit->second == sig) return false;

  auto pm = std::make_unique<tp_proc_maps>();
  std::memset(pm.get(), 0, sizeof(*pm));
  std::sort(maps.begin(), maps.end(), [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  for (const auto& m : maps) {
    if (pm->count >= TP_MAX_PROC_MAPPINGS) {
      stats_.mappings_truncated++;
      break;
    }
    tp_mapping& out = pm->maps[pm->count++];
    out.start = m.start;
    out.end = m.end;
    bool file_backed = !m.path.empty() && m.path[0] == '/' && m.inode != 0;
    bool vdso = m.path == "[vdso]";
    if (file_backed || vdso) {
      // The vDSO is keyed by a (dev, inode) no file has: (~0, 0).
      uint64_t dev = vdso ? ~0ULL : (static_cast<uint64_t>(m.dev_major) << 32) | m.dev_minor;
      const Binary& b = binary_for(pid, m.path, dev, vdso ? 0 : m.inode, m.start, m.end);
      out.bias = load_bias(b.loads, m.start, m.file_offset);
      out.row_start = b.row_start;
      out.row_count = b.row_count;
      out.flags = b.frame_pointers ? TP_MAPPING_FP : 0;
      out.file_id = b.file_id;
      if (b.is_go && !pm->go.enabled) fill_go_info(b.go, out.bias, &pm->go);
    }
  }
  pm->generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;
  if (bpf_map_update_elem(maps_.proc_maps_fd(), &pid, pm.get(), BPF_ANY) != 0)
    return Error::from_errno("failed to store mappings of process " + std::to_string(pid), errno,
                             "too many traced processes? raise --max-targets");
  process_signature_[pid] = sig;
  stats_.processes = process_signature_.size();
  return true;
}

void UnwindTables::remove_process(uint32_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  bpf_map_delete_elem(maps_.proc_maps_fd(), &pid);
  process_signature_.erase(pid);
  stats_.processes = process_signature_.size();
}

std::vector<UnwindBinaryInfo> inspect_process_unwind(uint32_t pid) {
  std::vector<UnwindBinaryInfo> out;
  std::set<std::string> seen;
  for (const auto& m : read_proc_maps(pid, /*executable_only=*/true)) {
    if (m.path.empty() || m.path[0] != '/' || m.inode == 0 || !seen.insert(m.path).second) continue;
    UnwindBinaryInfo info;
    info.path = m.path;
    auto table = build_cfi_table(binary_path_for(pid, m.path, m.start, m.end));
    if (!table) {
      info.error = table.error().message;
    } else {
      info.rows = table->stats.rows;
      info.unsupported_rows = table->stats.unsupported_rows;
      info.deref_rows = table->stats.deref_rows;
      info.rbp_unsupported = table->stats.rbp_unsupported;
      info.frame_pointers = table->frame_pointers;
      info.from_debug_frame = table->from_debug_frame;
    }
    out.push_back(std::move(info));
  }
  return out;
}

UnwindTablesStats UnwindTables::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  UnwindTablesStats s = stats_;
  s.rows_capacity = maps_.sizes().unwind_rows;
  return s;
}

}  // namespace tickprobe
