#include "runtime/tls_hunt.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "core/log.h"
#include "core/session.h"
#include "targets/target_spec.h"

namespace tickprobe {

namespace {

// The OpenSSL calls that run a handshake on behalf of their caller.
bool is_handshake_entry_point(const std::string& fn) {
  static const std::set<std::string> kEntry = {"SSL_do_handshake", "SSL_accept", "SSL_connect", "SSL_read",
                                               "SSL_read_ex",      "SSL_write",  "SSL_write_ex", "SSL_peek",
                                               "SSL_peek_ex",      "SSL_shutdown"};
  return kEntry.count(fn) > 0;
}

}  // namespace

void summarize_tls_outcomes(const TlsSnapshot& snap, double elapsed_s, size_t top, TlsReport& r) {
  uint64_t completed_calls = 0, completed_cpu = 0, completed_wall = 0;
  for (const auto& o : snap.outcomes) {
    r.total += o.count;
    if (o.result == "completed") {
      r.completed += o.count;
      r.latency.merge(o.latency);
      r.cpu.merge(o.cpu);
      completed_calls += o.calls;
      completed_cpu += o.cpu_ns;
      completed_wall += o.latency.sum();
    } else if (o.result == "failed") {
      r.failed += o.count;
    } else {
      r.abandoned += o.count;
    }
  }
  r.outcomes = snap.outcomes;
  if (elapsed_s > 0) {
    r.rate_per_s = static_cast<double>(r.total) / elapsed_s;
    r.completed_per_s = static_cast<double>(r.completed) / elapsed_s;
  }
  if (r.completed) r.mean_calls = static_cast<double>(completed_calls) / static_cast<double>(r.completed);
  if (completed_wall) r.cpu_share_of_latency = static_cast<double>(completed_cpu) / static_cast<double>(completed_wall);
  r.worst = snap.worst;
  if (r.worst.size() > top) r.worst.resize(top);
}

void summarize_tls_profile(const Profile& profile, size_t top, TlsReport& r) {
  auto base = [](const std::string& p) { return p.substr(p.rfind('/') + 1); };
  const std::string lib = base(r.library);
  // A statically linked OpenSSL shares its module with the application:
  // there only the named entry points tell the two apart.
  const bool shared_lib = lib.rfind("libssl", 0) == 0;
  auto in_openssl = [&](const Frame& f) {
    if (f.kernel) return false;
    if (!shared_lib) return is_handshake_entry_point(f.function);
    std::string m = base(f.module);
    return m == lib || m.rfind("libcrypto", 0) == 0;
  };
  std::map<std::vector<std::string>, int64_t> by_stack;
  int64_t total = 0, openssl = 0, caller = 0;
  for (const auto& s : profile.samples) {
    int64_t n = s.values.empty() ? 0 : s.values[0];
    total += n;
    std::vector<std::string> frames;
    frames.reserve(s.frames.size());
    int last_openssl = -1;
    bool ssl_frame = false;
    for (size_t i = 0; i < s.frames.size(); i++) {
      const Frame& f = s.frames[i];
      frames.push_back(f.display_name());
      if (in_openssl(f)) last_openssl = static_cast<int>(i);
      if (!f.kernel && (shared_lib ? base(f.module) == lib : is_handshake_entry_point(f.function))) ssl_frame = true;
    }
    if (ssl_frame) openssl += n;
    if (last_openssl >= 0 && static_cast<size_t>(last_openssl) + 1 < s.frames.size()) caller += n;
    by_stack[frames] += n;
  }
  r.cpu_samples = total;
  if (total > 0) {
    r.share_reaching_openssl = static_cast<double>(openssl) / static_cast<double>(total);
    r.share_reaching_caller = static_cast<double>(caller) / static_cast<double>(total);
  }
  std::vector<TlsStackRow> rows;
  for (auto& [frames, n] : by_stack)
    rows.push_back({frames, n, total ? static_cast<double>(n) / static_cast<double>(total) : 0});
  std::sort(rows.begin(), rows.end(), [](const TlsStackRow& a, const TlsStackRow& b) { return a.samples > b.samples; });
  if (rows.size() > top) rows.resize(top);
  r.top_stacks = std::move(rows);
}

Result<TlsHuntResult> run_tls_hunt(const TlsHuntOptions& o) {
  const HuntCommon& c = o.common;
  if (c.pid == 0) return Error("no target given", "pass --pid PID");
  if (process_comm(c.pid).empty())
    return Error("process " + std::to_string(c.pid) + " does not exist", "is the process still running?");
  auto session = Session::create(c.session, {c.pid});
  if (!session) return session.error();
  Session& s = **session;
  if (auto st = s.add_target(c.pid); !st) return st.error();
  auto probe = TlsProbe::create(s, o.tls);
  if (!probe) return probe.error();
  TlsProbe& tls = **probe;
  auto rep = tls.attach_process(c.pid);
  if (!rep) return rep.error();

  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto interval = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(c.interval_s));
  auto next = start + interval;
  double elapsed = 0;
  for (;;) {
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
    bool done = (c.duration_s > 0 && elapsed >= c.duration_s) || (c.stop && c.stop->load());
    bool gone = process_comm(c.pid).empty();
    if (done || gone) {
      if (gone) TP_LOG_WARN("process %u exited; reporting what was recorded", c.pid);
      break;
    }
    s.ringbufs().poll(50);
    if (clock::now() >= next) {
      tls.drain();
      s.refresh_targets();
      s.stacks().prune_if_needed();
      if (c.on_progress) {
        TlsSnapshot snap = tls.snapshot(c.pid);
        uint64_t done_n = 0, ok = 0;
        for (const auto& oc : snap.outcomes) {
          done_n += oc.count;
          if (oc.result == "completed") ok += oc.count;
        }
        char buf[160];
        std::snprintf(buf, sizeof(buf), "handshakes %llu (completed %llu)  CPU samples %lld",
                      static_cast<unsigned long long>(done_n), static_cast<unsigned long long>(ok),
                      static_cast<long long>(tls.cpu_samples().totals()[0]));
        c.on_progress({elapsed, c.duration_s, buf});
      }
      next += interval;
    }
  }
  while (s.ringbufs().poll(0) > 0) {
  }
  tls.drain();

