#include "probes/runtime.h"

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "core/family_errors.h"
#include "core/log.h"
#include "core/session.h"
#include "bpf/include/runtime.h"
#include "runtime.skel.h"

namespace tickprobe {

namespace {

Result<runtime_bpf*> open_and_load(Session& session, const RuntimeOptions& o, bool use_btf) {
  runtime_bpf* skel = runtime_bpf__open();
  if (!skel) return Error::from_errno("failed to open the runtime BPF object", errno);
  skel->rodata->coro_stacks = o.coro_stacks;
  skel->rodata->pause_stacks = o.pause_stacks;
  bpf_map__set_max_entries(skel->maps.coros, o.max_coroutines);
  bool ticks = o.ticks && o.description.has_ticks();
  bpf_program__set_autoload(skel->progs.rt_sched_switch_btf, ticks && use_btf);
  bpf_program__set_autoload(skel->progs.rt_sched_switch_raw, ticks && !use_btf);
  bpf_program__set_autoload(skel->progs.rt_thread_exit, use_btf);
  if (auto st = session.maps().reuse_in(skel->obj); !st) {
    runtime_bpf__destroy(skel);
    return st.error();
  }
  if (int err = runtime_bpf__load(skel)) {
    runtime_bpf__destroy(skel);
    return Error::from_errno("failed to load the runtime BPF program", err,
                             "run `tickprobe doctor`; rerun with -v for the verifier log");
  }
  return skel;
}

}  // namespace

Result<std::unique_ptr<RuntimeProbe>> RuntimeProbe::create(Session& session, const RuntimeOptions& opts) {
  std::unique_ptr<RuntimeProbe> p(new RuntimeProbe(opts));
  auto skel = open_and_load(session, opts, /*use_btf=*/true);
  if (!skel) {
    TP_LOG_DEBUG("runtime family with tp_btf failed (%s); trying raw_tp", skel.error().message.c_str());
    skel = open_and_load(session, opts, /*use_btf=*/false);
  }
  if (!skel) return skel.error();
  p->skel_ = skel.value();
  p->skel_->bss->frame_event_min_ns = opts.frame_event_min_ns;
  p->skel_->bss->pause_event_min_ns = opts.pause_event_min_ns;
  for (bpf_program* prog : {p->skel_->progs.rt_sched_switch_btf, p->skel_->progs.rt_sched_switch_raw,
                            p->skel_->progs.rt_thread_exit}) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* l = bpf_program__attach(prog);
    if (!l)
      return Error::from_errno(std::string("failed to attach ") + bpf_program__name(prog), errno,
                               "is tracefs mounted? run `tickprobe doctor`");
    p->global_links_.emplace_back(l);
  }
  p->rb_ = ring_buffer__new(bpf_map__fd(p->skel_->maps.events), &RuntimeProbe::on_event, p.get(), nullptr);
  if (!p->rb_) return Error::from_errno("failed to set up the runtime event ring buffer", errno);
  return p;
}

RuntimeProbe::~RuntimeProbe() {
  links_.clear();
  global_links_.clear();
  if (rb_) ring_buffer__free(rb_);
  if (skel_) runtime_bpf__destroy(skel_);
}

Result<RuntimeAttachReport> RuntimeProbe::attach_process(uint32_t pid) {
  std::string binary = opts_.description.binary;
  if (binary.empty()) binary = "/proc/" + std::to_string(pid) + "/exe";
  else if (binary[0] == '/') binary = "/proc/" + std::to_string(pid) + "/root" + binary;
  return attach(static_cast<int>(pid), binary);
}

Result<RuntimeAttachReport> RuntimeProbe::attach_binary(const std::string& path) {
  return attach(-1, path);
}

