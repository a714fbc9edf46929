// Aggregation model for stack profiles: values summed per (thread, user
// stack, kernel stack, extra label). Families drain their in-kernel count
// maps into it; build_profile() symbolizes it into a Profile for exporters.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
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
  bool operator==(const StackAggKey& o) const {
    return tgid == o.tgid && tid == o.tid && user_stack == o.user_stack && kernel_stack == o.kernel_stack &&
           thread == o.thread && label == o.label;
  }
};

// The stack ids are content hashes already: mixing them with the thread is
// enough (the names follow the thread; equal keys compare them too).
struct StackAggKeyHash {
  size_t operator()(const StackAggKey& k) const {
    uint64_t h = (static_cast<uint64_t>(k.tgid) << 32 | k.tid) * 0x9e3779b97f4a7c15ULL;
    h ^= k.user_stack + 0x632be59bd9b4e019ULL + (h << 6) + (h >> 2);
    h ^= k.kernel_stack + 0x85ebca6bULL + (h << 6) + (h >> 2);
    if (!k.label.empty()) h ^= static_cast<unsigned char>(k.label[0]) * 0xc2b2ae35ULL;
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

class StackAggregate {
 public:
  // num_values: values per key (e.g. 1 for CPU samples; 2 for off-CPU ns + count).
  explicit StackAggregate(size_t num_values, size_t max_keys = 1u << 18)
      : num_values_(num_values), max_keys_(max_keys) {}

  using Entries = std::unordered_map<StackAggKey, std::vector<int64_t>, StackAggKeyHash>;

  // A hash table, not a tree: a drain adds every entry of an in-kernel
  // count map (issue 12: >= 2M entries/s on one core, tests/bench). The
  // order of entries() is unspecified; sorted_entries() gives key order.
  void add(const StackAggKey& key, const std::vector<int64_t>& values);
  // The drains' form, agg.add(StackAggKey::from_bpf(...), {a, b}): no
  // temporary vector, and the key is moved in.
  void add(StackAggKey&& key, std::initializer_list<int64_t> values);
  void clear() { entries_.clear(); }
  void reserve(size_t keys) { entries_.reserve(keys); }
  const Entries& entries() const { return entries_; }
  std::vector<const Entries::value_type*> sorted_entries() const;
  size_t num_values() const { return num_values_; }
  uint64_t dropped() const { return dropped_; }
  std::vector<int64_t> totals() const;
  // Sum of value `index` per tgid.
  std::map<uint32_t, int64_t> totals_by_tgid(size_t index) const;

 private:
  size_t num_values_;
  size_t max_keys_;
  uint64_t dropped_ = 0;
  Entries entries_;
  template <typename Key>
  void add_values(Key&& key, const int64_t* values, size_t n);
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
