// Typed self-accounting counters. The table of every counter (id, name,
// kind, help) is bpf/include/counters.def; this is its C++ face.
#pragma once

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "bpf/include/unwind.h"

struct bpf_map;

namespace tickprobe {

enum class CounterKind { kDrop, kWork };

struct CounterInfo {
  uint32_t id;        // enum tp_counter
  const char* name;   // e.g. "stacks_full"
  CounterKind kind;
  const char* help;
};

// Every row of counters.def, in enum order.
std::span<const CounterInfo> counter_table();
const CounterInfo& counter_info(uint32_t id);

// One value per counter of the table.
class Counters {
 public:
  uint64_t& operator[](tp_counter id) { return v_[id]; }
  uint64_t operator[](tp_counter id) const { return v_[id]; }
  uint64_t get(uint32_t id) const { return id < v_.size() ? v_[id] : 0; }
  // Adds the per-CPU sums of a family's BPF `errors` array (may be null);
  // defined in collector/core/bpf_counters.cpp.
  void add_bpf(const bpf_map* errors_map);
  // Adds values[i] to counter i.
  void add_values(const std::vector<uint64_t>& values);
  Counters& operator+=(const Counters& o);
  // Dropped events in all (the DROP rows).
  uint64_t drops() const;
  // name -> value for reports: the non-zero counters, plus every drop
  // counter (zeros too) when include_zeros, so "0 dropped" is explicit.
  std::map<std::string, uint64_t> to_map(bool include_zeros = false) const;

 private:
  std::array<uint64_t, TP_COUNTER_MAX> v_{};
};

}  // namespace tickprobe
