// The report of `tickprobe goroutines` (collector/runtime/go_goroutines.h
// makes it; exporters/goroutine_report.h renders it): plain data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/leak_detector.h"
#include "model/profile.h"

namespace tickprobe {

// One symbolized frame of a goroutine stack.
struct GoStackFrame {
  std::string function, file;
  uint32_t line = 0;
  uint64_t pc = 0;
  bool inlined = false;
};

// Goroutines of one creation site and start function.
struct GoroutineGroup {
  std::string start_function;  // function at startpc
  std::string created_by;      // "main.leakGoroutines (/src/main.go:168)"
  uint64_t startpc = 0, gopc = 0;
  int64_t count = 0;                      // in the last snapshot
  int64_t first_count = 0;                // in the first snapshot
  double oldest_s = 0;  // the longest any member has been seen (a lower bound of its age)
  std::map<std::string, int64_t> states;  // last snapshot: "chan receive" => 40
  std::vector<GoStackFrame> stack;        // the most common parked stack in the group
  std::string stack_state;                // its state
  LeakVerdict verdict;                    // growth of `count` over the hunt (per second)
};

struct GoroutineReport {
  pid_t pid = 0;
  std::string executable, go_version, layout_source, allgs_source;
  bool layout_verified = false;
  double elapsed_s = 0, interval_s = 0;
  size_t snapshots = 0;
  int64_t live = 0;         // last snapshot, user goroutines (NumGoroutine's count)
  int64_t live_system = 0;  // last snapshot, runtime goroutines
  uint64_t allglen = 0;
  double snapshot_ms_mean = 0, snapshot_ms_max = 0;
  std::map<std::string, uint64_t> counters;  // summed over snapshots
  std::vector<GoroutineGroup> groups;        // by count, descending (top)
  std::vector<GoroutineGroup> leaks;         // growing groups, by slope
  std::string dump;                          // the last snapshot, every goroutine, as debug=2 prints them
  // Where goroutines wait: each snapshot charges every waiting goroutine the
  // time since the previous snapshot, to (state, parked stack). Values:
  // wait_time (ns), samples (goroutine-snapshots).
  Profile waits;
  // The last snapshot as a goroutine profile (pprof "goroutine"/"count").
  Profile goroutine_profile;
};

}  // namespace tickprobe
