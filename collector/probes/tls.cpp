#include "probes/tls.h"

#include <arpa/inet.h>
#include <linux/types.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <set>

#include "core/uprobe_multi.h"
#include "core/clock.h"
#include "core/count_slots.h"
#include "core/map_read.h"
#include "core/log.h"
#include "core/perf_events.h"
#include "core/session.h"
#include "probes/openssl_layout.h"
#include "probes/uprobe_binaries.h"
#include "runtime/function_sites.h"
#include "unwind/go_layout.h"
#include "symbolize/elf_info.h"
#include "targets/target_spec.h"
#include "bpf/include/tls.h"
#include "tls.skel.h"

namespace tickprobe {

namespace {

const char* side_name(uint32_t side) {
  switch (side) {
    case TLS_SIDE_SERVER: return "server";
    case TLS_SIDE_CLIENT: return "client";
    default: return "unknown";
  }
}

const char* result_name(uint32_t result) {
  switch (result) {
    case TLS_RESULT_COMPLETED: return "completed";
    case TLS_RESULT_FAILED: return "failed";
    default: return "abandoned";
  }
}

std::string format_peer(const tls_peer& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (p.family == AF_INET) {
    if (!inet_ntop(AF_INET, p.addr, buf, sizeof(buf))) return "";
    return std::string(buf) + ":" + std::to_string(p.port);
  }
  if (p.family == AF_INET6) {
    if (!inet_ntop(AF_INET6, p.addr, buf, sizeof(buf))) return "";
    return "[" + std::string(buf) + "]:" + std::to_string(p.port);
  }
  return "";
}

HistogramData to_prometheus(const LatencyHistogram& h) {
  HistogramData d = HistogramData::with_bounds(latency_bucket_bounds_seconds());
  double below_prev = 0;
  for (size_t i = 0; i < d.upper_bounds.size(); i++) {
    double below = h.count_below(d.upper_bounds[i] * 1e9);
    d.bucket_counts[i] = static_cast<uint64_t>(below - below_prev + 0.5);
    below_prev = below;
  }
  d.bucket_counts.back() = static_cast<uint64_t>(static_cast<double>(h.count()) - below_prev + 0.5);
  d.sum = static_cast<double>(h.sum()) / 1e9;
  return d;
}

}  // namespace

// Aggregates, written by the ring-buffer handler (polling thread) and read
// by snapshot()/metrics() (any thread).
struct TlsProbe::State {
  std::mutex mu;
  size_t keep_worst = 32;
  std::map<std::tuple<uint32_t, std::string, std::string>, TlsOutcome> outcomes;  // (pid, side, result)
  std::vector<TlsHandshake> worst;  // bounded, slowest first
  uint64_t events = 0;
  // Exited processes: their per-process series go after the retention time
  // (session options), like every family's.
  std::map<uint32_t, std::chrono::steady_clock::time_point> exited;

  void expire(double after_s) {
    std::lock_guard<std::mutex> lock(mu);
    auto now = std::chrono::steady_clock::now();
    for (auto it = exited.begin(); it != exited.end();) {
      if (now - it->second < std::chrono::duration<double>(after_s)) {
        ++it;
        continue;
      }
      for (auto o = outcomes.begin(); o != outcomes.end();)
        o = std::get<0>(o->first) == it->first ? outcomes.erase(o) : std::next(o);
      it = exited.erase(it);
    }
  }

