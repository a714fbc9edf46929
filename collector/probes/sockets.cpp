#include "probes/sockets.h"

#include <linux/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <cstring>
#include <set>
#include <vector>

#include "core/uprobe_multi.h"
#include "bpf/include/sockets.h"
#include "core/clock.h"
#include "core/count_slots.h"
#include "core/map_read.h"
#include "core/log.h"
#include "core/session.h"
#include "targets/target_spec.h"
#include "sockets.skel.h"

namespace tickprobe {

Result<SocketsOptions> SocketsOptions::from_settings(const FamilySettings& s) {
  SocketsOptions o;
  auto counts = s.get_u64("max_counts", o.max_counts, 64, 1u << 20);
  if (!counts) return counts.error();
  auto threads = s.get_u64("max_threads", o.max_threads, 64, 1u << 20);
  if (!threads) return threads.error();
  auto conns = s.get_u64("max_conns", o.max_conns, 64, 1u << 20);
  if (!conns) return conns.error();
  auto gap = s.get_u64("tcp_probe_gap_us", o.tcp_probe_gap_us, 0, 60'000'000);
  if (!gap) return gap.error();
  auto user = s.get_u64("max_user_conns", o.max_user_conns, 16, 1u << 20);
  if (!user) return user.error();
  auto stack_min = s.get_u64("stack_min_block_us", o.stack_min_block_us, 0, 60'000'000);
  if (!stack_min) return stack_min.error();
  o.stack_min_block_us = *stack_min;
  o.max_counts = static_cast<uint32_t>(*counts);
  o.max_threads = static_cast<uint32_t>(*threads);
  o.max_conns = static_cast<uint32_t>(*conns);
  o.tcp_probe_gap_us = *gap;
  o.max_user_conns = *user;
  return o;
}

Result<std::unique_ptr<SocketsProbe>> SocketsProbe::create(Session& session, const SocketsOptions& opts) {
  std::unique_ptr<SocketsProbe> p(new SocketsProbe(session, opts));
  auto skel = load_skeleton(session, "sockets", TP_SKELETON_OPS(sockets), [&](sockets_bpf* s) -> Status {
    s->rodata->tcp_probe_gap_ns = opts.tcp_probe_gap_us * 1000;
    s->rodata->stack_min_block_ns = opts.stack_min_block_us * 1000;
    bpf_map__set_max_entries(s->maps.counts_0, opts.max_counts);
    bpf_map__set_max_entries(s->maps.counts_1, opts.max_counts);
    bpf_map__set_max_entries(s->maps.inflight, opts.max_threads);
    bpf_map__set_max_entries(s->maps.conns, opts.max_conns);
    return {};
  });
  if (!skel) return skel.error();
  p->skel_ = skel.take();
  // Everything is attached: from here on a call is measured iff it enters
  // and returns while `enabled` is set.
  p->window_start_ns_ = monotonic_ns();
  p->skel_->bss->enabled = 1;
  return p;
}

SocketsProbe::~SocketsProbe() = default;

// Drain protocol: the shared count-slot handshake (core/count_slots.h):
// flip, wait until no program still writes the old slot, read and delete
// it. finish() closes a one-shot window: it clears `enabled` (exits after
// that fold nothing), then drains both slots the same way.
void SocketsProbe::drain_slot(uint32_t slot) {
  int fd = bpf_map__fd(slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  drain_hash_map<sock_agg_key, sock_agg_value>(
      fd,
      [&](const sock_agg_key& k, const sock_agg_value& v) {
        table_.add_calls(k, v);
        if (v.blocked_ns) {
          StackAggKey key;
          key.tgid = k.tgid;
          key.tid = k.tid;
          key.user_stack = k.user_stack;
          key.label = std::string(sock_op_name(k.op)) + " " +
                      format_endpoint(k.tuple.family, k.tuple.daddr, k.tuple.dport);
          blocked_.add(key, {static_cast<int64_t>(v.blocked_ns), static_cast<int64_t>(v.blocked_calls)});
        }
      },
      opts_.max_counts);
}

void SocketsProbe::drain_tables() {
  // Connections: snapshot facts; closed ones are folded and removed (the
  // kernel keeps the per-process totals, so nothing is lost by deleting).
  std::vector<uint64_t> closed;
  for_each_map_entry<uint64_t, sock_conn>(bpf_map__fd(skel_->maps.conns), [&](const uint64_t& sk, const sock_conn& c) {
    table_.update_tcp(sk, c);
    if (c.flags & SOCK_CONN_CLOSED) closed.push_back(sk);
  });
  int conns_fd = bpf_map__fd(skel_->maps.conns);
  for (uint64_t sk : closed) {
    // Re-check: the address may have been reused by a new connection since.
    sock_conn c{};
    if (bpf_map_lookup_elem(conns_fd, &sk, &c) == 0 && (c.flags & SOCK_CONN_CLOSED)) {
      table_.update_tcp(sk, c);
      bpf_map_delete_elem(conns_fd, &sk);
      closed_folded_++;
    }
  }
  for_each_map_entry<uint32_t, sock_proc_totals>(
      bpf_map__fd(skel_->maps.totals),
      [&](const uint32_t& tgid, const sock_proc_totals& t) { table_.set_totals(tgid, t); });
  for_each_map_entry<sock_hist_key, tp_hist>(
      bpf_map__fd(skel_->maps.hists),
      [&](const sock_hist_key& k, const tp_hist& h) { table_.set_hist(k.tgid, k.op, LatencyHistogram::from_bpf(h)); });
}

void SocketsProbe::drain() {
  std::lock_guard<std::mutex> lock(mu_);
  table_.begin_interval();
  if (!finished_) {
    SlotFlip flip = flip_count_slot(&skel_->bss->active_slot, skel_->bss->slot_writers);
    if (!flip.waited_out) drain_wait_timeouts_++;
    drain_slot(flip.drained_slot);
  }
  drain_tables();
}

void SocketsProbe::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  skel_->bss->enabled = 0;
  window_end_ns_ = monotonic_ns();
  table_.begin_interval();
  for (int i = 0; i < 2; i++) {
    SlotFlip flip = flip_count_slot(&skel_->bss->active_slot, skel_->bss->slot_writers);
    if (!flip.waited_out) drain_wait_timeouts_++;
    drain_slot(flip.drained_slot);
  }
  drain_tables();
  finished_ = true;
}

Counters SocketsProbe::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_ERR_EVICTED] += table_.evicted();
  c[TP_ERR_COUNTS_FULL] += blocked_.dropped();
  c[TP_ERR_DRAIN_WAIT] += drain_wait_timeouts_;
  return c;
}

