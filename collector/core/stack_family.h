// Shared plumbing of the stack-profile families (profile, offcpu): each
// drain's entries fan out to subscribers (a one-shot recording, an agent
// capture), and per-process totals are kept for /metrics, with exited
// processes retained for a bounded time and number of exits.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "core/retention.h"
#include "model/stack_aggregate.h"

namespace tickprobe {

class StackSubscribers {
 public:
  void subscribe(StackAggregate* agg) {
    std::lock_guard<std::mutex> lock(mu_);
    subs_.push_back(agg);
  }
  void unsubscribe(StackAggregate* agg) {
    std::lock_guard<std::mutex> lock(mu_);
    subs_.erase(std::remove(subs_.begin(), subs_.end(), agg), subs_.end());
  }
  void fan_out(const StackAggregate& drained) {
    std::lock_guard<std::mutex> lock(mu_);
    for (StackAggregate* s : subs_)
      for (const auto& [k, v] : drained.entries()) s->add(k, v);
  }

 private:
  std::mutex mu_;
  std::vector<StackAggregate*> subs_;
};

// Folds a forgotten process's values into the all-process total.
inline void accumulate_into(double& total, double v) { total += v; }
template <typename K, typename V>
void accumulate_into(std::map<K, V>& total, const std::map<K, V>& v) {
  for (const auto& [k, x] : v) accumulate_into(total[k], x);
}
// Element-wise maximum: floating-point sums taken in a different order
// (an entry moved from exited to forgotten) may differ in the last bit.
inline void max_into(double& a, double b) { a = a < b ? b : a; }
template <typename K, typename V>
void max_into(std::map<K, V>& a, const std::map<K, V>& b) {
  for (const auto& [k, x] : b) max_into(a[k], x);
}

// Cumulative per-process values. An exited process's last values stay
// visible for `forget_exited_after_s` (and at most `max_exited` exited
// processes are kept); then they are dropped from the per-process view and
// folded into forgotten(), so all() (live + exited + forgotten) never
// decreases. Time is passed in so tests need no sleeps; callers use
// steady_clock.
template <typename T>
class TargetTotals {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TargetTotals(RetentionOptions retention = {}) : retention_(retention) {}
  void set_retention(RetentionOptions retention) { retention_ = retention; }
  const RetentionOptions& retention() const { return retention_; }

  // The value to add to. A late drain of an exited process adds to its
  // exited entry (it does not come back to life: its retention clock runs).
  T& at(uint32_t pid) {
    if (auto it = exited_index(pid); it != exited_.end()) return it->value;
    return live_[pid];
  }
  // The process is traced (again): a re-exec keeps its pid and its totals.
  void attached(uint32_t pid) {
    if (auto it = exited_index(pid); it != exited_.end()) {
      live_[pid] = std::move(it->value);
      exited_.erase(it);
    }
  }
  // Live entries of processes that are no longer traced (a detach that was
  // missed, values drained for a pid after it went away) start to expire.
  template <typename Set>
  void exited_unless_in(const Set& traced, Clock::time_point now = Clock::now()) {
    std::vector<uint32_t> gone;
    for (const auto& [pid, v] : live_)
      if (!traced.count(pid)) gone.push_back(pid);
    for (uint32_t pid : gone) exited(pid, now);
  }
  void exited(uint32_t pid, Clock::time_point now = Clock::now()) {
    auto it = live_.find(pid);
    if (it == live_.end()) return;
    exited_.push_back(Exited{pid, now, std::move(it->second)});
    live_.erase(it);
    while (exited_.size() > retention_.max_exited) forget_front();
  }
  // Drops exited processes older than the retention time.
  void expire(Clock::time_point now = Clock::now()) {
    auto keep = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(retention_.forget_exited_after_s));
    while (!exited_.empty() && now - exited_.front().at >= keep) forget_front();
  }
  // fn(pid, value, alive)
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [pid, v] : live_) fn(pid, v, true);
    for (const auto& e : exited_) fn(e.pid, e.value, false);
  }
  // Values of processes no longer shown per process.
  const T& forgotten() const { return forgotten_; }
  // Every process ever seen, forgotten ones included: monotonic.
  T all() const {
    T total = forgotten_;
    for_each([&](uint32_t, const T& v, bool) { accumulate_into(total, v); });
    max_into(all_high_water_, total);
    return all_high_water_;
  }
  size_t live_count() const { return live_.size(); }
  size_t exited_count() const { return exited_.size(); }
  uint64_t forgotten_count() const { return forgotten_count_; }

 private:
  struct Exited {
    uint32_t pid;
    Clock::time_point at;
    T value;
  };
  typename std::deque<Exited>::iterator exited_index(uint32_t pid) {
    return std::find_if(exited_.begin(), exited_.end(), [pid](const Exited& e) { return e.pid == pid; });
  }
  void forget_front() {
    accumulate_into(forgotten_, exited_.front().value);
    exited_.pop_front();
    forgotten_count_++;
  }
  RetentionOptions retention_;
  std::map<uint32_t, T> live_;
  std::deque<Exited> exited_;
  T forgotten_{};
  mutable T all_high_water_{};
  uint64_t forgotten_count_ = 0;
};

}  // namespace tickprobe