  void add(const TlsHandshake& h) {
    std::lock_guard<std::mutex> lock(mu);
    events++;
    TlsOutcome& o = outcomes[{h.pid, h.side, h.result}];
    o.side = h.side;
    o.result = h.result;
    o.count++;
    o.calls += h.calls;
    o.cpu_ns += h.cpu_ns;
    o.latency.add(h.latency_ns());
    o.cpu.add(h.cpu_ns);
    if (worst.size() < keep_worst || h.latency_ns() > worst.back().latency_ns()) {
      auto at = std::upper_bound(worst.begin(), worst.end(), h, [](const TlsHandshake& a, const TlsHandshake& b) {
        return a.latency_ns() > b.latency_ns();
      });
      worst.insert(at, h);
      if (worst.size() > keep_worst) worst.pop_back();
    }
  }
};

TlsProbe::TlsProbe(Session& s, const TlsOptions& o) : session_(s), opts_(o), state_(std::make_shared<State>()) {
  state_->keep_worst = o.keep_worst;
}

TlsHandshake TlsProbe::from_event(const ::tls_event& e) {
  TlsHandshake h;
  h.pid = e.tgid;
  h.tid = e.tid;
  h.ssl = e.ssl;
  h.side = side_name(e.side);
  h.result = result_name(e.result);
  h.start_ns = e.start_ns;
  h.end_ns = e.end_ns;
  h.cpu_ns = e.cpu_ns;
  h.calls = e.calls;
  h.fd = e.fd;
  h.last_ret = e.last_ret;
  h.peer = format_peer(e.peer);
  return h;
}

Result<std::unique_ptr<TlsProbe>> TlsProbe::create(Session& session, const TlsOptions& opts) {
  std::unique_ptr<TlsProbe> p(new TlsProbe(session, opts));
  auto skel = load_skeleton(
      session, "tls", TP_SKELETON_OPS(tls),
      [&](tls_bpf* s) -> Status {
        s->rodata->collect_kernel = opts.kernel_stacks;
        bpf_map__set_max_entries(s->maps.conns, std::max<uint32_t>(opts.max_inflight, 16));
        bpf_map__set_max_entries(s->maps.counts_0, opts.max_counts);
        bpf_map__set_max_entries(s->maps.counts_1, opts.max_counts);
        bpf_program__set_autoload(s->progs.tls_cpu_sample, opts.frequency > 0);
        // uprobe_multi links where the kernel has them: a detach costs a
        // grace period, not ~90 ms serialized (core/uprobe_multi.h).
        use_uprobe_multi(s->obj);
        return {};
      },
      /*attach=*/false);
  if (!skel) return skel.error();
  p->skel_ = skel.take();

  for (bpf_program* prog : {p->skel_->progs.tls_sched_switch, p->skel_->progs.tls_thread_exit}) {
    bpf_link* l = bpf_program__attach(prog);
    if (!l)
      return Error::from_errno(std::string("failed to attach ") + bpf_program__name(prog), errno,
                               "run `tickprobe doctor`");
    p->global_links_.emplace_back(l);
  }
  if (opts.frequency > 0) {
    auto ev = open_cpu_sampling_events(opts.frequency, opts.force_cpu_clock);
    if (!ev) return ev.error();
    p->event_name_ = ev->event_name;
    for (auto& fd : ev->fds) {
      bpf_link* l = bpf_program__attach_perf_event(p->skel_->progs.tls_cpu_sample, fd.get());
      if (!l) return Error::from_errno("failed to attach the handshake CPU sampler", errno);
      p->global_links_.emplace_back(l);
      p->perf_fds_.push_back(std::move(fd));
    }
  }
  // The handler holds the state, not the probe: the session's ring buffers
  // may outlive this object.
  std::shared_ptr<State> state = p->state_;
  if (auto st = session.ringbufs().add(bpf_map__fd(p->skel_->maps.events),
                                       [state](const void* data, size_t size) {
                                         if (size < sizeof(tls_event)) return;
                                         state->add(from_event(*static_cast<const tls_event*>(data)));
                                       });
      !st)
    return st.error();
  return p;
}

TlsProbe::~TlsProbe() { release_links(); }

void TlsProbe::release_links() {
  // the sampler's links first, each with its perf event (perf_fds_[i]
  // belongs to the link after the two tracepoint links)
  std::vector<BpfLink> all;
  for (size_t i = 2; i < global_links_.size(); i++) all.push_back(std::move(global_links_[i]));
  for (size_t i = 0; i < global_links_.size() && i < 2; i++) all.push_back(std::move(global_links_[i]));
  for (auto& [pid, links] : links_)
    for (auto& l : links) all.push_back(std::move(l));
  links_.clear();
  global_links_.clear();
  destroy_links_concurrently(all, &perf_fds_);
}

// Go's crypto/tls: uprobes at the entry and at every RET of
// (*Conn).serverHandshake and clientHandshake (never uretprobes: they crash
// Go programs), which handshakeFn runs once per handshake. Not
// handshakeContext: every Read and Write calls it (its fast path returns at
// once), which would cost two probe hits per call.
Result<TlsAttachReport> TlsProbe::attach_go(uint32_t pid, const std::string& exe) {
  TlsAttachReport rep;
  rep.library = process_exe(pid);
  rep.found_by = "Go crypto/tls (pclntab)";
  std::vector<BpfLink> links;
  for (auto [symbol, side] : {std::pair{"crypto/tls.(*Conn).serverHandshake", TLS_SIDE_SERVER},
                              std::pair{"crypto/tls.(*Conn).clientHandshake", TLS_SIDE_CLIENT}}) {
    auto sites = find_function_sites(exe, symbol);
    if (!sites) {
      rep.notes.push_back(std::string(symbol) + " not found (" + sites.error().message + ")");
      continue;
    }
    if (sites->ret_offsets.empty())
      return Error(std::string(symbol) + " in " + rep.library + " has no RET instruction");
    if (loaded_for_uprobe_multi(skel_->progs.tls_go_exit)) {
      // two links: the entry, and every RET in one
      uint64_t cookie = static_cast<uint64_t>(side);
      for (auto [prog, offs] : {std::pair{skel_->progs.tls_go_enter, std::vector<uint64_t>{sites->entry_offset}},
                                std::pair{skel_->progs.tls_go_exit, sites->ret_offsets}}) {
        BpfLink l;
        if (int err = attach_uprobe_multi(prog, pid, exe, offs, std::vector<uint64_t>(offs.size(), cookie), {}, false,
                                          &l))
          return Error::from_errno(std::string("cannot attach a uprobe to ") + symbol + " in " + rep.library, err,
                                   uprobe_attach_hint(err));
        links.push_back(std::move(l));
      }
      rep.attached.push_back(std::string(symbol) + " (entry, " + std::to_string(sites->ret_offsets.size()) +
                             " RETs) in " + rep.library);
      continue;
    }
    std::vector<std::pair<bpf_program*, uint64_t>> at = {{skel_->progs.tls_go_enter, sites->entry_offset}};
    for (uint64_t off : sites->ret_offsets) at.emplace_back(skel_->progs.tls_go_exit, off);
    for (auto [prog, off] : at) {
      LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = static_cast<uint64_t>(side));
      bpf_link* l = bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), exe.c_str(), off, &uo);
      if (!l)
        return Error::from_errno(std::string("cannot attach a uprobe to ") + symbol + " in " + rep.library, errno,
                                 "is the process still running?");
      links.emplace_back(l);
    }
    rep.attached.push_back(std::string(symbol) + " (entry, " + std::to_string(sites->ret_offsets.size()) +
                           " RETs) in " + rep.library);
  }
  if (links.empty())
    return Error("Go program " + std::to_string(pid) + " (" + process_comm(pid) + ") does not use crypto/tls",
                 "neither (*Conn).serverHandshake nor clientHandshake is in its pclntab");
  rep.notes.push_back(
      "Go handshakes: latency, outcome, side and peer; CPU per handshake is not measured (the "
      "goroutine moves between threads)");
  auto& slot = links_[pid];
  slot.clear();
  for (auto& l : links) slot.push_back(std::move(l));
  return rep;
}

