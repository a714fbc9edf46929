// Plain data of the TLS handshake family: one finished handshake, the
// aggregates the family keeps, and the report of `tickprobe tls` (filled by
// collector/runtime/tls_hunt.cpp, rendered by exporters/tls_report.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/histogram.h"

namespace tickprobe {

// One finished handshake (any outcome).
struct TlsHandshake {
  uint32_t pid = 0, tid = 0;
  uint64_t ssl = 0;                       // SSL * in the target
  std::string side;                       // "server", "client", "unknown"
  std::string result;                     // "completed", "failed", "abandoned"
  uint64_t start_ns = 0, end_ns = 0;      // CLOCK_MONOTONIC
  uint64_t cpu_ns = 0;                    // on-CPU time inside handshake calls
  uint32_t calls = 0;                     // handshake calls (WANT_READ/WANT_WRITE retries included)
  int32_t fd = -1;
  int32_t last_ret = 0;                   // return value of the last call
  std::string peer;                       // "127.0.0.1:40112", "[::1]:40112", "" unknown
  uint64_t latency_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
};

// Handshakes of one (side, result).
struct TlsOutcome {
  std::string side, result;
  uint64_t count = 0;
  uint64_t calls = 0;
  uint64_t cpu_ns = 0;
  LatencyHistogram latency;  // wall, first call to the last
  LatencyHistogram cpu;      // on-CPU per handshake
};

struct TlsStackRow {
  std::vector<std::string> frames;  // leaf first
  int64_t samples = 0;
  double share = 0;  // of all handshake-CPU samples
};

struct TlsReport {
  uint32_t pid = 0;
  std::string comm;
  double duration_s = 0;
  std::string library;                // the binary that defines OpenSSL in the target
  std::string found_by;               // how the handshake function was found
  std::vector<std::string> attached;  // probe points
  std::vector<std::string> notes;

  uint64_t total = 0, completed = 0, failed = 0, abandoned = 0;
  double rate_per_s = 0;            // finished handshakes per second, any outcome
  double completed_per_s = 0;
  std::vector<TlsOutcome> outcomes;  // by side, result
  LatencyHistogram latency;          // completed handshakes: wall latency
  LatencyHistogram cpu;              // completed handshakes: on-CPU time
  double mean_calls = 0;             // calls per completed handshake
  double cpu_share_of_latency = 0;   // sum cpu / sum latency, completed

  std::vector<TlsHandshake> worst;  // slowest first

  std::string sample_event;      // "cpu-clock at 999 Hz"
  int64_t cpu_samples = 0;       // samples inside handshake calls
  // Of the samples: the stack was unwound up into OpenSSL's handshake code
  // (a frame in the OpenSSL binary: libssl), and on past it into the code
  // that called OpenSSL (the application's frames beyond the last OpenSSL
  // frame). SSL_do_handshake itself is rarely a frame: it tail-calls the
  // handshake function.
  double share_reaching_openssl = 0;
  double share_reaching_caller = 0;
  std::vector<TlsStackRow> top_stacks;

  std::map<std::string, uint64_t> counters;  // self-accounting, non-zero
};

}  // namespace tickprobe
