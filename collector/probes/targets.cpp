#include "probes/targets.h"

#include <linux/types.h>

#include <cstring>

#include "core/uprobe_multi.h"
#include "core/session.h"
#include "bpf/include/targets.h"
#include "targets.skel.h"

namespace tickprobe {

Result<std::unique_ptr<TargetWatcher>> TargetWatcher::create(Session& session, Callback cb) {
  std::unique_ptr<TargetWatcher> w(new TargetWatcher(session, std::move(cb)));
  auto skel = load_skeleton(session, "targets", TP_SKELETON_OPS(targets), [](targets_bpf*) -> Status { return {}; });
  if (!skel) return skel.error();
  w->skel_ = skel.take();
  TargetWatcher* self = w.get();
  auto tok = session.ringbufs().add(bpf_map__fd(w->skel_->maps.target_events),
                                    [self](const void* data, size_t size) { self->on_event(data, size); });
  if (!tok) return tok.error();
  w->ringbuf_token_ = *tok;
  return w;
}

TargetWatcher::~TargetWatcher() { session_.ringbufs().disable(ringbuf_token_); }

void TargetWatcher::on_event(const void* data, size_t size) {
  if (size < sizeof(target_event)) return;
  const auto* e = static_cast<const target_event*>(data);
  ProcessEvent ev;
  ev.kind = e->type == TARGET_EVENT_EXEC ? ProcessEvent::Kind::kExec : ProcessEvent::Kind::kExit;
  ev.tgid = e->tgid;
  ev.ppid = e->ppid;
  ev.comm.assign(e->comm, strnlen(e->comm, sizeof(e->comm)));
  ev.filename.assign(e->filename, strnlen(e->filename, sizeof(e->filename)));
  events_++;
  cb_(ev);
}

Counters TargetWatcher::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_CTR_PROCESS_EVENTS] = events_;
  return c;
}

// Shutdown: the skeleton's tracepoint links from several threads.
void TargetWatcher::release_links() {
  if (skel_) detach_skeleton_concurrently(skel_->skeleton);
}

}  // namespace tickprobe