Result<TlsAttachReport> TlsProbe::attach_process(uint32_t pid) {
  const std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  if (is_go_executable(exe)) return attach_go(pid, exe);
  auto binaries = uprobe_candidate_binaries(pid);
  if (binaries.empty()) return Error("process " + std::to_string(pid) + " is gone or has no mapped binaries");
  Symbolizer& sym = session_.symbolizer();
  auto ssl = find_defining_binary(sym, pid, binaries, "SSL_do_handshake");
  if (!ssl)
    return Error("no OpenSSL in process " + std::to_string(pid) + " (" + process_comm(pid) +
                     "): SSL_do_handshake is defined in none of its " + std::to_string(binaries.size()) +
                     " mapped binaries (" + describe_binaries(binaries) + ")",
                 "tickprobe tls needs libssl.so.3 mapped, or OpenSSL linked statically with its symbols; a "
                 "process that loads libssl later (dlopen) must be traced after it does");
  std::string path = ssl->path;
  auto lookup = [&](const std::string& name) { return sym.find_symbol_address(path, name); };
  auto layout = find_openssl_layout(path, lookup);
  if (!layout) return Error(layout.error().message, layout.error().hint);
  auto load = read_elf_load_info(path);
  if (!load) return Error("cannot read " + ssl->binary + " as an ELF file");

  TlsAttachReport rep;
  rep.library = ssl->binary;
  rep.found_by = layout->found_by;
  rep.notes = layout->notes;
  std::vector<BpfLink> links;
  auto attach_at = [&](bpf_program* prog, const std::string& bin_path, const ElfLoadInfo& info, uint64_t vaddr,
                       bool ret, const std::string& what) -> Status {
    auto off = vaddr_to_file_offset(info, vaddr);
    if (!off) return Error("cannot map " + what + " to a file offset in " + bin_path);
    if (loaded_for_uprobe_multi(prog)) {
      BpfLink l;
      if (int err = attach_uprobe_multi(prog, pid, bin_path, *off, 0, ret, &l))
        return Error::from_errno(std::string("cannot attach a ") + (ret ? "uretprobe" : "uprobe") + " to " + what +
                                     " in " + bin_path,
                                 err, uprobe_attach_hint(err));
      links.push_back(std::move(l));
      return {};
    }
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = ret);
    bpf_link* l = bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), bin_path.c_str(), *off, &uo);
    if (!l) {
      int err = errno;
      return Error::from_errno(std::string("cannot attach a ") + (ret ? "uretprobe" : "uprobe") + " to " + what +
                                   " in " + bin_path,
                               err, uprobe_attach_hint(err));
    }
    links.emplace_back(l);
    return {};
  };
  // The handshake function: state_machine(s, server) when both entry points
  // are the known tail calls into it, else each one.
  if (layout->state_machine) {
    for (bool ret : {false, true})
      if (auto st = attach_at(ret ? skel_->progs.tls_handshake_exit : skel_->progs.tls_machine_enter, path, *load,
                              layout->state_machine, ret, "the handshake state machine");
          !st)
        return st.error();
    rep.attached.push_back("handshake state machine (entry, return) in " + ssl->binary);
  } else {
    for (auto [prog, vaddr, what] : {std::tuple{skel_->progs.tls_accept_enter, layout->statem_accept, "ossl_statem_accept"},
                                     std::tuple{skel_->progs.tls_connect_enter, layout->statem_connect, "ossl_statem_connect"}}) {
      if (auto st = attach_at(prog, path, *load, vaddr, false, what); !st) return st.error();
      if (auto st = attach_at(skel_->progs.tls_handshake_exit, path, *load, vaddr, true, what); !st) return st.error();
      rep.attached.push_back(std::string(what) + " (entry, return) in " + ssl->binary);
    }
  }
  struct Named {
    const char* symbol;
    bpf_program* prog;
    bool required;
  };
  for (const Named& n : {Named{"SSL_free", skel_->progs.tls_free_enter, true},
                         Named{"SSL_set0_rbio", skel_->progs.tls_set_rbio_enter, false}}) {
    auto v = sym.find_symbol_address(path, n.symbol);
    if (!v) {
      if (n.required) return Error(std::string(n.symbol) + " not found in " + ssl->binary);
      rep.notes.push_back(std::string(n.symbol) + " not found: peers are unknown");
      continue;
    }
    if (auto st = attach_at(n.prog, path, *load, *v, false, n.symbol); !st) return st.error();
    rep.attached.push_back(std::string(n.symbol) + " in " + ssl->binary);
  }
  // BIO_set_fd lives in libcrypto (or the same static binary).
  if (auto bio = find_defining_binary(sym, pid, binaries, "BIO_int_ctrl")) {
    auto bio_load = bio->path == path ? load : read_elf_load_info(bio->path);
    if (bio_load) {
      if (auto st = attach_at(skel_->progs.tls_bio_ctrl_enter, bio->path, *bio_load, bio->vaddr, false, "BIO_int_ctrl");
          !st)
        return st.error();
      rep.attached.push_back("BIO_int_ctrl in " + bio->binary);
    }
  } else {
    rep.notes.push_back("BIO_int_ctrl not found: peers are unknown");
  }

  tls_proc layout_val{layout->statem_state_off, layout->hand_state_off};
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.procs), &pid, &layout_val, BPF_ANY))
    return Error::from_errno("cannot configure the tls probes for process " + std::to_string(pid), errno);
  auto& slot = links_[pid];
  slot.clear();
  for (auto& l : links) slot.push_back(std::move(l));
  return rep;
}

