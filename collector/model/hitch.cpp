#include "model/hitch.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "bpf/include/runtime.h"
#include "model/go_wait_reasons.h"

namespace tickprobe {

namespace {

struct SyscallEntry {
  int nr;
  const char* name;
};
const SyscallEntry kSyscalls[] = {
#include "syscall_names.inc"
    {-1, nullptr}};

bool one_of(int nr, std::initializer_list<int> set) { return std::find(set.begin(), set.end(), nr) != set.end(); }

}  // namespace

std::string syscall_name(int nr) {
  static const std::unordered_map<int, std::string> table = [] {
    std::unordered_map<int, std::string> m;
    for (const auto& e : kSyscalls)
      if (e.name) m.emplace(e.nr, e.name);
    return m;
  }();
  auto it = table.find(nr);
  return it != table.end() ? it->second : "syscall_" + std::to_string(nr);
}

std::string go_wait_reason(uint32_t wait) {
  if (wait && wait < kGoWaitReasons119.size()) return kGoWaitReasons119[wait];
  return "wait reason " + std::to_string(wait);
}

BlockReason describe_block_reason(uint32_t code) {
  if (code & RT_REASON_GO_PARK) {
    std::string why = go_wait_reason(RT_REASON_GO_WAIT(code));
    if (code & RT_REASON_GO_IDLE) return {"idle", "idle: goroutine parked (" + why + ")", true};
    return {"goroutine_blocked", "goroutine blocked (" + why + ")", false};
  }
  uint32_t state = RT_REASON_STATE(code), fd = RT_REASON_FD(code);
  int nr = RT_REASON_SYSCALL(code);
  if (state == 0 /* OFFCPU_RUNNABLE */) return {"runqueue", "waiting for a CPU (preempted)", false};
  if (nr < 0) {
    if (state == 2 /* D */) return {"uninterruptible", "uninterruptible wait outside a syscall (page fault?)", false};
    return {"other", "sleeping outside a syscall", false};
  }
  std::string name = syscall_name(nr);
  // x86_64 numbers: the reads, writes and waits that matter in a game loop.
  bool reads = one_of(nr, {0, 17, 19, 45, 47, 295, 299});
  bool writes = one_of(nr, {1, 18, 20, 44, 46, 296, 307});
  if (one_of(nr, {7, 23, 232, 270, 271, 281, 441})) return {"idle", "idle in " + name, true};
  if (one_of(nr, {35, 230})) return {"idle", "sleeping in " + name, true};
  if (nr == 202) return {"lock", "waiting on a lock (futex)", false};
  if (one_of(nr, {42, 43, 288})) return {"socket_connect", "blocked in " + name, false};
  if (fd == RT_FD_SOCKET && writes) return {"socket_write", "blocked in socket write (" + name + ")", false};
  if (fd == RT_FD_SOCKET && reads) return {"socket_read", "blocked in socket read (" + name + ")", false};
  if (fd == RT_FD_FILE && (reads || writes || one_of(nr, {74, 75})))
    return {"file_io", "blocked in file I/O (" + name + ")", false};
  if (reads || writes) return {"fd_io", "blocked in " + name + " (pipe or device)", false};
  if (one_of(nr, {9, 10, 11, 12, 25, 28})) return {"memory", "blocked in " + name, false};
  return {"syscall", "blocked in " + name, false};
}

std::string format_ms(uint64_t ns) {
  char buf[32];
  double ms = static_cast<double>(ns) / 1e6;
  std::snprintf(buf, sizeof(buf), ms >= 10 ? "%.1f ms" : "%.2f ms", ms);
  return buf;
}

std::vector<HitchPart> attribute_frame(const FrameRecord& f) {
  std::map<std::string, HitchPart> by_label;
  uint64_t accounted = 0;
  auto add = [&](const std::string& cause, const std::string& label, uint64_t ns, bool idle) {
    if (ns == 0) return;
    auto& p = by_label[label];
    p.cause = cause;
    p.label = label;
    p.idle = idle;
    p.ns += ns;
    accounted += ns;
  };
  for (const auto& [kind, ns] : f.pause_ns)
    add(kind, kind == "gc" ? "GC" : kind == "stw" ? "stop-the-world" : kind, ns, false);
  for (const auto& [code, ns] : f.offcpu_ns) {
    BlockReason r = describe_block_reason(code);
    uint64_t named = 0;
    for (const auto& sb : f.socket_blocks) {
      if (sb.reason != code || r.idle) continue;
      uint64_t part = std::min(sb.ns, ns - named);
      named += part;
      std::string who = sb.peer.empty() ? "" : " to " + sb.peer;
      add(r.cause, r.label + who + " (fd " + std::to_string(sb.fd) + ")", part, r.idle);
    }
    add(r.cause, r.label, ns - named, r.idle);
  }
  add("offcpu_other", "off-CPU (other reasons)", f.off_other_ns, false);
  uint64_t cpu = f.frame_ns > accounted ? f.frame_ns - accounted : 0;
  add("cpu", "CPU", cpu, false);
  std::vector<HitchPart> parts;
  for (auto& [_, p] : by_label) parts.push_back(std::move(p));
  std::sort(parts.begin(), parts.end(), [](const HitchPart& a, const HitchPart& b) { return a.ns > b.ns; });
  return parts;
}

uint64_t HitchAnalyzer::budget_for(uint32_t tgid) const {
  if (opts_.budget_ns) return opts_.budget_ns;
  auto it = procs_.find(tgid);
  return it == procs_.end() ? 0 : it->second.budget_ns;
}

void HitchAnalyzer::infer_budget(uint32_t tgid) {
  // The median frame of a fixed-rate loop is its period.
  std::vector<uint64_t> v = samples_[tgid];
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  procs_[tgid].budget_ns = v[v.size() / 2];
  procs_[tgid].budget_inferred = true;
}

std::vector<Hitch> HitchAnalyzer::add(const FrameRecord& f) {
  auto& proc = procs_[f.tgid];
  proc.frames++;
  if (opts_.budget_ns) {
    proc.budget_ns = opts_.budget_ns;
    return evaluate(f);
  }
  auto& s = samples_[f.tgid];
  if (s.size() < 256) s.push_back(f.frame_ns);
  constexpr size_t kMinFrames = 8;
  if (s.size() < kMinFrames) {
    pending_[f.tgid].push_back(f);
    return {};
  }
  if (!proc.budget_inferred || s.size() < 256) infer_budget(f.tgid);
  std::vector<Hitch> out;
  auto& pend = pending_[f.tgid];
  while (!pend.empty()) {
    for (auto& h : evaluate(pend.front())) out.push_back(std::move(h));
    pend.pop_front();
  }
  for (auto& h : evaluate(f)) out.push_back(std::move(h));
  return out;
}

std::vector<Hitch> HitchAnalyzer::flush() {
  std::vector<Hitch> out;
  for (auto& [tgid, pend] : pending_) {
    auto& proc = procs_[tgid];
    if (!proc.budget_ns && !samples_[tgid].empty()) infer_budget(tgid);
    while (!pend.empty()) {
      for (auto& h : evaluate(pend.front())) out.push_back(std::move(h));
      pend.pop_front();
    }
  }
  return out;
}

std::vector<Hitch> HitchAnalyzer::evaluate(const FrameRecord& f) {
  auto& proc = procs_[f.tgid];
  uint64_t budget = proc.budget_ns;
  if (!budget) return {};
  uint64_t slack = opts_.slack_ns ? opts_.slack_ns : std::max<uint64_t>(1000000, budget / 20);
  if (f.frame_ns <= budget + slack) return {};
  Hitch h;
  h.frame = f;
  h.budget_ns = budget;
  h.parts = attribute_frame(f);
  for (const auto& p : h.parts) {
    if (!p.idle) {
      h.dominant_cause = p.cause;
      break;
    }
  }
  if (h.dominant_cause.empty()) h.dominant_cause = "idle";
  h.summary = "tick " + std::to_string(f.tick) + ": " + format_ms(f.frame_ns) + " (budget " + format_ms(budget) + ") =";
  bool first = true;
  uint64_t rest = 0;
  for (const auto& p : h.parts) {
    if (p.ns * 100 < f.frame_ns && !first) {  // under 1%: folded into "other"
      rest += p.ns;
      continue;
    }
    h.summary += (first ? " " : " + ") + p.label + " " + format_ms(p.ns);
    first = false;
  }
  if (rest) h.summary += " + other " + format_ms(rest);
  proc.hitches++;
  proc.hitches_by_cause[h.dominant_cause]++;
  for (const auto& p : h.parts) proc.hitch_ns_by_cause[p.cause] += p.ns;
  proc.worst.push_back(h);
  std::sort(proc.worst.begin(), proc.worst.end(),
            [](const Hitch& a, const Hitch& b) { return a.frame.frame_ns > b.frame.frame_ns; });
  if (proc.worst.size() > opts_.keep_worst) proc.worst.resize(opts_.keep_worst);
  return {h};
}

HitchAnalyzer::ProcessSummary HitchAnalyzer::forget(uint32_t tgid) {
  ProcessSummary out;
  if (auto it = procs_.find(tgid); it != procs_.end()) {
    out = std::move(it->second);
    procs_.erase(it);
  }
  samples_.erase(tgid);
  pending_.erase(tgid);
  return out;
}

}  // namespace tickprobe
