#include "probes/runtime.h"

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "core/map_read.h"
#include "core/uprobe_multi.h"
#include "core/usdt_multi.h"
#include "core/log.h"
#include "targets/socket_peers.h"
#include "targets/target_spec.h"
#include "core/session.h"
#include "runtime/function_sites.h"
#include "bpf/include/runtime.h"
#include "runtime.skel.h"

namespace tickprobe {

Result<std::unique_ptr<RuntimeProbe>> RuntimeProbe::create(Session& session, const RuntimeOptions& opts) {
  std::unique_ptr<RuntimeProbe> p(new RuntimeProbe(session, opts));
  bool multi = false;
  bool ticks = opts.ticks && opts.description.has_ticks();
  bool goroutine_ticks = ticks && opts.description.has_goroutine_ticks();
  auto skel = load_skeleton(
      session, "runtime", TP_SKELETON_OPS(runtime),
      [&](runtime_bpf* sk) -> Status {
        sk->rodata->coro_stacks = opts.coro_stacks;
        sk->rodata->pause_stacks = opts.pause_stacks;
        bpf_map__set_max_entries(sk->maps.coros, opts.max_coroutines);
        // Goroutine ticks split frames by parks, not by thread switches.
        bpf_program__set_autoload(sk->progs.rt_sched_switch_btf, ticks && !goroutine_ticks);
        for (bpf_program* prog : {sk->progs.rt_fn_gtick_begin, sk->progs.rt_fn_gtick_end, sk->progs.rt_fn_gpark_begin,
                                  sk->progs.rt_fn_gpark_end})
          bpf_program__set_autoload(prog, goroutine_ticks);
        bool gc = opts.pauses && opts.description.has_gc_cycles();
        bpf_program__set_autoload(sk->progs.rt_fn_gc_start, gc);
        bpf_program__set_autoload(sk->progs.rt_fn_gc_cycle_end, gc);
        bpf_program__set_autoload(sk->progs.rt_tick_begin, ticks && !goroutine_ticks);
        bpf_program__set_autoload(sk->progs.rt_tick_end, ticks && !goroutine_ticks);
        // Load only the program kinds the description uses: each program
        // that unwinds costs verifier time at startup.
        const auto& d = opts.description;
        bool fn = false, usdt = false;
        for (const UsdtProbeRef* r : {&d.coro_create, &d.coro_destroy, &d.coro_resume, &d.coro_suspend})
          (r->is_function() ? fn : usdt) |= r->present();
        for (const auto& pd : d.pauses)
          for (const UsdtProbeRef* r : {&pd.begin, &pd.end}) (r->is_function() ? fn : usdt) |= r->present();
        for (bpf_program* prog : {sk->progs.rt_fn_coro_create, sk->progs.rt_fn_coro_destroy,
                                  sk->progs.rt_fn_pause_begin, sk->progs.rt_fn_pause_end})
          bpf_program__set_autoload(prog, fn);
        for (bpf_program* prog : {sk->progs.rt_coro_create, sk->progs.rt_coro_destroy, sk->progs.rt_coro_resume,
                                  sk->progs.rt_coro_suspend, sk->progs.rt_pause_begin, sk->progs.rt_pause_end})
          bpf_program__set_autoload(prog, usdt);
        // uprobe_multi links for function probes and USDT alike (one link
        // per probe, a detach costs a grace period, not ~90 ms serialized:
        // core/uprobe_multi.h); without them, libbpf's perf-event uprobes.
        multi = opts.uprobe_multi && use_uprobe_multi(sk->obj, /*usdt=*/true);
        return {};
      },
      /*attach=*/false);
  if (!skel) return skel.error();
  p->skel_ = skel.take();
  TP_LOG_DEBUG("runtime: %s", multi ? "uprobe_multi links" : "perf-event uprobes (no uprobe_multi)");
  if (multi)
    p->usdt_specs_ = std::make_unique<UsdtSpecTable>(
        bpf_object__find_map_by_name(p->skel_->obj, "__bpf_usdt_specs"));
  p->skel_->bss->frame_event_min_ns = opts.frame_event_min_ns;
  p->skel_->bss->pause_event_min_ns = opts.pause_event_min_ns;
  if (goroutine_ticks) {
    UsdtProbeRef key;
    key.symbol = "goroutine";
    key.id = opts.description.tick_goroutine;
    p->skel_->bss->goroutine_key_cookie = runtime_cookie(key);
  }
  for (bpf_program* prog : {p->skel_->progs.rt_sched_switch_btf, p->skel_->progs.rt_thread_exit}) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* l = bpf_program__attach(prog);
    if (!l) return family_attach_error("runtime", -errno);
    p->global_links_.emplace_back(l);
  }
  RuntimeProbe* self = p.get();
  auto tok = session.ringbufs().add(bpf_map__fd(p->skel_->maps.events),
                                    [self](const void* data, size_t size) { self->handle_event(data, size); });
  if (!tok) return tok.error();
  p->ringbuf_token_ = *tok;
  return p;
}