Status TlsProbe::attach(uint32_t pid) {
  auto r = attach_process(pid);
  if (!r) return r.error();
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->exited.erase(pid);  // a re-exec keeps its pid
  return {};
}

void TlsProbe::detach(uint32_t pid) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->exited[pid] = std::chrono::steady_clock::now();
  }
  if (auto it = links_.find(pid); it != links_.end()) {
    std::vector<BpfLink> links = std::move(it->second);
    links_.erase(it);
    destroy_links_concurrently(links);
  }
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.procs), &pid);
  int fd = bpf_map__fd(skel_->maps.conns);
  std::vector<tls_conn_key> gone;
  for_each_map_entry<tls_conn_key, tls_conn>(fd, [&](const tls_conn_key& k, const tls_conn&) {
    if (k.tgid == pid) gone.push_back(k);
  });
  for (const auto& k : gone) bpf_map_delete_elem(fd, &k);
}

void TlsProbe::evict_stale() {
  uint64_t now = monotonic_ns();
  if (now - last_sweep_ns_ < 10'000'000'000ull) return;
  last_sweep_ns_ = now;
  uint64_t timeout = static_cast<uint64_t>(opts_.inflight_timeout_s * 1e9);
  int fd = bpf_map__fd(skel_->maps.conns);
  std::vector<tls_conn_key> stale;
  for_each_map_entry<tls_conn_key, tls_conn>(fd, [&](const tls_conn_key& k, const tls_conn& c) {
    uint64_t last = std::max(c.last_ns, c.start_ns);
    if (c.start_ns && now > last && now - last > timeout) stale.push_back(k);
  });
  for (const auto& k : stale)
    if (bpf_map_delete_elem(fd, &k) == 0) evicted_++;
}

void TlsProbe::drain() {
  evict_stale();
  state_->expire(session_.options().retention.forget_exited_after_s);
  if (opts_.frequency == 0) return;
  SlotFlip flip = flip_count_slot(&skel_->bss->active_slot, skel_->bss->slot_writers);
  if (!flip.waited_out) drain_wait_timeouts_++;
  int fd = bpf_map__fd(flip.drained_slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  const int64_t period = cpu_shape().period;
  drain_hash_map<tls_sample_key, uint64_t>(
      fd,
      [&](const tls_sample_key& k, uint64_t v) {
        samples_.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm),
                                           side_name(k.side)),
                     {static_cast<int64_t>(v), static_cast<int64_t>(v) * period});
      },
      opts_.max_counts);
}