SocketsReport SocketsProbe::report(uint32_t pid, size_t top) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto namer = [this](uint32_t tgid, uint64_t hash) {
    std::vector<std::string> out;
    const StackFrames* st = session_.stacks().get(hash);
    if (!st) return out;
    for (const Frame& f : session_.symbolizer().symbolize_user(tgid, st->ips, /*leaf_is_exact_ip=*/true))
      out.push_back(f.display_name());
    if (st->flags & TP_STACK_TRUNCATED) out.push_back("[truncated]");
    return out;
  };
  uint64_t now = window_end_ns_ ? window_end_ns_ : monotonic_ns();
  SocketsReport r = table_.report(pid, top, namer, now);
  r.comm = session_.process_name(pid);
  r.window_start_ns = window_start_ns_;
  r.window_end_ns = now;
  r.duration_s = static_cast<double>(now - window_start_ns_) / 1e9;
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_ERR_EVICTED] += table_.evicted();
  c[TP_ERR_COUNTS_FULL] += blocked_.dropped();
  for (const auto& [name, v] : c.to_map()) r.counters.emplace_back(name, v);
  return r;
}

Profile SocketsProbe::blocked_profile() const {
  std::lock_guard<std::mutex> lock(mu_);
  ProfileShape shape;
  shape.sample_types = {{"socket_blocked", "nanoseconds"}, {"blocked_calls", "count"}};
  shape.period_type = {"socket_blocked", "nanoseconds"};
  shape.period = 1;
  shape.label_key = "socket";
  shape.include_kernel = false;
  Profile p = build_profile(blocked_, session_, shape);
  for (Sample& s : p.samples) {
    auto it = s.labels.find("socket");
    if (it == s.labels.end()) continue;
    Frame root;
    root.function = it->second;  // "send 127.0.0.1:5000": the flame graph's first split is by peer
    s.frames.push_back(root);
  }
  uint64_t end = window_end_ns_ ? window_end_ns_ : monotonic_ns();
  p.duration_nanos = static_cast<int64_t>(end - window_start_ns_);
  p.comments.push_back("off-CPU time inside socket syscalls, by user stack; root frame: op and peer");
  return p;
}

