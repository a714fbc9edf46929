// The one watch loop behind the one-shot recorder, the hunts and the agent:
// poll event sources in between, run `tick` every interval, stop at the
// deadline, when asked, or when the targets are gone.
#pragma once

#include <atomic>
#include <functional>

namespace tickprobe {

struct WatchLoop {
  double duration_s = 0;                 // 0: until stopped
  double interval_s = 1;                 // between ticks
  const std::atomic<bool>* stop = nullptr;
  std::function<bool()> gone;            // optional: true ends the loop (targets exited)
  std::function<void(int timeout_ms)> poll;  // optional: waits up to timeout_ms for events
  std::function<void(double elapsed_s)> tick;
  // Longest single sleep without poll. A signal that sets `stop` ends the
  // sleep early (nanosleep is never restarted after a handler), so a loop
  // whose `gone` only changes in `tick` can sleep up to the next tick and
  // wake once per interval instead of ten times (the one-shot recorder).
  double max_sleep_s = 0.1;
};

// Returns the seconds the loop ran.
double run_watch_loop(const WatchLoop& w);

}  // namespace tickprobe
