// /metrics through the Prometheus C++ client (prometheus-cpp, core library).
//
// Families and the agent describe their metrics in the neutral model
// (model/metrics.h: plain data, no dependency on this library). At scrape
// time a SnapshotCollectable asks its source for a snapshot, converts it into
// prometheus::MetricFamily values, and prometheus::TextSerializer writes the
// text exposition format 0.0.4 (prometheus_text()).
//
// The conversion makes one bad contribution cost only itself, never the
// scrape:
//   - names pass the library's checks (CheckMetricName, CheckLabelName) and
//     Prometheus conventions: counters end in "_total" and nothing else does;
//     histograms do not use the label "le" and their bounds are finite and
//     strictly increasing. A family that fails is left out;
//   - families with the same name are merged (a later one of another type is
//     left out); families without series are left out; families are sorted
//     by name and series by labels, so the text does not depend on the order
//     of contribution;
//   - a series whose label set repeats an earlier one of its family is left
//     out (a scrape with duplicate series is rejected);
//   - a family keeps at most max_series_per_family series: the sorted first
//     ones (a safety net above the agent's per-process bound, docs/agent.md);
//   - histograms become ClientMetric::Histogram with cumulative buckets and a
//     final +Inf bucket;
//   - HELP text is escaped here (backslash, newline): the serializer writes
//     it verbatim. Label values are escaped by the serializer (\\ \" \n).
// Every series left out is counted, by reason, in the counter
// tickprobe_metrics_dropped_series_total{reason}, part of every Collect().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "core/result.h"
#include "model/metrics.h"

namespace tickprobe {

// The first problem with a family's names, type suffix or histogram shape.
Status validate_family(const MetricFamily& family);

// Series left out by one conversion, by reason.
struct ExpositionDrops {
  uint64_t invalid_family = 0;    // series of families that failed validation or clashed in type
  uint64_t duplicate_series = 0;  // label set already present in the family
  uint64_t series_limit = 0;      // beyond max_series_per_family
};

inline constexpr size_t kDefaultMaxSeriesPerFamily = 65536;

// The conversion alone (see the header comment); drops may be null.
std::vector<prometheus::MetricFamily> to_prometheus_families(const MetricsSnapshot& snapshot,
                                                             size_t max_series_per_family, ExpositionDrops* drops);

// HELP escaping of the text format: backslash and newline.
std::string escape_help(std::string_view help);

// A prometheus::Collectable over any source of snapshots: the source runs on
// every Collect() (pull model: kernel maps are read when Prometheus asks).
// Collect() is thread-safe if the source is.
class SnapshotCollectable : public prometheus::Collectable {
 public:
  using Source = std::function<MetricsSnapshot()>;
  explicit SnapshotCollectable(Source source, size_t max_series_per_family = kDefaultMaxSeriesPerFamily);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Source source_;
  size_t max_series_;
  // Cumulative over scrapes (a series left out of two scrapes counts twice).
  mutable std::atomic<uint64_t> invalid_family_{0}, duplicate_series_{0}, series_limit_{0};
};

// What `collectable` reports now, in the text format (TextSerializer).
std::string prometheus_text(const prometheus::Collectable& collectable);

}  // namespace tickprobe
