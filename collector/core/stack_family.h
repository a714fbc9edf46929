// Shared plumbing of the stack-profile families (profile, offcpu): each
// drain's entries fan out to subscribers (a one-shot recording, an agent
// capture), and per-process totals are kept for /metrics, with exited
// processes retained for a bounded number of exits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

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

// Cumulative per-process values; an exited process's last values stay
// visible until `max_exited` later exits push them out.
template <typename T>
class TargetTotals {
 public:
  explicit TargetTotals(size_t max_exited = 64) : max_exited_(max_exited) {}
  T& at(uint32_t pid) {
    if (auto it = exited_index(pid); it != exited_.end()) {
      live_[pid] = it->second;
      exited_.erase(it);
    }
    return live_[pid];
  }
  void exited(uint32_t pid) {
    auto it = live_.find(pid);
    if (it == live_.end()) return;
    exited_.emplace_back(pid, std::move(it->second));
    live_.erase(it);
    while (exited_.size() > max_exited_) exited_.pop_front();
  }
  // fn(pid, value, alive)
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [pid, v] : live_) fn(pid, v, true);
    for (const auto& [pid, v] : exited_) fn(pid, v, false);
  }

 private:
  typename std::deque<std::pair<uint32_t, T>>::iterator exited_index(uint32_t pid) {
    return std::find_if(exited_.begin(), exited_.end(), [pid](const auto& e) { return e.first == pid; });
  }
  size_t max_exited_;
  std::map<uint32_t, T> live_;
  std::deque<std::pair<uint32_t, T>> exited_;
};

}  // namespace tickprobe