RuntimeProbe::~RuntimeProbe() {
  session_.ringbufs().disable(ringbuf_token_);
  release_links();
}

void RuntimeProbe::release_links() {
  std::vector<BpfLink> all;
  for (auto& [pid, links] : links_)
    for (auto& l : links) all.push_back(std::move(l));
  for (auto& l : global_links_) all.push_back(std::move(l));
  links_.clear();
  global_links_.clear();
  destroy_links_concurrently(all);
  if (usdt_specs_)
    for (auto& [pid, ids] : spec_ids_)
      for (uint32_t id : ids) usdt_specs_->release(id);
  spec_ids_.clear();
}

void RuntimeProbe::drop_links(int pid) {
  auto it = links_.find(pid);
  if (it != links_.end()) {
    std::vector<BpfLink> links = std::move(it->second);
    links_.erase(it);
    destroy_links_concurrently(links);
  }
  // after the links: a spec id is reused only once no link points at it
  auto s = spec_ids_.find(pid);
  if (s != spec_ids_.end()) {
    if (usdt_specs_)
      for (uint32_t id : s->second) usdt_specs_->release(id);
    spec_ids_.erase(s);
  }
}

Status RuntimeProbe::attach(uint32_t pid) {
  if (attached_to(pid) || binary_attached(process_exe(pid))) return {};
  auto rep = attach_process(pid);
  if (!rep) return rep.error();
  return {};
}

void RuntimeProbe::detach(uint32_t pid) {
  detach_process(pid);
  forget(pid);
}

Result<RuntimeAttachReport> RuntimeProbe::attach_process(uint32_t pid) {
  std::string binary = opts_.description.binary;
  if (binary.empty()) binary = "/proc/" + std::to_string(pid) + "/exe";
  else if (binary[0] == '/') binary = "/proc/" + std::to_string(pid) + "/root" + binary;
  return attach_links(static_cast<int>(pid), binary);
}

Result<RuntimeAttachReport> RuntimeProbe::attach_binary(const std::string& path) {
  auto rep = attach_links(-1, path);
  if (rep) binaries_.insert(path);
  return rep;
}