Result<RuntimeAttachReport> RuntimeProbe::attach(int pid, const std::string& binary) {
  RuntimeAttachReport rep;
  rep.binary = binary;
  const auto& d = opts_.description;
  std::vector<BpfLink> links;
  std::string first_error;
  auto one = [&](bpf_program* prog, const UsdtProbeRef& ref, uint32_t kind) {
    if (!ref.present()) return;
    LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = runtime_cookie(ref, kind));
    bpf_link* l = bpf_program__attach_usdt(prog, pid, binary.c_str(), ref.provider.c_str(), ref.name.c_str(), &uo);
    if (!l) {
      int err = errno;
      rep.missing.push_back(ref.describe());
      if (err != ENOENT && first_error.empty())
        first_error = "cannot attach to USDT " + ref.describe() + " in " + binary + ": " + std::strerror(err);
      TP_LOG_DEBUG("USDT %s in %s: %s", ref.describe().c_str(), binary.c_str(), std::strerror(err));
      return;
    }
    links.emplace_back(l);
    rep.attached.push_back(ref.describe());
  };
  if (opts_.coroutines && d.has_coroutines()) {
    one(skel_->progs.rt_coro_create, d.coro_create, 0);
    one(skel_->progs.rt_coro_destroy, d.coro_destroy, 0);
    if (opts_.trace_resume) {
      one(skel_->progs.rt_coro_resume, d.coro_resume, 0);
      one(skel_->progs.rt_coro_suspend, d.coro_suspend, 0);
    }
  }
  if (opts_.ticks && d.has_ticks()) {
    one(skel_->progs.rt_tick_begin, d.tick_begin, 0);
    one(skel_->progs.rt_tick_end, d.tick_end, 0);
  }
  if (opts_.pauses) {
    for (size_t i = 0; i < d.pauses.size() && i < RT_MAX_PAUSE_KINDS; i++) {
      one(skel_->progs.rt_pause_begin, d.pauses[i].begin, static_cast<uint32_t>(i));
      one(skel_->progs.rt_pause_end, d.pauses[i].end, static_cast<uint32_t>(i));
    }
  }
  if (links.empty()) {
    if (!first_error.empty()) return Error(first_error, "run `tickprobe doctor`; is the path right?");
    return Error("no USDT probe of runtime \"" + d.name + "\" found in " + binary,
                 "list its probes with `readelf -n " + binary + "`; describe them with --runtime FILE.json");
  }
  auto& slot = links_[pid];
  for (auto& l : links) slot.push_back(std::move(l));
  return rep;
}

void RuntimeProbe::detach_process(uint32_t pid) {
  links_.erase(static_cast<int>(pid));
  forget(pid);
}

int RuntimeProbe::on_event(void* ctx, void* data, size_t size) {
  static_cast<RuntimeProbe*>(ctx)->handle_event(data, size);
  return 0;
}

void RuntimeProbe::handle_event(const void* data, size_t size) {
  if (size < sizeof(uint32_t)) return;
  uint32_t type;
  std::memcpy(&type, data, sizeof(type));
  const auto& d = opts_.description;
  if (type == RT_EVENT_FRAME && size >= sizeof(rt_frame_event)) {
    rt_frame_event e;
    std::memcpy(&e, data, sizeof(e));
    frames_++;
    if (!frame_fn_) return;
    FrameRecord f;
    f.tgid = e.tgid;
    f.tid = e.tid;
    f.tick = e.tick;
    f.start_ns = e.start_ns;
    f.frame_ns = e.frame_ns;
    f.tick_ns = e.tick_ns;
    for (size_t i = 0; i < RT_MAX_PAUSE_KINDS; i++)
      if (e.pause_ns[i]) f.pause_ns[i < d.pauses.size() ? d.pauses[i].kind : "pause" + std::to_string(i)] += e.pause_ns[i];
    for (const auto& r : e.reasons)
      if (r.ns) f.offcpu_ns[r.reason] += r.ns;
    f.off_other_ns = e.off_other_ns;
    f.comm.assign(e.comm, strnlen(e.comm, sizeof(e.comm)));
    frame_fn_(f);
  } else if (type == RT_EVENT_PAUSE && size >= sizeof(rt_pause_event)) {
    rt_pause_event e;
    std::memcpy(&e, data, sizeof(e));
    pauses_++;
    if (!pause_fn_) return;
    PauseRecord p;
    p.tgid = e.tgid;
    p.tid = e.tid;
    p.kind = e.kind < d.pauses.size() ? d.pauses[e.kind].kind : "pause" + std::to_string(e.kind);
    p.start_ns = e.start_ns;
    p.duration_ns = e.duration_ns;
    p.tick = e.tick;
    p.user_stack = e.user_stack;
    if (e.kind < d.pauses.size()) {
      const auto& pd = d.pauses[e.kind];
      if (!pd.begin.args.empty() && !pd.begin.args[0].empty()) p.args.emplace_back(pd.begin.args[0], e.begin_arg);
      for (size_t i = 0; i < pd.end.args.size() && i < RT_MAX_ARGS; i++) {
        if (pd.end.args[i].empty()) continue;
        // An end argument with the begin argument's name (e.g. the cycle) is shown once.
        if (!p.args.empty() && p.args[0].first == pd.end.args[i]) continue;
        p.args.emplace_back(pd.end.args[i], e.end_args[i]);
      }
    }
    pause_fn_(p);
  }
}

