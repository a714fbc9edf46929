#include "exporters/prometheus_exposition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include <prometheus/check_names.h>
#include <prometheus/client_metric.h>
#include <prometheus/text_serializer.h>

namespace tickprobe {
namespace {

prometheus::MetricType library_type(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return prometheus::MetricType::Counter;
    case MetricType::kGauge: return prometheus::MetricType::Gauge;
    case MetricType::kHistogram: return prometheus::MetricType::Histogram;
    case MetricType::kUntyped: return prometheus::MetricType::Untyped;
  }
  return prometheus::MetricType::Untyped;
}

// -0.0 would print as "-0".
double clean(double v) { return v == 0 ? 0.0 : v; }

prometheus::ClientMetric client_metric(const MetricSample& s, MetricType type) {
  prometheus::ClientMetric m;
  m.label.reserve(s.labels.size());
  for (const auto& [name, value] : s.labels) m.label.push_back({name, value});  // std::map: sorted by name
  switch (type) {
    case MetricType::kCounter: m.counter.value = clean(s.value); break;
    case MetricType::kGauge: m.gauge.value = clean(s.value); break;
    case MetricType::kUntyped: m.untyped.value = clean(s.value); break;
    case MetricType::kHistogram: {
      // The model's buckets are per interval; Prometheus wants running totals.
      const HistogramData& h = s.histogram;
      uint64_t cumulative = 0;
      m.histogram.bucket.reserve(h.upper_bounds.size() + 1);
      for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
        cumulative += h.bucket_counts[i];
        m.histogram.bucket.push_back({cumulative, h.upper_bounds[i]});
      }
      cumulative += h.bucket_counts.back();
      m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
      m.histogram.sample_count = cumulative;
      m.histogram.sample_sum = clean(h.sum);
      break;
    }
  }
  return m;
}

constexpr std::string_view kDroppedSeries = "tickprobe_metrics_dropped_series_total";

prometheus::MetricFamily dropped_series_family(uint64_t invalid_family, uint64_t duplicate_series,
                                               uint64_t series_limit) {
  prometheus::MetricFamily f;
  f.name = std::string(kDroppedSeries);
  f.help = "Series left out of scrapes, by reason (invalid_family: the family failed the name/type checks; "
           "duplicate_series: its labels repeated; series_limit: its family was full). Counted once per scrape.";
  f.type = prometheus::MetricType::Counter;
  for (auto [reason, n] : {std::pair{"duplicate_series", duplicate_series}, std::pair{"invalid_family", invalid_family},
                           std::pair{"series_limit", series_limit}}) {
    prometheus::ClientMetric m;
    m.label = {{"reason", reason}};
    m.counter.value = static_cast<double>(n);
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace

Status validate_family(const MetricFamily& family) {
  const std::string& name = family.name;
  if (!prometheus::CheckMetricName(name)) return Error("invalid metric name \"" + name + "\"");
  bool ends_total = name.size() > 6 && name.ends_with("_total");
  if (family.type == MetricType::kCounter && !ends_total) return Error("counter " + name + " must end in _total");
  if (family.type != MetricType::kCounter && ends_total)
    return Error("metric " + name + " ends in _total but is a " + metric_type_name(family.type));
  for (const MetricSample& sample : family.samples) {
    for (const auto& [label, value] : sample.labels) {
      if (!prometheus::CheckLabelName(label))
        return Error("metric " + name + " has invalid label name \"" + label + "\"");
      if (family.type == MetricType::kHistogram && label == "le")
        return Error("histogram " + name + " uses the reserved label \"le\"");
    }
    if (family.type != MetricType::kHistogram) continue;
    const HistogramData& h = sample.histogram;
    if (h.bucket_counts.size() != h.upper_bounds.size() + 1)
      return Error("histogram " + name + " has " + std::to_string(h.bucket_counts.size()) + " bucket counts for " +
                   std::to_string(h.upper_bounds.size()) + " bounds (want bounds + 1)");
    for (size_t i = 0; i < h.upper_bounds.size(); ++i)
      if (!std::isfinite(h.upper_bounds[i]) || (i > 0 && h.upper_bounds[i] <= h.upper_bounds[i - 1]))
        return Error("histogram " + name + " bounds must be finite and strictly increasing");
  }
  return {};
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::vector<prometheus::MetricFamily> to_prometheus_families(const MetricsSnapshot& snapshot,
                                                             size_t max_series_per_family, ExpositionDrops* drops) {
  ExpositionDrops unused;
  ExpositionDrops& d = drops ? *drops : unused;
  // Merge by name: a name may be contributed by more than one family.
  struct Merged {
    const MetricFamily* first;
    std::vector<const MetricSample*> samples;
  };
  std::map<std::string, Merged> merged;
  for (const MetricFamily& family : snapshot) {
    if (!validate_family(family)) {
      d.invalid_family += family.samples.size();
      continue;
    }
    auto [it, inserted] = merged.try_emplace(family.name, Merged{&family, {}});
    if (!inserted && it->second.first->type != family.type) {
      d.invalid_family += family.samples.size();
      continue;
    }
    for (const MetricSample& s : family.samples) it->second.samples.push_back(&s);
  }
  std::vector<prometheus::MetricFamily> out;
  out.reserve(merged.size());
  for (auto& [name, m] : merged) {
    if (m.samples.empty()) continue;
    std::stable_sort(m.samples.begin(), m.samples.end(),
                     [](const MetricSample* a, const MetricSample* b) { return a->labels < b->labels; });
    prometheus::MetricFamily f;
    f.name = name;
    f.help = escape_help(m.first->help);
    f.type = library_type(m.first->type);
    f.metric.reserve(std::min(m.samples.size(), max_series_per_family));
    for (size_t i = 0; i < m.samples.size(); ++i) {
      if (i > 0 && m.samples[i]->labels == m.samples[i - 1]->labels) {
        d.duplicate_series++;
        continue;
      }
      if (f.metric.size() >= max_series_per_family) {
        d.series_limit++;
        continue;
      }
      f.metric.push_back(client_metric(*m.samples[i], m.first->type));
    }
    out.push_back(std::move(f));
  }
  return out;
}

SnapshotCollectable::SnapshotCollectable(Source source, size_t max_series_per_family)
    : source_(std::move(source)), max_series_(max_series_per_family) {}

std::vector<prometheus::MetricFamily> SnapshotCollectable::Collect() const {
  ExpositionDrops d;
  auto out = to_prometheus_families(source_(), max_series_, &d);
  auto at = std::lower_bound(out.begin(), out.end(), kDroppedSeries,
                             [](const prometheus::MetricFamily& f, std::string_view n) { return f.name < n; });
  if (at != out.end() && at->name == kDroppedSeries) {  // the name is ours: a contribution under it is invalid
    d.invalid_family += at->metric.size();
    at = out.erase(at);
  }
  out.insert(at, dropped_series_family(invalid_family_ += d.invalid_family, duplicate_series_ += d.duplicate_series,
                                       series_limit_ += d.series_limit));
  return out;
}

std::string prometheus_text(const prometheus::Collectable& collectable) {
  return prometheus::TextSerializer().Serialize(collectable.Collect());
}

}  // namespace tickprobe
