// The sockets report: plain data built by the sockets family
// (collector/probes/sockets.*, from model/sockets_table.*) and rendered by
// exporters/sockets_report.* (text table, JSON). Times are nanoseconds
// unless named otherwise; endpoints are already formatted
// ("127.0.0.1:5000", "[::1]:443", "unix").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tickprobe {

// One operation (syscall) on one connection, or over a whole process.
struct SocketOpStats {
  std::string op;              // send, sendmsg, write, writev, recv, recvmsg, read, readv, connect, accept
  uint64_t calls = 0;          // syscalls measured
  uint64_t blocked_calls = 0;  // calls that went off-CPU at least once
  uint64_t blocked_ns = 0;     // off-CPU time inside the calls
  uint64_t max_blocked_ns = 0;
  uint64_t wall_ns = 0;        // enter -> exit time of the calls
  uint64_t bytes = 0;          // sum of positive returns (send/recv ops)
  uint64_t errors = 0;         // failures other than EAGAIN
  uint64_t eagain = 0;         // EAGAIN / EWOULDBLOCK returns
  uint64_t partial = 0;        // send side: returned less than asked
};

// A user stack that blocked on a connection, symbolized leaf first.
struct SocketBlockingStack {
  std::string op;
  uint32_t tid = 0;
  uint64_t blocked_ns = 0;
  uint64_t blocked_calls = 0;
  std::vector<std::string> frames;  // leaf first; empty when unknown
};

// What the TCP tracepoints and the socket itself said about a connection
// (the latest look: a syscall on it, or a sampled tcp_probe).
struct TcpFacts {
  std::string state;          // "ESTABLISHED", "CLOSE_WAIT", ...
  uint32_t srtt_us = 0;
  uint32_t snd_cwnd = 0;      // segments
  uint32_t snd_wnd = 0;       // the peer's advertised window (bytes)
  uint32_t rcv_wnd = 0;       // ours
  uint32_t send_queue = 0;    // written by the process, not yet acked (bytes)
  uint32_t unacked = 0;       // sent, not yet acked (bytes)
  uint32_t max_send_queue = 0;
  uint64_t retransmits = 0;
  uint64_t resets_sent = 0;
  uint64_t resets_received = 0;
  uint64_t zero_window_events = 0;  // the peer's window went from open to 0
  uint64_t rcvqueue_full = 0;       // our receive queue dropped a packet
  uint64_t probes = 0;              // tcp_probe samples taken
  bool opened_seen = false;         // connect/accept seen (else already open at first sight)
  bool closed = false;
  double lifetime_s = 0;            // from open (or first sight) to close (or now)
};

struct SocketConnReport {
  uint32_t pid = 0;
  std::string protocol;  // tcp, udp, unix, ...
  std::string local;
  std::string peer;
  int32_t fd = -1;       // the fd of the latest call
  std::vector<uint32_t> tids;
  std::string top_op;    // op with the most blocked time (else the most calls)
  uint64_t calls = 0;
  uint64_t blocked_ns = 0;
  uint64_t max_blocked_ns = 0;
  uint64_t blocked_calls = 0;
  uint64_t wall_ns = 0;
  uint64_t send_eagain = 0;     // backpressure: EAGAIN on a send-side op
  uint64_t partial_writes = 0;  // backpressure: short send-side returns
  uint64_t recv_eagain = 0;     // nothing to read (normal on an epoll server)
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t errors = 0;
  std::vector<SocketOpStats> ops;             // by blocked time, then calls
  std::vector<SocketBlockingStack> stacks;    // top blocking stacks
  std::optional<TcpFacts> tcp;                // TCP connections the table tracked
};

// Log-linear histogram of blocked time per op (non-empty buckets only).
struct SocketLatencyBucket {
  uint64_t lower_ns = 0;
  uint64_t upper_ns = 0;
  uint64_t count = 0;
};

struct SocketOpSummary {
  SocketOpStats stats;
  double p50_ns = 0, p90_ns = 0, p99_ns = 0;  // of blocked calls' blocked time
  std::vector<SocketLatencyBucket> histogram;
};

struct SocketProcessTotals {
  uint64_t calls = 0;
  uint64_t blocked_calls = 0;
  uint64_t blocked_ns = 0;
  uint64_t send_eagain = 0;
  uint64_t partial_writes = 0;
  uint64_t connections_seen = 0;     // distinct sockets the calls were on
  uint64_t tcp_opened = 0;           // connect reached ESTABLISHED, or accept returned
  uint64_t tcp_closed = 0;
  uint64_t tcp_resets_sent = 0;
  uint64_t tcp_resets_received = 0;
  uint64_t tcp_retransmits = 0;
  uint64_t tcp_zero_window_events = 0;
  uint64_t listen_full_at_accept = 0;  // accept found its listen queue at the limit
  uint64_t untracked_connections = 0;  // no room in the kernel's connection table
  uint64_t evicted_connections = 0;    // folded out of the user-space table (stats kept in the totals)
};

struct SocketsReport {
  uint32_t pid = 0;
  std::string comm;
  double duration_s = 0;
  // CLOCK_MONOTONIC bounds of the measurement: calls that entered after
  // window_start_ns and returned before window_end_ns are all counted.
  uint64_t window_start_ns = 0;
  uint64_t window_end_ns = 0;
  SocketProcessTotals totals;
  std::vector<SocketOpSummary> ops;                    // by blocked time
  std::vector<SocketConnReport> by_blocked;            // top N by blocked time (> 0)
  std::vector<SocketConnReport> by_backpressure;       // top N by send EAGAIN + partial writes (> 0)
  std::vector<std::pair<std::string, uint64_t>> counters;  // non-zero self-accounting
  std::vector<std::string> warnings;
};

}  // namespace tickprobe
