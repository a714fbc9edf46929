// TLS family (bpf/tls.bpf.c): OpenSSL 3 handshakes per SSL object - wall
// latency end to end across WANT_READ/WANT_WRITE retries, on-CPU time, calls,
// side, outcome and peer - and a CPU profile of handshake calls.
//
//   auto tls = TlsProbe::create(session, {});
//   tls->attach_process(pid);         // uprobes in the binary that defines OpenSSL
//   ... session.ringbufs().poll(ms); tls->drain(); ...
//   TlsSnapshot s = tls->snapshot();  // outcomes, worst handshakes
//   tls->cpu_samples();               // StackAggregate for build_profile()
//
// Metrics: tickprobe_tls_handshakes_total{side,result},
// tickprobe_tls_handshake_duration_seconds{side,result} (histogram),
// tickprobe_tls_handshake_cpu_seconds_total{side}.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/family.h"
#include "core/result.h"
#include "model/stack_aggregate.h"
#include "model/tls_report.h"

struct tls_bpf;
struct tls_event;

namespace tickprobe {

class Session;

struct TlsOptions {
  uint32_t max_inflight = 65536;   // SSL objects tracked at once (beyond: not tracked, counted)
  uint32_t frequency = 999;        // handshake-CPU samples per second per CPU; 0 = no profile
  bool kernel_stacks = true;
  bool force_cpu_clock = false;
  uint32_t max_counts = 16384;     // distinct (thread, stack) sample slots per drain interval
  size_t keep_worst = 32;          // slowest handshakes kept with their peer
  double inflight_timeout_s = 600; // a handshake idle this long is evicted (counted: evicted)
};

struct TlsAttachReport {
  std::string library;                // binary that defines SSL_do_handshake
  std::string found_by;
  std::vector<std::string> attached;  // "state_machine (handshake) in /usr/lib/.../libssl.so.3"
  std::vector<std::string> notes;
};

struct TlsSnapshot {
  std::vector<TlsOutcome> outcomes;  // sorted by side, result
  std::vector<TlsHandshake> worst;   // slowest first
  uint64_t events = 0;
};

class TlsProbe : public Family {
 public:
  static Result<std::unique_ptr<TlsProbe>> create(Session& session, const TlsOptions& opts);
  ~TlsProbe() override;
  TlsProbe(const TlsProbe&) = delete;
  TlsProbe& operator=(const TlsProbe&) = delete;

  const char* name() const override { return "tls"; }
  // Uprobes on OpenSSL in `pid` (a session target). Fails, naming where it
  // looked, when no mapped binary defines SSL_do_handshake.
  Result<TlsAttachReport> attach_process(uint32_t pid);
  // A Go program is probed in its own crypto/tls instead (attach_go).
  Status attach(uint32_t pid) override;
  void detach(uint32_t pid) override;
  void release_links() override;
  // Moves handshake-CPU samples into cpu_samples() and evicts stale
  // in-flight handshakes. Handshake events arrive through the session's
  // ring buffers (poll them).
  void drain() override;
  Counters counters() const override;
  void metrics(MetricsSnapshot& out) const override;

  TlsSnapshot snapshot(uint32_t pid = 0) const;
  const StackAggregate& cpu_samples() const { return samples_; }
  ProfileShape cpu_shape() const;
  std::string sample_event() const;  // "cpu-clock at 999 Hz", "" without a profile

  // For tests: the handshake record of one ring-buffer event.
  static TlsHandshake from_event(const ::tls_event& e);

 private:
  Result<TlsAttachReport> attach_go(uint32_t pid, const std::string& exe);
  struct State;  // aggregates, shared with the ring-buffer handler
  TlsProbe(Session& s, const TlsOptions& o);
  void evict_stale();
  Session& session_;
  TlsOptions opts_;
  SkeletonPtr<tls_bpf> skel_;
  std::shared_ptr<State> state_;
  std::vector<UniqueFd> perf_fds_;
  std::vector<BpfLink> global_links_;
  std::map<uint32_t, std::vector<BpfLink>> links_;
  StackAggregate samples_{2};
  std::string event_name_;
  uint64_t evicted_ = 0;
  uint64_t drain_wait_timeouts_ = 0;
  uint64_t last_sweep_ns_ = 0;
};

FamilySpec tls_family_spec();

}  // namespace tickprobe
