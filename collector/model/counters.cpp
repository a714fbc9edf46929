#include "model/counters.h"

namespace tickprobe {

namespace {
constexpr CounterKind DROP = CounterKind::kDrop;
constexpr CounterKind WORK = CounterKind::kWork;
constexpr CounterInfo kTable[] = {
#define TP_COUNTER(id, name, kind, help) {id, #name, kind, help},
#include "bpf/include/counters.def"
#undef TP_COUNTER
};
static_assert(sizeof(kTable) / sizeof(kTable[0]) == TP_COUNTER_MAX, "counters.def and enum tp_counter disagree");
constexpr bool ids_in_order() {
  for (uint32_t i = 0; i < TP_COUNTER_MAX; i++)
    if (kTable[i].id != i) return false;
  return true;
}
static_assert(ids_in_order(), "counters.def rows must be in enum order");
}  // namespace

std::span<const CounterInfo> counter_table() { return kTable; }

const CounterInfo& counter_info(uint32_t id) {
  static const CounterInfo kUnknown{TP_COUNTER_MAX, "unknown", CounterKind::kDrop, "unknown counter"};
  return id < TP_COUNTER_MAX ? kTable[id] : kUnknown;
}

void Counters::add_values(const std::vector<uint64_t>& values) {
  for (size_t i = 0; i < v_.size() && i < values.size(); i++) v_[i] += values[i];
}

Counters& Counters::operator+=(const Counters& o) {
  for (size_t i = 0; i < v_.size(); i++) v_[i] += o.v_[i];
  return *this;
}

uint64_t Counters::drops() const {
  uint64_t n = 0;
  for (const auto& c : kTable)
    if (c.kind == CounterKind::kDrop) n += v_[c.id];
  return n;
}

std::map<std::string, uint64_t> Counters::to_map(bool include_zeros) const {
  std::map<std::string, uint64_t> out;
  for (const auto& c : kTable)
    if (v_[c.id] || (include_zeros && c.kind == CounterKind::kDrop)) out[c.name] = v_[c.id];
  return out;
}

}  // namespace tickprobe