Result<RuntimeAttachReport> RuntimeProbe::attach_links(int pid, const std::string& binary) {
  RuntimeAttachReport rep;
  rep.binary = binary;
  const auto& d = opts_.description;
  std::vector<BpfLink> links;
  std::vector<uint32_t> spec_ids;
  std::string first_error;
  int first_errno = 0;
  // A function probe: a uprobe on its entry, or on each of its RETs (never
  // a uretprobe: Go programs crash under them).
  auto function = [&](bpf_program* prog, const UsdtProbeRef& ref, uint32_t kind, bool stops_world = false) {
    auto sites = find_function_sites(binary, ref.symbol, ref.at_call);
    if (!sites) {
      rep.missing.push_back(ref.describe());
      TP_LOG_DEBUG("%s in %s: %s", ref.describe().c_str(), binary.c_str(), sites.error().message.c_str());
      return;
    }
    std::vector<uint64_t> offsets = ref.at_return          ? sites->ret_offsets
                                    : !ref.at_call.empty() ? sites->call_offsets
                                                           : std::vector<uint64_t>{sites->entry_offset};
    if (offsets.empty()) {
      rep.missing.push_back(ref.describe());
      if (first_error.empty())
        first_error = "function " + ref.symbol + " in " + binary + " has no " +
                      (ref.at_return ? std::string("RET instruction") : "direct call of " + ref.at_call);
      return;
    }
    std::vector<BpfLink> these;
    if (loaded_for_uprobe_multi(prog)) {
      // one link for every site, all with the probe's cookie
      BpfLink l;
      std::vector<uint64_t> cookies(offsets.size(), runtime_cookie(ref, kind, stops_world));
      int err = attach_uprobe_multi(prog, pid < 0 ? 0u : static_cast<uint32_t>(pid), binary, offsets, cookies, {},
                                    false, &l);
      if (err) {
        rep.missing.push_back(ref.describe());
        if (first_error.empty()) {
          first_errno = err;
          first_error = "cannot attach uprobe to " + ref.describe() + " in " + binary + ": " + std::strerror(err);
        }
        return;
      }
      these.push_back(std::move(l));
    }
    for (uint64_t off : loaded_for_uprobe_multi(prog) ? std::vector<uint64_t>{} : offsets) {
      LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = runtime_cookie(ref, kind, stops_world));
      bpf_link* l = bpf_program__attach_uprobe_opts(prog, pid, binary.c_str(), off, &uo);
      if (!l) {
        int err = errno;
        rep.missing.push_back(ref.describe());
        if (first_error.empty())
          first_error = "cannot attach uprobe to " + ref.describe() + " in " + binary + ": " + std::strerror(err);
        return;  // all sites or none: a partial exit set would leave pauses open
      }
      these.emplace_back(l);
    }
    for (auto& l : these) links.push_back(std::move(l));
    rep.attached.push_back(ref.describe() + (offsets.size() > 1 ? " (" + std::to_string(offsets.size()) + " sites)" : ""));
  };
  auto one = [&](bpf_program* prog, const UsdtProbeRef& ref, uint32_t kind, bool stops_world = false) {
    if (!ref.present()) return;
    bpf_program* fn_prog = prog == skel_->progs.rt_coro_create    ? skel_->progs.rt_fn_coro_create
                           : prog == skel_->progs.rt_coro_destroy ? skel_->progs.rt_fn_coro_destroy
                           : prog == skel_->progs.rt_pause_begin  ? skel_->progs.rt_fn_pause_begin
                           : prog == skel_->progs.rt_pause_end    ? skel_->progs.rt_fn_pause_end
                                                                  : nullptr;
    if (ref.is_function()) {
      if (!fn_prog) {
        rep.missing.push_back(ref.describe());
        if (first_error.empty()) first_error = ref.describe() + ": function probes are not supported for this event";
        return;
      }
      function(fn_prog, ref, kind, stops_world);
      return;
    }
    if (loaded_for_uprobe_multi(prog)) {
      int err = 0;
      auto a = usdt_specs_ ? attach_usdt_multi(prog, *usdt_specs_, pid, binary, ref.provider, ref.name,
                                               runtime_cookie(ref, kind), &err)
                           : Result<UsdtMultiAttachment>(Error("no USDT spec map"));
      if (!a) {
        rep.missing.push_back(ref.describe());
        if (err != ENOENT && first_error.empty()) {
          first_errno = err;
          first_error = a.error().message;
        }
        TP_LOG_DEBUG("USDT %s in %s: %s", ref.describe().c_str(), binary.c_str(), a.error().message.c_str());
        return;
      }
      UsdtMultiAttachment at = a.take();
      links.push_back(std::move(at.link));
      for (uint32_t id : at.spec_ids) spec_ids.push_back(id);
      rep.attached.push_back(ref.describe());
      return;
    }
    LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = runtime_cookie(ref, kind));
    bpf_link* l = bpf_program__attach_usdt(prog, pid, binary.c_str(), ref.provider.c_str(), ref.name.c_str(), &uo);
    if (!l) {
      int err = errno;
      rep.missing.push_back(ref.describe());
      if (err != ENOENT && first_error.empty()) first_errno = err;
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
  if (opts_.ticks && d.has_goroutine_ticks()) {
    function(skel_->progs.rt_fn_gtick_begin, d.tick_begin, 0);
    function(skel_->progs.rt_fn_gtick_end, d.tick_end, 0);
    if (d.park_begin.present() && d.park_end.present()) {
      function(skel_->progs.rt_fn_gpark_begin, d.park_begin, 0);
      function(skel_->progs.rt_fn_gpark_end, d.park_end, 0);
    }
  } else if (opts_.ticks && d.has_ticks()) {
    one(skel_->progs.rt_tick_begin, d.tick_begin, 0);
    one(skel_->progs.rt_tick_end, d.tick_end, 0);
  }
  // Stop-the-world time and GC cycles feed goroutine frames too.
  if (opts_.pauses || (opts_.ticks && d.has_goroutine_ticks())) {
    for (size_t i = 0; i < d.pauses.size() && i < RT_MAX_PAUSE_KINDS; i++) {
      if (!opts_.pauses && !d.pauses[i].stops_world) continue;
      one(skel_->progs.rt_pause_begin, d.pauses[i].begin, static_cast<uint32_t>(i), d.pauses[i].stops_world);
      one(skel_->progs.rt_pause_end, d.pauses[i].end, static_cast<uint32_t>(i), d.pauses[i].stops_world);
    }
  }
  if (opts_.pauses && d.has_gc_cycles()) {
    function(skel_->progs.rt_fn_gc_start, d.gc_start, 0);
    function(skel_->progs.rt_fn_gc_cycle_end, d.gc_cycle_end, 0);
  }
  if (links.empty()) {
    if (!first_error.empty())
      return Error(first_error, first_errno ? uprobe_attach_hint(first_errno) : "run `tickprobe doctor --pid PID`");
    return Error("no probe of runtime \"" + d.name + "\" found in " + binary,
                 "list its probes with `readelf -n " + binary + "`; describe them with --runtime FILE.json");
  }
  auto& slot = links_[pid];
  for (auto& l : links) slot.push_back(std::move(l));
  auto& ids = spec_ids_[pid];
  ids.insert(ids.end(), spec_ids.begin(), spec_ids.end());
  return rep;
}

