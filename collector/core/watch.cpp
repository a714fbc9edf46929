#include "core/watch.h"

#include <time.h>

#include <chrono>
#include <thread>

namespace tickprobe {

double run_watch_loop(const WatchLoop& w) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto interval = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(w.interval_s));
  auto next = start + interval;
  auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
  for (;;) {
    if (w.duration_s > 0 && elapsed() >= w.duration_s) break;
    if (w.stop && w.stop->load()) break;
    if (w.gone && w.gone()) break;
    // Never sleep past the deadline or the next tick.
    auto until = next;
    if (w.duration_s > 0) until = std::min(until, start + std::chrono::duration_cast<clock::duration>(
                                                               std::chrono::duration<double>(w.duration_s)));
    auto wait = std::max(clock::duration::zero(), until - clock::now());
    if (w.poll) {
      int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count());
      w.poll(std::max(0, std::min(wait_ms, 100)));
    } else {
      // One nanosleep, not sleep_for: a signal (Ctrl-C sets stop) cuts it
      // short. To the nanosecond: a wait rounded down to whole ms wakes just
      // before the tick and spins.
      wait = std::min(wait, std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(w.max_sleep_s)));
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      nanosleep(&ts, nullptr);
    }
    if (clock::now() >= next) {
      if (w.tick) w.tick(elapsed());
      next += interval;
      if (next < clock::now()) next = clock::now() + interval;  // a slow tick: do not burst
    }
  }
  return elapsed();
}

}  // namespace tickprobe
