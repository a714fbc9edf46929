#include "core/watch.h"

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
    int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count());
    wait_ms = std::max(0, std::min(wait_ms, 100));
    if (w.poll)
      w.poll(wait_ms);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    if (clock::now() >= next) {
      if (w.tick) w.tick(elapsed());
      next += interval;
      if (next < clock::now()) next = clock::now() + interval;  // a slow tick: do not burst
    }
  }
  return elapsed();
}

}  // namespace tickprobe
