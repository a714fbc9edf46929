// Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), written
// by hand because prometheus-cpp is not packaged.
//
// Model: a MetricsSnapshot is a list of MetricFamily values (passive data).
// A MetricsRegistry is the thread-safe place where long-lived values are kept
// (set/add) and where collectors register callbacks that fill a snapshot at
// scrape time (pull model: BPF maps are read when Prometheus asks).
//
// Naming rules (checked by the registry, followed by promtool):
//   - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
//     [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__"; "le" is reserved
//     for histograms;
//   - counters end in "_total"; units are base units in the name
//     ("_seconds", "_bytes").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/metrics.h"

namespace tickprobe {



bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);
// Checks names, the counter "_total" suffix, reserved labels and histogram
// shapes; the first problem found is the error.
Status validate_family(const MetricFamily& family);

// Renders the snapshot. Families are sorted by name and samples by labels so
// output does not depend on registration order; families with the same name
// are merged (their types must agree; a mismatch keeps the first); families
// without samples are left out. Values: integers print without exponent,
// others as the shortest round-trip form; +Inf, -Inf, NaN spelled as
// Prometheus expects.
std::string render_prometheus_text(const MetricsSnapshot& snapshot);

// Formatting helpers, exposed for tests and for other text formats.
std::string format_prometheus_value(double value);
std::string escape_label_value(std::string_view value);  // \\ \" \n
std::string escape_help(std::string_view help);          // \\ \n

// Thread-safe store of metric values plus scrape-time collectors.
class MetricsRegistry {
 public:
  using Collector = std::function<void(MetricsSnapshot&)>;

  // Bounded: a family holds at most max_series_per_family label sets; new
  // ones beyond that are refused and counted in the self-accounting counter
  // tickprobe_metrics_dropped_series_total (always part of snapshot()).
  explicit MetricsRegistry(size_t max_series_per_family = 10000) : max_series_(max_series_per_family) {}

  // Each setter creates the family on first use. It fails (and records
  // nothing) if the name or labels are invalid, or if the name is already
  // registered with another type or help text.
  Status set_counter(const std::string& name, const std::string& help, const MetricLabels& labels, double value);
  Status add_counter(const std::string& name, const std::string& help, const MetricLabels& labels, double delta = 1);
  Status set_gauge(const std::string& name, const std::string& help, const MetricLabels& labels, double value);
  Status set_histogram(const std::string& name, const std::string& help, const MetricLabels& labels,
                       HistogramData histogram);
  // Observes into an existing histogram series, creating it with `bounds`
  // the first time.
  Status observe(const std::string& name, const std::string& help, const MetricLabels& labels,
                 const std::vector<double>& bounds, double value);

  // Called, in registration order and without the registry lock held, on
  // every snapshot(); collectors append families to the snapshot.
  void add_collector(Collector collector);

  // Stored families first, then whatever collectors add.
  MetricsSnapshot snapshot() const;
  std::string render() const { return render_prometheus_text(snapshot()); }

 private:
  Status upsert(const std::string& name, const std::string& help, MetricType type, const MetricLabels& labels,
                const std::function<void(MetricSample&)>& update);

  mutable std::mutex mutex_;
  size_t max_series_;
  uint64_t dropped_series_ = 0;
  std::map<std::string, MetricFamily> families_;
  std::vector<Collector> collectors_;
};

// Fixed log-scale bounds: first, first*2, first*4, ... up to the first bound
// >= last. log2_bucket_bounds(1e-6, 16) gives 1µs .. 16.777216s (25 bounds).
std::vector<double> log2_bucket_bounds(double first, double last);

// Converts a BPF log2 histogram (bcc's layout: slot 0 holds values 0 and 1,
// slot i >= 1 holds [2^i, 2^(i+1)), in some integer unit) into HistogramData
// over fixed `bounds` (seconds or bytes). unit_scale converts one raw unit to
// the bound unit (1e-9 for nanoseconds -> seconds, 1e-6 for µs). Each slot is
// counted in the first bound >= its exclusive upper edge 2^(i+1)*unit_scale,
// so every `le` stays a true upper bound; slots past the last bound land in
// +Inf only. The sum is exact_sum when known, otherwise estimated from slot
// midpoints (1.5 * 2^i, and 0.5 for slot 0).
HistogramData histogram_from_log2_slots(std::span<const uint64_t> slots, double unit_scale,
                                        const std::vector<double>& bounds,
                                        std::optional<double> exact_sum = std::nullopt);

}  // namespace tickprobe
