// Target-following family (bpf/targets.bpf.c): exec and exit events, so the
// agent attaches to new processes that match its TargetSpec and forgets the
// ones that exit — restarts are followed without polling.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/result.h"

struct targets_bpf;
struct ring_buffer;

namespace tickprobe {

class Session;

struct ProcessEvent {
  enum class Kind { kExec, kExit } kind;
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  std::string comm;
  std::string filename;  // exec only
};

class TargetWatcher {
 public:
  using Callback = std::function<void(const ProcessEvent&)>;
  static Result<std::unique_ptr<TargetWatcher>> create(Session& session, Callback cb);
  ~TargetWatcher();
  TargetWatcher(const TargetWatcher&) = delete;
  TargetWatcher& operator=(const TargetWatcher&) = delete;

  // Delivers pending events; waits up to timeout_ms for the first one.
  int poll(int timeout_ms);
  std::map<std::string, uint64_t> counters() const;

 private:
  explicit TargetWatcher(Callback cb) : cb_(std::move(cb)) {}
  static int on_event(void* ctx, void* data, size_t size);
  Callback cb_;
  targets_bpf* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  uint64_t events_ = 0;
};

}  // namespace tickprobe
