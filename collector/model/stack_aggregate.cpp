#include "model/stack_aggregate.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <unordered_map>

#include "core/session.h"
#include "bpf/include/unwind.h"

namespace tickprobe {

StackAggKey StackAggKey::from_bpf(uint32_t tgid, uint32_t tid, uint64_t user, uint64_t kernel, const char* comm,
                                  size_t comm_size, std::string label) {
  StackAggKey k;
  k.tgid = tgid;
  k.tid = tid;
  k.user_stack = user;
  k.kernel_stack = kernel;
  k.thread.assign(comm, strnlen(comm, comm_size));
  k.label = std::move(label);
  return k;
}

namespace {
constexpr size_t kInitialBuckets = 2048;
}  // namespace

template <typename Key>
void StackAggregate::add_values(Key&& key, const int64_t* values, size_t n) {
  // A drain adds thousands of keys to a fresh aggregate: start with room
  // for some instead of rehashing from one bucket up.
  if (entries_.bucket_count() < kInitialBuckets) entries_.reserve(std::min(max_keys_, kInitialBuckets));
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= max_keys_) {
      dropped_++;
      return;
    }
    it = entries_.emplace(std::forward<Key>(key), std::vector<int64_t>(num_values_, 0)).first;
  }
  int64_t* sums = it->second.data();
  for (size_t i = 0; i < num_values_ && i < n; i++) sums[i] += values[i];
}

void StackAggregate::add(const StackAggKey& key, const std::vector<int64_t>& values) {
  add_values(key, values.data(), values.size());
}

void StackAggregate::add(StackAggKey&& key, std::initializer_list<int64_t> values) {
  add_values(std::move(key), values.begin(), values.size());
}

std::vector<const StackAggregate::Entries::value_type*> StackAggregate::sorted_entries() const {
  std::vector<const Entries::value_type*> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(&e);
  std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  return out;
}

std::vector<int64_t> StackAggregate::totals() const {
  std::vector<int64_t> t(num_values_, 0);
  for (const auto& [k, v] : entries_)
    for (size_t i = 0; i < num_values_; i++) t[i] += v[i];
  return t;
}

std::map<uint32_t, int64_t> StackAggregate::totals_by_tgid(size_t index) const {
  std::map<uint32_t, int64_t> out;
  for (const auto& [k, v] : entries_) out[k.tgid] += v[index];
  return out;
}

Profile build_profile(const StackAggregate& agg, Session& session, const ProfileShape& shape) {
  Profile p;
  p.sample_types = shape.sample_types;
  p.period_type = shape.period_type;
  p.period = shape.period;
  uint64_t missing = 0, truncated = 0;

  // Symbolize each distinct (pid, stack) once.
  std::map<std::pair<uint32_t, uint64_t>, std::vector<Frame>> user_cache;
  std::unordered_map<uint64_t, std::vector<Frame>> kernel_cache;
  Symbolizer& sym = session.symbolizer();

  // Key order, so a profile's samples come out the same for the same data.
  for (const auto* entry : agg.sorted_entries()) {
    const StackAggKey& key = entry->first;
    const std::vector<int64_t>& values = entry->second;
    Sample s;
    s.values = values;
    s.pid = key.tgid;
    s.tid = key.tid;
    s.thread = key.thread;
    s.comm = session.process_name(key.tgid);
    if (!shape.label_key.empty() && !key.label.empty()) s.labels[shape.label_key] = key.label;

    if (shape.include_kernel && key.kernel_stack) {
      auto it = kernel_cache.find(key.kernel_stack);
      if (it == kernel_cache.end()) {
        std::vector<Frame> frames;
        if (const StackFrames* st = session.stacks().get(key.kernel_stack)) {
          frames = sym.symbolize_kernel(st->ips);
          // The innermost frames of a stack taken in a tracepoint are the
          // tracing machinery itself (bpf_prog_*, bpf_trace_run*): drop them.
          size_t skip = 0;
          while (skip + 1 < frames.size() && (frames[skip].function.starts_with("bpf_") ||
                                              frames[skip].function.starts_with("__bpf_trace") ||
                                              frames[skip].function.starts_with("__traceiter")))
            skip++;
          frames.erase(frames.begin(), frames.begin() + static_cast<long>(skip));
        }
        it = kernel_cache.emplace(key.kernel_stack, std::move(frames)).first;
      }
      s.frames.insert(s.frames.end(), it->second.begin(), it->second.end());
    }
    if (shape.include_user && key.user_stack) {
      auto ck = std::make_pair(key.tgid, key.user_stack);
      auto it = user_cache.find(ck);
      if (it == user_cache.end()) {
        std::vector<Frame> frames;
        if (const StackFrames* st = session.stacks().get(key.user_stack)) {
          frames = sym.symbolize_user(key.tgid, st->ips, /*leaf_is_exact_ip=*/true);
          if (st->flags & TP_STACK_TRUNCATED) {
            truncated++;
            Frame f;
            f.function = "[truncated]";
            frames.push_back(f);
          }
        }
        it = user_cache.emplace(ck, std::move(frames)).first;
      }
      s.frames.insert(s.frames.end(), it->second.begin(), it->second.end());
    }
    if (s.frames.empty()) {
      missing++;
      Frame f;
      f.function = "[missing stack]";
      s.frames.push_back(f);
    }
    p.samples.push_back(std::move(s));
  }
  // Mappings of every process with user frames: main executables first
  // (exporters/pprof.h), each with its file offset and build id.
  if (shape.include_user) {
    std::set<uint32_t> pids;
    for (const auto& [key, values] : agg.entries())
      if (key.user_stack) pids.insert(key.tgid);
    std::vector<ProfileMapping> main, rest;
    std::set<std::tuple<std::string, uint64_t, uint64_t>> seen;
    for (uint32_t pid : pids)
      for (auto& m : sym.process_mappings(pid)) {
        if (!seen.insert({m.path, m.start, m.limit}).second) continue;
        (m.main_executable ? main : rest).push_back(std::move(m));
      }
    p.mappings = std::move(main);
    p.mappings.insert(p.mappings.end(), rest.begin(), rest.end());
  }
  p.counters["missing_stacks"] = missing;
  p.counters["truncated_stacks"] = truncated;
  p.counters["aggregate_dropped"] = agg.dropped();
  return p;
}

}  // namespace tickprobe
