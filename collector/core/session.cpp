#include "core/session.h"

#include <bpf/bpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/doctor.h"
#include "core/log.h"
#include "targets/target_spec.h"

namespace tickprobe {

namespace {
// Tracepoint attachment (and libbpf's tracepoint id lookup) needs tracefs.
// Minimal systems and fresh containers often have it unmounted; as root we
// can mount it ourselves instead of failing with ENOENT.
void ensure_tracefs() {
  if (access("/sys/kernel/tracing/events", F_OK) == 0 || access("/sys/kernel/debug/tracing/events", F_OK) == 0)
    return;
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0)
    TP_LOG_DEBUG("mounted tracefs at /sys/kernel/tracing");
  else
    TP_LOG_DEBUG("cannot mount tracefs: %s", std::strerror(errno));
}
}  // namespace

Result<std::unique_ptr<Session>> Session::create(const SessionOptions& opts,
                                                  const std::vector<uint32_t>& initial_targets) {
  ensure_tracefs();
  if (auto st = require_bpf_features(); !st) return st.error();
  SessionOptions sized = opts;
  if (sized.map_sizes.unwind_rows == 0) {
    sized.map_sizes.unwind_rows = auto_unwind_rows(initial_targets);
    TP_LOG_DEBUG("unwind table: %u rows, sized from %zu target(s)", sized.map_sizes.unwind_rows,
                 initial_targets.size());
  }
  auto maps = SharedMaps::create(sized.map_sizes);
  if (!maps) return maps.error();
  std::unique_ptr<Session> s(new Session());
  s->maps_ = maps.take();
  s->opts_ = sized;
  s->stacks_ = std::make_unique<StackStore>(s->maps_.stacks_fd(), opts.map_sizes.max_stacks);
  s->symbolizer_ = std::make_unique<Symbolizer>(opts.symbolizer);
  s->unwind_ = std::make_unique<UnwindTables>(s->maps_);
  return s;
}

namespace {
// PF_KTHREAD in the flags field (9th) of /proc/PID/stat.
bool is_kernel_thread(uint32_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');  // comm may contain spaces
  unsigned long flags = 0;
  if (!p || std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1) return false;
  return flags & 0x00200000;
}
}  // namespace

Status Session::add_target(uint32_t pid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (targets_.count(pid)) return {};
  }
  if (!process_alive(pid))
    return Error("process " + std::to_string(pid) + " does not exist", "is the process still running?");
  if (is_kernel_thread(pid))
    TP_LOG_WARN("process %u (%s) is a kernel thread: it has no user stacks, only kernel stacks are recorded", pid,
                process_comm(pid).c_str());
  // Tables first, so the very first sample already unwinds correctly.
  if (auto st = unwind_->update_process(pid); !st) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.target_errors++;
    return st.error();
  }
  symbolizer_->snapshot_process(pid);
  uint32_t one = 1;
  if (bpf_map_update_elem(maps_.targets_fd(), &pid, &one, BPF_ANY) != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.target_errors++;
    return Error::from_errno("failed to add process " + std::to_string(pid) + " to the target set", errno,
                             "too many targets? raise --max-targets");
  }
  std::lock_guard<std::mutex> lock(mu_);
  targets_.insert(pid);
  publish_target_filter_locked();
  names_[pid] = process_comm(pid);
  stats_.targets_added++;
  stats_.targets = targets_.size();
  return {};
}

void Session::remove_target(uint32_t pid) {
  {
    // The filter first: it must never name a process the hash lacks.
    std::lock_guard<std::mutex> lock(mu_);
    if (targets_.erase(pid)) stats_.targets_removed++;
    stats_.targets = targets_.size();
    publish_target_filter_locked();
  }
  bpf_map_delete_elem(maps_.targets_fd(), &pid);
  unwind_->remove_process(pid);
}

void Session::publish_target_filter_locked() {
  maps_.publish_target_filter(std::vector<uint32_t>(targets_.begin(), targets_.end()));
}

void Session::refresh_targets(bool reread_maps) {
  for (uint32_t pid : targets()) {
    if (!process_alive(pid)) {
      remove_target(pid);
      continue;
    }
    if (!reread_maps) continue;
    // Only a changed memory map (dlopen, exec) needs a new symbolizer snapshot.
    if (auto changed = unwind_->update_process(pid); changed.ok() && *changed) symbolizer_->snapshot_process(pid);
  }
}

std::set<uint32_t> Session::targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

std::string Session::process_name(uint32_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(pid);
  if (it != names_.end()) return it->second;
  std::string n = process_comm(pid);
  if (names_.size() < 65536) names_[pid] = n;
  return n;
}

SessionStats Session::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tickprobe