int RuntimeProbe::poll(int timeout_ms) {
  int n = ring_buffer__poll(rb_, timeout_ms);
  return n < 0 ? 0 : n;
}

std::string RuntimeProbe::series_name(uint32_t kind) const {
  switch (kind) {
    case RT_HIST_TICK: return "tick";
    case RT_HIST_FRAME: return "frame";
    case RT_HIST_CORO_LIFETIME: return "coro_lifetime";
    case RT_HIST_CORO_RUN: return "coro_run";
    case RT_HIST_CORO_SUSPENDED: return "coro_suspended";
    default: break;
  }
  uint32_t i = kind - RT_HIST_PAUSE_BASE;
  if (kind >= RT_HIST_PAUSE_BASE && i < opts_.description.pauses.size())
    return "pause:" + opts_.description.pauses[i].kind;
  return "kind" + std::to_string(kind);
}

RuntimeSnapshot RuntimeProbe::snapshot() const {
  RuntimeSnapshot s;
  for_each_map_entry<uint32_t, rt_coro_counts>(
      bpf_map__fd(skel_->maps.coro_counts), [&](uint32_t tgid, const rt_coro_counts& v) {
        CoroCounts& c = s.coroutines[tgid];
        c.created = v.created;
        c.destroyed = v.destroyed;
        c.destroyed_untracked = v.destroyed_untracked;
        c.adopted = v.adopted;
        c.untracked = v.untracked;
        c.resumes = v.resumes;
        c.suspends = v.suspends;
      });
  for_each_map_entry<rt_name_key, rt_name_counts>(
      bpf_map__fd(skel_->maps.coro_names), [&](const rt_name_key& k, const rt_name_counts& v) {
        std::string name(k.name, strnlen(k.name, sizeof(k.name)));
        s.coroutine_names[{k.tgid, name.empty() ? "(unnamed)" : name}] = {v.created, v.destroyed};
      });
  for_each_map_entry<rt_hist_key, tp_hist>(bpf_map__fd(skel_->maps.hists), [&](const rt_hist_key& k, const tp_hist& h) {
    s.histograms[{k.tgid, series_name(k.kind)}] = LatencyHistogram::from_bpf(h);
  });
  return s;
}

std::vector<LiveCoroutine> RuntimeProbe::live_coroutines(uint32_t tgid, size_t max) const {
  std::vector<LiveCoroutine> out;
  for_each_map_entry<rt_coro_key, rt_coro>(bpf_map__fd(skel_->maps.coros), [&](const rt_coro_key& k, const rt_coro& v) {
    if ((tgid && k.tgid != tgid) || out.size() >= max) return;
    LiveCoroutine c;
    c.tgid = k.tgid;
    c.id = k.id;
    c.birth_ns = v.birth_ns;
    c.user_stack = v.user_stack;
    c.name.assign(v.name, strnlen(v.name, sizeof(v.name)));
    c.adopted = v.flags & RT_CORO_ADOPTED;
    c.running = v.flags & RT_CORO_RUNNING;
    c.resumes = v.resumes;
    c.run_ns = v.run_ns;
    c.creator_tid = v.creator_tid;
    out.push_back(std::move(c));
  });
  return out;
}

void RuntimeProbe::forget(uint32_t tgid) {
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.coro_counts), &tgid);
  auto erase_if = [](int fd, auto key_type, auto pred) {
    using K = decltype(key_type);
    std::vector<K> doomed;
    K k{}, n{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &n) == 0) {
      if (pred(n)) doomed.push_back(n);
      k = n;
      prev = &k;
    }
    for (auto& d : doomed) bpf_map_delete_elem(fd, &d);
  };
  erase_if(bpf_map__fd(skel_->maps.coros), rt_coro_key{}, [&](const rt_coro_key& k) { return k.tgid == tgid; });
  erase_if(bpf_map__fd(skel_->maps.coro_names), rt_name_key{}, [&](const rt_name_key& k) { return k.tgid == tgid; });
  erase_if(bpf_map__fd(skel_->maps.hists), rt_hist_key{}, [&](const rt_hist_key& k) { return k.tgid == tgid; });
}

std::map<std::string, uint64_t> RuntimeProbe::counters() const {
  auto c = read_family_errors(skel_->maps.errors);
  c["frame_events"] = frames_;
  c["pause_events"] = pauses_;
  return c;
}

}  // namespace tickprobe
