// Aggregation model for stack profiles: values summed per (thread, user
// stack, kernel stack, extra label). Families drain their in-kernel count
// maps into it; build_profile() symbolizes it into a Profile for exporters.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "model/profile.h"

namespace tickprobe {

class Session;

struct StackAggKey {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint64_t user_stack = 0;
  uint64_t kernel_stack = 0;
  std::string thread;  // thread name (comm)
  std::string label;   // family-specific (off-CPU state), "" if none

  // From a BPF count-map key: comm is a fixed, possibly unterminated array.
  static StackAggKey from_bpf(uint32_t tgid, uint32_t tid, uint64_t user, uint64_t kernel, const char* comm,
                              size_t comm_size, std::string label = {});

  bool operator<(const StackAggKey& o) const {
    return std::tie(tgid, tid, user_stack, kernel_stack, thread, label) <
           std::tie(o.tgid, o.tid, o.user_stack, o.kernel_stack, o.thread, o.label);
  }
};

class StackAggregate {
 public:
  // num_values: values per key (e.g. 1 for CPU samples; 2 for off-CPU ns + count).
  explicit StackAggregate(size_t num_values, size_t max_keys = 1u << 18)
      : num_values_(num_values), max_keys_(max_keys) {}

  void add(const StackAggKey& key, const std::vector<int64_t>& values);
  void clear() { entries_.clear(); }
  const std::map<StackAggKey, std::vector<int64_t>>& entries() const { return entries_; }
  size_t num_values() const { return num_values_; }
  uint64_t dropped() const { return dropped_; }
  std::vector<int64_t> totals() const;
  // Sum of value `index` per tgid.
  std::map<uint32_t, int64_t> totals_by_tgid(size_t index) const;

 private:
  size_t num_values_;
  size_t max_keys_;
  uint64_t dropped_ = 0;
  std::map<StackAggKey, std::vector<int64_t>> entries_;
};

struct ProfileShape {
  std::vector<ValueType> sample_types;
  ValueType period_type;
  int64_t period = 0;
  std::string label_key;  // name for StackAggKey::label in sample labels (e.g. "state")
  bool include_kernel = true;
  bool include_user = true;
};

// Resolves stacks and symbolizes every entry. Samples whose stacks are both
// missing still appear, with a single "[missing stack]" frame, and are
// counted in Profile::counters["missing_stacks"].
Profile build_profile(const StackAggregate& agg, Session& session, const ProfileShape& shape);

}  // namespace tickprobe