void RuntimeProbe::detach_process(uint32_t pid) {
  drop_links(static_cast<int>(pid));
  forget(pid);
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
    for (const auto& r : e.reasons) {
      if (!r.ns) continue;
      f.offcpu_ns[r.reason] += r.ns;
      if (r.fd_plus1) {
        // Named now, while the fd is most likely still open.
        int fd = static_cast<int>(r.fd_plus1) - 1;
        auto ep = socket_endpoints(e.tgid, fd);
        f.socket_blocks.push_back({r.reason, fd, ep ? ep->remote : "", r.ns});
      }
    }
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

int RuntimeProbe::poll(int timeout_ms) { return session_.ringbufs().poll(timeout_ms); }

std::string RuntimeProbe::series_name(uint32_t kind) const {
  switch (kind) {
    case RT_HIST_TICK: return "tick";
    case RT_HIST_FRAME: return "frame";
    case RT_HIST_CORO_LIFETIME: return "coro_lifetime";
    case RT_HIST_CORO_RUN: return "coro_run";
    case RT_HIST_CORO_SUSPENDED: return "coro_suspended";
    case RT_HIST_GC_CYCLE:
      return "gc_cycle";
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
  erase_if(bpf_map__fd(skel_->maps.gframes), rt_coro_key{}, [&](const rt_coro_key& k) { return k.tgid == tgid; });
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.gc_state), &tgid);
}

Counters RuntimeProbe::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_CTR_FRAME_EVENTS] = frames_;
  c[TP_CTR_PAUSE_EVENTS] = pauses_;
  return c;
}

FamilySpec runtime_family_spec() {
  return {"runtime", "coroutines, ticks, pauses and hitches from the runtime's probes (USDT)", true,
          {"description", "trace_resume"},
          [](Session& s, const FamilySettings& set) -> Result<std::unique_ptr<Family>> {
            RuntimeOptions o;
            auto d = runtime_description_from_arg(set.get_string("description", "tickgame"));
            if (!d) return d.error();
            o.description = d.take();
            auto tr = set.get_bool("trace_resume", o.trace_resume);
            if (!tr) return tr.error();
            o.trace_resume = *tr;
            auto p = RuntimeProbe::create(s, o);
            if (!p) return p.error();
            return std::unique_ptr<Family>(p.take());
          }};
}

}  // namespace tickprobe
