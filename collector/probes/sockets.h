// Sockets family (bpf/sockets.bpf.c): off-CPU time inside socket syscalls
// by connection, op and blocking stack; send-side backpressure (EAGAIN,
// partial writes) on non-blocking sockets; TCP facts per connection
// (queues, windows, retransmits, resets, state changes, lifetime).
//
// Cost: a tracepoint hit per target syscall of the covered kinds (read and
// write on non-sockets return after an fd-table lookup), a map lookup per
// sched_switch of any thread, a CFI unwind the first time a socket call
// blocks, and one hash lookup per tcp/sock tracepoint event system-wide
// (tcp_probe: one per incoming segment; facts re-read at most every
// tcp_probe_gap_us per connection).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/family.h"
#include "core/session.h"
#include "model/profile.h"
#include "model/sockets_report.h"
#include "model/sockets_table.h"
#include "model/stack_aggregate.h"

struct sockets_bpf;

namespace tickprobe {

class Session;

struct SocketsOptions {
  uint32_t max_counts = 8192;     // kernel aggregation entries per slot
  uint32_t max_threads = 16384;   // threads inside a socket call at once
  uint32_t max_conns = 8192;      // TCP connections tracked in the kernel
  uint64_t tcp_probe_gap_us = 1000;  // min gap between tcp_probe fact reads per connection
  size_t max_user_conns = 4096;   // connections kept in user space (beyond: folded, counted)
  uint64_t stack_min_block_us = 100;  // blocks at least this long get their user stack

  static Result<SocketsOptions> from_settings(const FamilySettings& s);
};

class SocketsProbe : public Family {
 public:
  // Loads and attaches every program; measurement starts when it returns
  // (window_start_ns()).
  static Result<std::unique_ptr<SocketsProbe>> create(Session& session, const SocketsOptions& opts);
  ~SocketsProbe() override;
  SocketsProbe(const SocketsProbe&) = delete;
  SocketsProbe& operator=(const SocketsProbe&) = delete;

  const char* name() const override { return "sockets"; }

  void release_links() override;
  // Folds the count slot made inactive one drain ago (see sockets.cpp for
  // why not the one just flipped), then the connection table, totals and
  // histograms.
  void drain() override;
  // End of a one-shot measurement: stops new calls from being measured,
  // waits out in-flight programs and drains both slots. Later drains are
  // no-ops for the counts.
  void finish();
  Counters counters() const override;
  // tickprobe_socket_blocked_seconds{pid,comm,op} (histogram),
  // tickprobe_socket_calls_total{pid,comm,op},
  // tickprobe_socket_backpressure_events_total{pid,comm,kind="eagain|partial_write"},
  // tickprobe_tcp_retransmits_total{pid,comm},
  // tickprobe_tcp_connections_total{pid,comm,event="opened|closed|reset"},
  // tickprobe_socket_top_peer_blocked_seconds{pid,comm,peer} (gauge) for the
  // top 5 peers by blocked time per process (capped: the only per-peer series).
  void metrics(MetricsSnapshot& out) const override;

  // The report of one process since attach.
  SocketsReport report(uint32_t pid, size_t top) const;
  // Socket-blocked time as a stack profile (values: blocked ns, blocked
  // calls); the root frame of each stack is "<op> <peer>".
  Profile blocked_profile() const;
  // Hitch attribution: the peer thread (tgid, tid) was blocked on longest
  // in the interval folded by the last drain() (which, by the delayed
  // drain, is the interval before the previous drain).
  std::optional<SocketBlockedPeer> top_blocked_peer(uint32_t tgid, uint32_t tid) const;
  uint64_t socket_calls(uint32_t tgid) const;

  // CLOCK_MONOTONIC bounds: calls entered after start and returned before
  // end (finish()) were measured.
  uint64_t window_start_ns() const { return window_start_ns_; }
  uint64_t window_end_ns() const { return window_end_ns_; }

 private:
  SocketsProbe(Session& s, const SocketsOptions& o) : session_(s), opts_(o), table_(o.max_user_conns) {}
  void drain_slot(uint32_t slot);
  void drain_tables();

  Session& session_;
  SocketsOptions opts_;
  SkeletonPtr<sockets_bpf> skel_;
  mutable std::mutex mu_;
  SocketTable table_;
  StackAggregate blocked_{2, 1u << 16};
  uint64_t window_start_ns_ = 0;
  uint64_t window_end_ns_ = 0;
  bool finished_ = false;
  uint64_t drain_wait_timeouts_ = 0;
  uint64_t closed_folded_ = 0;
};

FamilySpec sockets_family_spec();

// One-shot measurement behind `tickprobe sockets`: attach to one process,
// drain every interval (progress), finish at the deadline, on the stop flag
// or when the process exits, and return the report and the blocked profile.
struct SocketsRecordOptions {
  uint32_t pid = 0;
  double duration_s = 10;  // 0: until stopped
  double interval_s = 1;
  size_t top = 10;
  SocketsOptions sockets;
  SessionOptions session;
  std::function<void(double elapsed_s, double duration_s, const std::string& line)> on_progress;
  const std::atomic<bool>* stop = nullptr;
};

struct SocketsRecording {
  SocketsReport report;
  Profile blocked_profile;
};

Result<SocketsRecording> record_sockets(const SocketsRecordOptions& o);

}  // namespace tickprobe