  TlsHuntResult out;
  TlsReport& r = out.report;
  r.pid = c.pid;
  r.comm = s.process_name(c.pid);
  r.duration_s = elapsed;
  r.library = rep->library;
  r.found_by = rep->found_by;
  r.attached = rep->attached;
  r.notes = rep->notes;
  summarize_tls_outcomes(tls.snapshot(c.pid), elapsed, o.top, r);
  out.cpu_profile = build_profile(tls.cpu_samples(), s, tls.cpu_shape());
  out.cpu_profile.duration_nanos = static_cast<int64_t>(elapsed * 1e9);
  out.cpu_profile.comments.push_back("handshake CPU: samples of threads inside OpenSSL handshake calls");
  if (!tls.sample_event().empty()) out.cpu_profile.comments.push_back("event: " + tls.sample_event());
  r.sample_event = tls.sample_event();
  summarize_tls_profile(out.cpu_profile, o.top, r);
  r.counters = tls.counters().to_map();
  for (const auto& [k, v] : r.counters) out.cpu_profile.counters[k] = v;
  if (r.counters.count("tracking_map_full"))
    r.notes.push_back(std::to_string(r.counters["tracking_map_full"]) +
                      " handshakes were not tracked: the in-flight map was full");
  if (r.counters.count("ringbuf_full"))
    r.notes.push_back(std::to_string(r.counters["ringbuf_full"]) + " finished handshakes were lost: ring buffer full");
  return out;
}

}  // namespace tickprobe