std::optional<SocketBlockedPeer> SocketsProbe::top_blocked_peer(uint32_t tgid, uint32_t tid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_.interval_top_peer(tgid, tid);
}

uint64_t SocketsProbe::socket_calls(uint32_t tgid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_.calls_of(tgid);
}

void SocketsProbe::metrics(MetricsSnapshot& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto blocked = metric_family("tickprobe_socket_blocked_seconds",
                               "Off-CPU time of socket syscalls that blocked, per call, by operation.",
                               MetricType::kHistogram);
  auto calls = metric_family("tickprobe_socket_calls_total", "Socket syscalls measured, by operation.",
                             MetricType::kCounter);
  auto backpressure = metric_family(
      "tickprobe_socket_backpressure_events_total",
      "Send-side backpressure: EAGAIN/EWOULDBLOCK returns and partial writes of send, sendmsg, write, writev.",
      MetricType::kCounter);
  auto retrans = metric_family("tickprobe_tcp_retransmits_total", "TCP retransmits on the targets' connections.",
                               MetricType::kCounter);
  auto conns = metric_family("tickprobe_tcp_connections_total",
                             "TCP connections of the targets opened (connect/accept), closed, and reset (sent or "
                             "received).",
                             MetricType::kCounter);
  auto peers = metric_family("tickprobe_socket_top_peer_blocked_seconds",
                             "Socket-blocked time since attach of the 5 peers each process blocked on longest (capped top-K).",
                             MetricType::kGauge);
  auto labels_of = [&](uint32_t tgid) {
    return MetricLabels{{"pid", std::to_string(tgid)}, {"comm", session_.process_name(tgid)}};
  };
  for (const auto& [key, h] : table_.hists()) {
    MetricSample s;
    s.labels = labels_of(key.first);
    s.labels["op"] = sock_op_name(key.second);
    s.histogram = HistogramData::with_bounds(latency_bucket_bounds_seconds());
    const auto& bounds = s.histogram.upper_bounds;
    double prev = 0;
    for (size_t i = 0; i < bounds.size(); i++) {
      double below = h.count_below(bounds[i] * 1e9);
      s.histogram.bucket_counts[i] = static_cast<uint64_t>(below - prev + 0.5);
      prev = below;
    }
    double total = static_cast<double>(h.count());
    s.histogram.bucket_counts[bounds.size()] = total > prev ? static_cast<uint64_t>(total - prev + 0.5) : 0;
    s.histogram.sum = static_cast<double>(h.sum()) / 1e9;
    blocked.samples.push_back(std::move(s));
  }
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> bp;  // tgid -> (eagain, partial)
  for (const auto& [key, st] : table_.op_totals()) {
    MetricLabels l = labels_of(key.first);
    l["op"] = st.op;
    add_sample(calls, l, static_cast<double>(st.calls));
    if (SOCK_OP_IS_SEND(key.second)) {
      bp[key.first].first += st.eagain;
      bp[key.first].second += st.partial;
    }
  }
  for (const auto& [tgid, v] : bp) {
    MetricLabels l = labels_of(tgid);
    l["kind"] = "eagain";
    add_sample(backpressure, l, static_cast<double>(v.first));
    l["kind"] = "partial_write";
    add_sample(backpressure, l, static_cast<double>(v.second));
  }
  // Every process with socket activity gets its TCP series, zeros included.
  std::set<uint32_t> tgids;
  for (const auto& [key, st] : table_.op_totals()) tgids.insert(key.first);
  for (const auto& [tgid, t] : table_.kernel_totals()) tgids.insert(tgid);
  for (uint32_t tgid : tgids) {
    auto kt = table_.kernel_totals().find(tgid);
    sock_proc_totals t = kt != table_.kernel_totals().end() ? kt->second : sock_proc_totals{};
    MetricLabels l = labels_of(tgid);
    add_sample(retrans, l, static_cast<double>(t.retransmits));
    l["event"] = "opened";
    add_sample(conns, l, static_cast<double>(t.opened));
    l["event"] = "closed";
    add_sample(conns, l, static_cast<double>(t.closed));
    l["event"] = "reset";
    add_sample(conns, l, static_cast<double>(t.resets_sent + t.resets_received));
  }
  for (uint32_t tgid : tgids) {
    SocketsReport r = table_.report(tgid, 5, nullptr, monotonic_ns());
    for (const auto& c : r.by_blocked) {
      MetricLabels l = labels_of(tgid);
      l["peer"] = c.peer;
      add_sample(peers, l, static_cast<double>(c.blocked_ns) / 1e9);
    }
  }
  for (auto* f : {&blocked, &calls, &backpressure, &retrans, &conns, &peers})
    if (!f->samples.empty()) out.push_back(std::move(*f));
}

