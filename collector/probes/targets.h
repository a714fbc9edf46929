// Target-following family (bpf/targets.bpf.c): exec and exit events, so the
// agent attaches to new processes that match its TargetSpec and forgets the
// ones that exit — restarts are followed without polling.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/family.h"
#include "core/result.h"

struct targets_bpf;

namespace tickprobe {

class Session;

struct ProcessEvent {
  enum class Kind { kExec, kExit } kind;
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  std::string comm;
  std::string filename;  // exec only
};

// Not optional, so not in the registry: every agent runs one.
class TargetWatcher : public Family {
 public:
  using Callback = std::function<void(const ProcessEvent&)>;
  static Result<std::unique_ptr<TargetWatcher>> create(Session& session, Callback cb);
  ~TargetWatcher();
  TargetWatcher(const TargetWatcher&) = delete;
  TargetWatcher& operator=(const TargetWatcher&) = delete;

  const char* name() const override { return "targets"; }

  void release_links() override;
  Counters counters() const override;

 private:
  TargetWatcher(Session& s, Callback cb) : session_(s), cb_(std::move(cb)) {}
  void on_event(const void* data, size_t size);
  Session& session_;
  Callback cb_;
  SkeletonPtr<targets_bpf> skel_;
  size_t ringbuf_token_ = 0;
  uint64_t events_ = 0;
};

}  // namespace tickprobe
