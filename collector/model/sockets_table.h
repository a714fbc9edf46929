// The sockets family's cumulative state in user space, fed with what the
// kernel aggregated (bpf/include/sockets.h) and turned into a
// SocketsReport. Pure logic (no BPF, no I/O): unit-tested on synthetic
// records.
//
// Connections are keyed by (tgid, struct sock address, endpoints): a sock
// freed and reused for another connection is another entry. The table is
// bounded; past `max_conns` the least interesting connection (closed ones
// first, then the least blocked) is folded into its process's totals and
// counted in evicted().
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bpf/include/sockets.h"
#include "model/histogram.h"
#include "model/sockets_report.h"

namespace tickprobe {

// "127.0.0.1:5000", "[::1]:5000", "*:5000" for an unset IPv4/IPv6 address,
// "unix" for AF_UNIX, "af<N>" otherwise.
std::string format_endpoint(uint16_t family, const uint8_t addr[16], uint16_t port);
const char* sock_op_name(uint32_t op);  // "send", ... ; "?" when out of range
const char* tcp_state_name(uint32_t state);  // "ESTABLISHED", ...
std::string sock_protocol_name(const sock_tuple& t);  // "tcp", "udp", "unix", ...

// The peer a thread was blocked on, for hitch attribution:
// "blocked in send to 127.0.0.1:53412 (fd 37) 31.0 ms".
struct SocketBlockedPeer {
  std::string op;
  std::string peer;
  std::string local;
  int32_t fd = -1;
  uint64_t blocked_ns = 0;
  uint64_t blocked_calls = 0;
  std::string describe() const;
};

class SocketTable {
 public:
  explicit SocketTable(size_t max_conns = 4096, size_t max_stacks_per_conn = 32)
      : max_conns_(max_conns), max_stacks_per_conn_(max_stacks_per_conn) {}

  // One drained count-map entry (a delta).
  void add_calls(const sock_agg_key& k, const sock_agg_value& v);
  // The latest kernel record of a tracked TCP connection (a snapshot).
  void update_tcp(uint64_t sk, const sock_conn& c);
  // Cumulative kernel values (snapshots, not deltas).
  void set_totals(uint32_t tgid, const sock_proc_totals& t) { totals_[tgid] = t; }
  void set_hist(uint32_t tgid, uint32_t op, const LatencyHistogram& h) { hists_[{tgid, op}] = h; }

  // Symbolizes a user stack (leaf first); may return {} for unknown.
  using StackNamer = std::function<std::vector<std::string>(uint32_t tgid, uint64_t stack)>;
  // The report of one process (its top `top` connections by blocked time
  // and by backpressure). now_ns (CLOCK_MONOTONIC) ends open lifetimes.
  SocketsReport report(uint32_t tgid, size_t top, const StackNamer& namer, uint64_t now_ns) const;

  // Per-thread top peer by blocked time among the entries of the last
  // begin_interval() .. now.
  void begin_interval() { interval_.clear(); }
  std::optional<SocketBlockedPeer> interval_top_peer(uint32_t tgid, uint32_t tid) const;

  // Cumulative per (tgid, op), summed over connections (evicted ones too).
  std::map<std::pair<uint32_t, uint32_t>, SocketOpStats> op_totals() const;
  const std::map<uint32_t, sock_proc_totals>& kernel_totals() const { return totals_; }
  const std::map<std::pair<uint32_t, uint32_t>, LatencyHistogram>& hists() const { return hists_; }

  size_t size() const { return conns_.size(); }
  uint64_t evicted() const { return evicted_; }
  uint64_t calls_of(uint32_t tgid) const;

 private:
  struct ConnId {
    uint32_t tgid = 0;
    uint64_t sk = 0;
    sock_tuple tuple{};
    bool operator<(const ConnId& o) const;
  };
  struct StackId {
    uint32_t op, tid;
    uint64_t stack;
    bool operator<(const StackId& o) const { return std::tie(op, tid, stack) < std::tie(o.op, o.tid, o.stack); }
  };
  struct StackAcc {
    uint64_t blocked_ns = 0, blocked_calls = 0;
  };
  struct Conn {
    std::map<uint32_t, SocketOpStats> ops;  // by enum sock_op
    std::map<StackId, StackAcc> stacks;
    std::map<uint32_t, bool> tids;
    int32_t fd = -1;
    uint64_t last_ns = 0;
    std::optional<sock_conn> tcp;
  };

  Conn& conn_for(const ConnId& id);
  void evict_one();
  static void add_op(SocketOpStats& s, const sock_agg_value& v);
  SocketConnReport conn_report(const ConnId& id, const Conn& c, const StackNamer& namer, uint64_t now_ns) const;

  size_t max_conns_;
  size_t max_stacks_per_conn_;
  std::map<ConnId, Conn> conns_;
  std::map<uint64_t, ConnId> by_sk_;  // latest connection seen at each sock address
  std::map<std::pair<uint32_t, uint32_t>, SocketOpStats> evicted_ops_;  // (tgid, op) of evicted connections
  std::map<uint32_t, uint64_t> evicted_conns_by_tgid_;
  std::map<uint32_t, sock_proc_totals> totals_;
  std::map<std::pair<uint32_t, uint32_t>, LatencyHistogram> hists_;
  std::map<std::pair<uint32_t, uint32_t>, std::map<std::string, SocketBlockedPeer>> interval_;
  uint64_t evicted_ = 0;
};

}  // namespace tickprobe
