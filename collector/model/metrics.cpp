#include "model/metrics.h"

namespace tickprobe {

const char* metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
    case MetricType::kUntyped: return "untyped";
  }
  return "untyped";
}

uint64_t HistogramData::count() const {
  uint64_t n = 0;
  for (uint64_t c : bucket_counts) n += c;
  return n;
}

void HistogramData::observe(double value) {
  if (bucket_counts.size() != upper_bounds.size() + 1) bucket_counts.resize(upper_bounds.size() + 1, 0);
  size_t i = 0;
  while (i < upper_bounds.size() && value > upper_bounds[i]) ++i;
  ++bucket_counts[i];
  sum += value;
}

HistogramData HistogramData::with_bounds(std::vector<double> upper_bounds) {
  HistogramData h;
  h.bucket_counts.assign(upper_bounds.size() + 1, 0);
  h.upper_bounds = std::move(upper_bounds);
  return h;
}

MetricFamily metric_family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_sample(MetricFamily& f, MetricLabels labels, double value) {
  MetricSample s;
  s.labels = std::move(labels);
  s.value = value;
  f.samples.push_back(std::move(s));
}

}  // namespace tickprobe
