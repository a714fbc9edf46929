// Metric data as plain values: what families contribute to /metrics and
// what exporters render (exporters/prometheus_exposition.h converts it for
// the Prometheus C++ client). No I/O here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tickprobe {

enum class MetricType { kCounter, kGauge, kHistogram, kUntyped };

const char* metric_type_name(MetricType type);  // "counter", ...

// Label name => value; std::map keeps the rendered order stable.
using MetricLabels = std::map<std::string, std::string>;

// Non-cumulative bucket counts: bucket_counts[i] counts observations v with
// upper_bounds[i-1] < v <= upper_bounds[i]; the last entry (one more than
// upper_bounds) counts v > upper_bounds.back() (the "+Inf" overflow).
// upper_bounds are finite and strictly increasing.
struct HistogramData {
  std::vector<double> upper_bounds;
  std::vector<uint64_t> bucket_counts;  // size upper_bounds.size() + 1
  double sum = 0;

  uint64_t count() const;
  // Records one observation (linear search; fine for ~30 buckets).
  void observe(double value);
  // Empty histogram with these bounds.
  static HistogramData with_bounds(std::vector<double> upper_bounds);
};

struct MetricSample {
  MetricLabels labels;
  double value = 0;          // counter, gauge, untyped
  HistogramData histogram;   // histogram
};

struct MetricFamily {
  std::string name;  // full name, e.g. "tickprobe_lost_samples_total"
  std::string help;
  MetricType type = MetricType::kUntyped;
  std::vector<MetricSample> samples;
};

using MetricsSnapshot = std::vector<MetricFamily>;

// Small builders for families' metric code.
MetricFamily metric_family(std::string name, std::string help, MetricType type);
void add_sample(MetricFamily& f, MetricLabels labels, double value);

}  // namespace tickprobe