ProfileShape TlsProbe::cpu_shape() const {
  ProfileShape s;
  s.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  s.period_type = {"cpu", "nanoseconds"};
  s.period = opts_.frequency ? 1000000000LL / opts_.frequency : 0;
  s.label_key = "side";
  s.include_kernel = opts_.kernel_stacks;
  return s;
}

std::string TlsProbe::sample_event() const {
  if (!opts_.frequency) return "";
  return event_name_ + " at " + std::to_string(opts_.frequency) + " Hz";
}

Counters TlsProbe::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_ERR_EVICTED] += evicted_;
  c[TP_ERR_DRAIN_WAIT] += drain_wait_timeouts_;
  return c;
}

TlsSnapshot TlsProbe::snapshot(uint32_t pid) const {
  TlsSnapshot s;
  std::lock_guard<std::mutex> lock(state_->mu);
  std::map<std::pair<std::string, std::string>, TlsOutcome> merged;
  for (const auto& [key, o] : state_->outcomes) {
    if (pid && std::get<0>(key) != pid) continue;
    TlsOutcome& m = merged[{o.side, o.result}];
    m.side = o.side;
    m.result = o.result;
    m.count += o.count;
    m.calls += o.calls;
    m.cpu_ns += o.cpu_ns;
    m.latency.merge(o.latency);
    m.cpu.merge(o.cpu);
  }
  for (auto& [_, o] : merged) s.outcomes.push_back(std::move(o));
  for (const auto& h : state_->worst)
    if (!pid || h.pid == pid) s.worst.push_back(h);
  s.events = state_->events;
  return s;
}

