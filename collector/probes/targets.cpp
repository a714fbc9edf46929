#include "probes/targets.h"

#include <linux/types.h>

#include <cstring>

#include "core/family_errors.h"
#include "core/session.h"
#include "bpf/include/targets.h"
#include "targets.skel.h"

namespace tickprobe {

Result<std::unique_ptr<TargetWatcher>> TargetWatcher::create(Session& session, Callback cb) {
  std::unique_ptr<TargetWatcher> w(new TargetWatcher(std::move(cb)));
  w->skel_ = targets_bpf__open();
  if (!w->skel_) return Error::from_errno("failed to open the targets BPF object", errno);
  if (auto st = session.maps().reuse_in(w->skel_->obj); !st) return st.error();
  if (int err = targets_bpf__load(w->skel_))
    return Error::from_errno("failed to load the targets BPF program", err, "rerun with -v for the verifier log");
  if (int err = targets_bpf__attach(w->skel_))
    return Error::from_errno("failed to attach to sched:sched_process_exec/exit", err,
                             "is tracefs mounted? run `tickprobe doctor`");
  w->rb_ = ring_buffer__new(bpf_map__fd(w->skel_->maps.target_events), on_event, w.get(), nullptr);
  if (!w->rb_) return Error::from_errno("failed to create the process-event ring buffer", errno);
  return w;
}

TargetWatcher::~TargetWatcher() {
  if (rb_) ring_buffer__free(rb_);
  if (skel_) targets_bpf__destroy(skel_);
}

int TargetWatcher::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<TargetWatcher*>(ctx);
  if (size < sizeof(target_event)) return 0;
  const auto* e = static_cast<const target_event*>(data);
  ProcessEvent ev;
  ev.kind = e->type == TARGET_EVENT_EXEC ? ProcessEvent::Kind::kExec : ProcessEvent::Kind::kExit;
  ev.tgid = e->tgid;
  ev.ppid = e->ppid;
  ev.comm.assign(e->comm, strnlen(e->comm, sizeof(e->comm)));
  ev.filename.assign(e->filename, strnlen(e->filename, sizeof(e->filename)));
  self->events_++;
  self->cb_(ev);
  return 0;
}

int TargetWatcher::poll(int timeout_ms) { return ring_buffer__poll(rb_, timeout_ms); }

std::map<std::string, uint64_t> TargetWatcher::counters() const {
  auto c = read_family_errors(skel_->maps.errors);
  c["process_events"] = events_;
  return c;
}

}  // namespace tickprobe