FamilySpec sockets_family_spec() {
  FamilySpec spec;
  spec.name = "sockets";
  spec.summary = "time blocked in socket syscalls by peer and stack, send backpressure, TCP connection facts";
  spec.agent_default_on = false;  // a tracepoint hit per read/write system-wide: opt-in (docs/overhead.md)
  spec.setting_keys = {"max_counts", "max_threads", "max_conns", "tcp_probe_gap_us", "max_user_conns", "stack_min_block_us"};
  spec.create = [](Session& session, const FamilySettings& settings) -> Result<std::unique_ptr<Family>> {
    auto opts = SocketsOptions::from_settings(settings);
    if (!opts) return opts.error();
    auto p = SocketsProbe::create(session, *opts);
    if (!p) return p.error();
    return std::unique_ptr<Family>(p.take());
  };
  return spec;
}

Result<SocketsRecording> record_sockets(const SocketsRecordOptions& o) {
  if (o.pid == 0) return Error("usage: no target given", "pass --pid PID");
  if (process_comm(o.pid).empty())
    return Error("process " + std::to_string(o.pid) + " does not exist", "is the process still running? check the pid");
  auto session = Session::create(o.session, {o.pid});
  if (!session) return session.error();
  Session& s = **session;
  if (auto st = s.add_target(o.pid); !st) return st.error();
  auto probe = SocketsProbe::create(s, o.sockets);
  if (!probe) return probe.error();
  SocketsProbe& p = **probe;

  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto interval = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.interval_s));
  auto next = start + interval;
  bool gone = false;
  for (;;) {
    double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    if ((o.duration_s > 0 && elapsed >= o.duration_s) || (o.stop && o.stop->load())) break;
    if (process_comm(o.pid).empty()) {
      gone = true;
      break;
    }
    auto wake = std::min(next, o.duration_s > 0 ? start + std::chrono::duration_cast<clock::duration>(
                                                              std::chrono::duration<double>(o.duration_s))
                                                 : next);
    std::this_thread::sleep_until(std::min(wake, clock::now() + std::chrono::milliseconds(50)));
    if (clock::now() >= next) {
      p.drain();
      s.refresh_targets();
      s.stacks().prune_if_needed();
      if (o.on_progress) {
        SocketsReport r = p.report(o.pid, 1);
        char line[160];
        std::snprintf(line, sizeof line, "%llu socket calls  %.3fs blocked  %llu EAGAIN  %llu partial  %llu connections",
                      static_cast<unsigned long long>(r.totals.calls), static_cast<double>(r.totals.blocked_ns) / 1e9,
                      static_cast<unsigned long long>(r.totals.send_eagain),
                      static_cast<unsigned long long>(r.totals.partial_writes),
                      static_cast<unsigned long long>(r.totals.connections_seen));
        o.on_progress(elapsed, o.duration_s, line);
      }
      next += interval;
    }
  }
  p.finish();
  SocketsRecording rec;
  rec.report = p.report(o.pid, o.top);
  rec.blocked_profile = p.blocked_profile();
  if (gone) rec.report.warnings.push_back("process " + std::to_string(o.pid) + " exited during the measurement");
  if (rec.report.totals.calls == 0)
    rec.report.warnings.push_back("saw 0 socket calls from pid " + std::to_string(o.pid) +
                                  " (is it idle, or does it use syscalls not covered: sendmmsg, recvmmsg, io_uring?)");
  return rec;
}

// Shutdown: the skeleton's tracepoint links from several threads.
void SocketsProbe::release_links() {
  if (skel_) detach_skeleton_concurrently(skel_->skeleton);
}

}  // namespace tickprobe