void TlsProbe::metrics(MetricsSnapshot& out) const {
  MetricFamily total = metric_family("tickprobe_tls_handshakes_total",
                                     "TLS handshakes finished, by side and result (completed, failed, abandoned)",
                                     MetricType::kCounter);
  MetricFamily duration = metric_family(
      "tickprobe_tls_handshake_duration_seconds",
      "TLS handshake latency end to end: first handshake call to the call that ends it, across WANT_READ/WANT_WRITE "
      "retries",
      MetricType::kHistogram);
  MetricFamily cpu = metric_family("tickprobe_tls_handshake_cpu_seconds_total",
                                   "On-CPU time inside TLS handshake calls, by side.", MetricType::kCounter);
  std::map<std::pair<uint32_t, std::string>, double> cpu_by_side;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    for (const auto& [key, o] : state_->outcomes) {
      uint32_t pid = std::get<0>(key);
      MetricLabels labels{{"pid", std::to_string(pid)}, {"side", o.side}, {"result", o.result}};
      add_sample(total, labels, static_cast<double>(o.count));
      MetricSample h;
      h.labels = labels;
      h.histogram = to_prometheus(o.latency);
      duration.samples.push_back(std::move(h));
      cpu_by_side[{pid, o.side}] += static_cast<double>(o.cpu_ns) / 1e9;
    }
  }
  for (const auto& [key, v] : cpu_by_side) add_sample(cpu, {{"pid", std::to_string(key.first)}, {"side", key.second}}, v);
  // comm is added outside the state lock (the session has its own).
  for (auto* f : {&total, &duration, &cpu})
    for (auto& smp : f->samples) smp.labels["comm"] = session_.process_name(static_cast<uint32_t>(std::stoul(smp.labels["pid"])));
  out.push_back(std::move(total));
  out.push_back(std::move(duration));
  out.push_back(std::move(cpu));
}

FamilySpec tls_family_spec() {
  FamilySpec spec;
  spec.name = "tls";
  spec.summary = "OpenSSL 3 handshakes: latency end to end, on-CPU time, outcome, peer; handshake CPU profile";
  spec.agent_default_on = true;  // measured: 0.10% of tickgame's CPU at 200 bots, half TLS (docs/overhead.md)
  spec.setting_keys = {"max_inflight", "frequency", "keep_worst"};
  spec.create = [](Session& s, const FamilySettings& st) -> Result<std::unique_ptr<Family>> {
    TlsOptions o;
    auto inflight = st.get_u64("max_inflight", o.max_inflight, 16, 1u << 22);
    if (!inflight) return inflight.error();
    auto freq = st.get_u64("frequency", 0, 0, 10000);  // the agent samples no handshake CPU unless asked
    if (!freq) return freq.error();
    auto worst = st.get_u64("keep_worst", o.keep_worst, 0, 4096);
    if (!worst) return worst.error();
    o.max_inflight = static_cast<uint32_t>(*inflight);
    o.frequency = static_cast<uint32_t>(*freq);
    o.keep_worst = static_cast<size_t>(*worst);
    auto p = TlsProbe::create(s, o);
    if (!p) return p.error();
    return std::unique_ptr<Family>(p.take());
  };
  return spec;
}

}  // namespace tickprobe
