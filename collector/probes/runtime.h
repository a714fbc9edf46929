// Runtime family (bpf/runtime.bpf.c): coroutine lifecycles, pauses and tick
// frames from the USDT probes a runtime description names.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/family.h"
#include "core/usdt_multi.h"
#include "core/result.h"
#include "model/hitch.h"
#include "model/histogram.h"
#include "model/runtime_reports.h"
#include "runtime/runtime_description.h"

struct runtime_bpf;

namespace tickprobe {

class Session;

struct RuntimeOptions {
  RuntimeDescription description;
  bool coroutines = true;
  bool trace_resume = false;  // resume/suspend: run and suspended times (a trap per resume)
  bool ticks = true;          // tick frames and hitch attribution
  bool pauses = true;
  bool coro_stacks = true;    // unwind at every coroutine create
  bool pause_stacks = true;   // unwind at every pause begin
  uint32_t max_coroutines = 65536;
  uint64_t pause_event_min_ns = 0;  // pauses shorter than this feed only the histograms
  uint64_t frame_event_min_ns = 0;  // frames shorter than this feed only the histograms
  // uprobe_multi links where the kernel has them (false: libbpf's perf-event
  // uprobes and bpf_program__attach_usdt, e.g. to compare the two).
  bool uprobe_multi = true;
};


struct LiveCoroutine {
  uint32_t tgid = 0;
  uint64_t id = 0;
  uint64_t birth_ns = 0;  // CLOCK_MONOTONIC; 0 if adopted (born before attach)
  uint64_t user_stack = 0;
  std::string name;
  bool adopted = false;
  bool running = false;
  uint32_t resumes = 0;
  uint64_t run_ns = 0;
  uint32_t creator_tid = 0;
};


struct RuntimeSnapshot {
  std::map<uint32_t, CoroCounts> coroutines;
  // (tgid, name) -> {created, destroyed}
  std::map<std::pair<uint32_t, std::string>, std::pair<uint64_t, uint64_t>> coroutine_names;
  // (tgid, series) -> histogram; series: tick, frame, coro_lifetime,
  // coro_run, coro_suspended, pause:<kind>.
  std::map<std::pair<uint32_t, std::string>, LatencyHistogram> histograms;
};

struct RuntimeAttachReport {
  std::string binary;
  std::vector<std::string> attached;  // "provider:name"
  std::vector<std::string> missing;   // described but not in the binary
};

class RuntimeProbe : public Family {
 public:
  static Result<std::unique_ptr<RuntimeProbe>> create(Session& session, const RuntimeOptions& opts);
  ~RuntimeProbe();
  RuntimeProbe(const RuntimeProbe&) = delete;
  RuntimeProbe& operator=(const RuntimeProbe&) = delete;

  // Attaches the described probes of `pid`'s executable (or the
  // description's binary), for that process only. Fails when none exists.
  Result<RuntimeAttachReport> attach_process(uint32_t pid);
  // Attaches them for every process that runs `path`, now or later: events
  // from a process that starts after this call are seen from its first
  // instruction (used by the agent's --exe).
  Result<RuntimeAttachReport> attach_binary(const std::string& path);
  void detach_process(uint32_t pid);
  bool attached_to(uint32_t pid) const { return links_.count(static_cast<int>(pid)) > 0; }
  bool binary_attached(const std::string& path) const { return binaries_.count(path) > 0; }

  // Family: a target's probes (unless its binary is attached as a whole).
  const char* name() const override { return "runtime"; }
  Status attach(uint32_t pid) override;
  void detach(uint32_t pid) override;
  void release_links() override;

  // Delivers pending events of every family's ring buffer (the session's);
  // frame and pause events go to the handlers below.
  int poll(int timeout_ms);
  void on_frame(std::function<void(const FrameRecord&)> fn) { frame_fn_ = std::move(fn); }
  void on_pause(std::function<void(const PauseRecord&)> fn) { pause_fn_ = std::move(fn); }

  RuntimeSnapshot snapshot() const;
  // Coroutines alive now (optionally of one process), at most max of them.
  std::vector<LiveCoroutine> live_coroutines(uint32_t tgid = 0, size_t max = 1u << 20) const;
  // Drops what the kernel keeps about an exited process.
  void forget(uint32_t tgid);
  Counters counters() const override;
  const RuntimeDescription& description() const { return opts_.description; }
  const RuntimeOptions& options() const { return opts_; }

  // Histogram series name for a kernel histogram kind (see RuntimeSnapshot).
  std::string series_name(uint32_t kind) const;

 private:
  RuntimeProbe(Session& s, const RuntimeOptions& o) : session_(s), opts_(o) {}
  Result<RuntimeAttachReport> attach_links(int pid, const std::string& binary);
  void drop_links(int pid);
  void handle_event(const void* data, size_t size);

  Session& session_;
  RuntimeOptions opts_;
  SkeletonPtr<runtime_bpf> skel_;
  size_t ringbuf_token_ = 0;
  std::set<std::string> binaries_;  // attached for every process that runs them
  std::vector<BpfLink> global_links_;         // sched_switch, thread exit
  std::map<int, std::vector<BpfLink>> links_;  // pid (-1: whole binaries) -> USDT links
  std::unique_ptr<UsdtSpecTable> usdt_specs_;   // uprobe_multi USDT: the object's __bpf_usdt_specs
  std::map<int, std::vector<uint32_t>> spec_ids_;  // pid -> spec ids its USDT links hold
  std::function<void(const FrameRecord&)> frame_fn_;
  std::function<void(const PauseRecord&)> pause_fn_;
  uint64_t frames_ = 0, pauses_ = 0;
};

// Registry entry (settings: description = tickgame | FILE.json, trace_resume).
FamilySpec runtime_family_spec();

}  // namespace tickprobe
