// Hitch attribution: which pause or block made a tick late.
//
// The runtime family reports every tick frame (one tick begin to the next
// on the same thread) with its pause time per kind, its off-CPU time outside
// pauses per blocking reason, and the tick's own duration. A frame longer
// than the tick budget plus slack is a hitch: the next tick started late.
// Its time is split into parts that add up to the frame: pauses, off-CPU
// reasons (socket write, futex, page fault, ...), idle waits (epoll/poll/
// sleep: the loop waiting for its next tick), and on-CPU time (the rest).
// The dominant cause is the largest part that is not idle.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace tickprobe {

// Name of a syscall number ("sendto"), or "syscall_<nr>".
std::string syscall_name(int nr);

// Off-CPU reason codes (RT_REASON in bpf/include/runtime.h).
struct BlockReason {
  std::string cause;  // bounded slug for metrics: socket_write, socket_read, file_io, lock, runqueue, ...
  std::string label;  // for humans: "blocked in socket write (sendto)"
  bool idle = false;  // a wait for work: epoll_wait, poll, select, sleeps
};
// Also Go goroutine parks (RT_REASON_GO_PARK): "goroutine_blocked" inside
// the tick body, "idle" outside it.
BlockReason describe_block_reason(uint32_t code);
// runtime.waitReason's text ("IO wait", "chan receive", ...).
std::string go_wait_reason(uint32_t wait);

struct FrameRecord {
  uint32_t tgid = 0, tid = 0;
  uint64_t tick = 0;
  uint64_t start_ns = 0;
  uint64_t frame_ns = 0;
  uint64_t tick_ns = 0;
  std::map<std::string, uint64_t> pause_ns;  // pause kind -> ns (non-zero only)
  std::map<uint32_t, uint64_t> offcpu_ns;    // reason code -> ns
  uint64_t off_other_ns = 0;                 // off-CPU beyond the per-frame reason slots
  // The part of offcpu_ns spent blocked on one named socket.
  struct SocketBlock {
    uint32_t reason = 0;  // a key of offcpu_ns
    int fd = -1;
    std::string peer;     // "127.0.0.1:53412", or "" if it could not be named
    uint64_t ns = 0;
  };
  std::vector<SocketBlock> socket_blocks;
  std::string comm;
};

struct HitchPart {
  std::string cause;  // slug: gc, arena, socket_write, cpu, idle, ...
  std::string label;  // human
  uint64_t ns = 0;
  bool idle = false;
};

struct Hitch {
  FrameRecord frame;
  uint64_t budget_ns = 0;
  std::vector<HitchPart> parts;  // largest first; sums to frame.frame_ns
  std::string dominant_cause;
  std::string summary;  // "tick 48213: 143.2 ms (budget 50.0 ms) = GC 95.0 ms + ..."
};

// Splits a frame into parts (pauses, blocking reasons, idle, CPU).
std::vector<HitchPart> attribute_frame(const FrameRecord& f);
std::string format_ms(uint64_t ns);

struct HitchOptions {
  uint64_t budget_ns = 0;  // 0: infer per process from the median frame length
  uint64_t slack_ns = 0;   // 0: max(1 ms, budget / 20)
  size_t keep_worst = 20;  // hitches kept, per process, longest first
};

class HitchAnalyzer {
 public:
  explicit HitchAnalyzer(HitchOptions o = {}) : opts_(o) {}

  // Takes one frame; returns the hitches it completes (a frame can wait for
  // the budget to be inferred: the first few frames are held back).
  std::vector<Hitch> add(const FrameRecord& f);
  // Evaluates held-back frames with whatever budget is known.
  std::vector<Hitch> flush();

  struct ProcessSummary {
    uint64_t budget_ns = 0;
    bool budget_inferred = false;
    uint64_t frames = 0;
    uint64_t hitches = 0;
    std::map<std::string, uint64_t> hitches_by_cause;
    std::map<std::string, uint64_t> hitch_ns_by_cause;  // time of each cause inside hitches
    std::vector<Hitch> worst;                            // longest first
  };
  const std::map<uint32_t, ProcessSummary>& processes() const { return procs_; }
  uint64_t budget_for(uint32_t tgid) const;
  // Drops a process (it exited a while ago); its summary is returned so the
  // caller can keep all-process totals.
  ProcessSummary forget(uint32_t tgid);

 private:
  std::vector<Hitch> evaluate(const FrameRecord& f);
  void infer_budget(uint32_t tgid);
  HitchOptions opts_;
  std::map<uint32_t, ProcessSummary> procs_;
  std::map<uint32_t, std::vector<uint64_t>> samples_;     // frame lengths for inference
  std::map<uint32_t, std::deque<FrameRecord>> pending_;  // frames before the budget is known
};

}  // namespace tickprobe
