#include "exporters/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tickprobe {

bool is_valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

Status validate_family(const MetricFamily& family) {
  const std::string& name = family.name;
  if (!is_valid_metric_name(name)) return Error("invalid metric name \"" + name + "\"");
  bool ends_total = name.size() > 6 && name.ends_with("_total");
  if (family.type == MetricType::kCounter && !ends_total) {
    return Error("counter " + name + " must end in _total");
  }
  if (family.type != MetricType::kCounter && ends_total) {
    return Error("metric " + name + " ends in _total but is a " + metric_type_name(family.type));
  }
  for (const MetricSample& sample : family.samples) {
    for (const auto& [label, value] : sample.labels) {
      if (!is_valid_label_name(label)) return Error("metric " + name + " has invalid label name \"" + label + "\"");
      if (family.type == MetricType::kHistogram && label == "le") {
        return Error("histogram " + name + " uses the reserved label \"le\"");
      }
    }
    if (family.type == MetricType::kHistogram) {
      const HistogramData& h = sample.histogram;
      if (h.bucket_counts.size() != h.upper_bounds.size() + 1) {
        return Error("histogram " + name + " has " + std::to_string(h.bucket_counts.size()) + " bucket counts for " +
                     std::to_string(h.upper_bounds.size()) + " bounds (want bounds + 1)");
      }
      for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
        if (!std::isfinite(h.upper_bounds[i]) || (i > 0 && h.upper_bounds[i] <= h.upper_bounds[i - 1])) {
          return Error("histogram " + name + " bounds must be finite and strictly increasing");
        }
      }
    }
  }
  return {};
}

std::string format_prometheus_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integral values (counts, bytes) print as integers: "1024", not "1.024e+03".
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip
  return std::string(buf, res.ptr);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
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

namespace {

std::string label_block(const MetricLabels& labels, const char* le = nullptr) {
  if (labels.empty() && !le) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape_label_value(v) + "\"";
  }
  if (le) {
    if (!first) out += ',';
    out += std::string("le=\"") + le + "\"";
  }
  return out + "}";
}

// A '#' line that is neither HELP nor TYPE is a comment to parsers; keep it
// on one line.
std::string comment_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "# " + text + "\n";
}

void render_family(const MetricFamily& family, std::string& out) {
  out += "# HELP " + family.name + " " + escape_help(family.help) + "\n";
  out += "# TYPE " + family.name + " " + metric_type_name(family.type) + "\n";
  std::vector<const MetricSample*> samples;
  for (const MetricSample& s : family.samples) samples.push_back(&s);
  std::stable_sort(samples.begin(), samples.end(),
                   [](const MetricSample* a, const MetricSample* b) { return a->labels < b->labels; });
  for (const MetricSample* s : samples) {
    if (family.type != MetricType::kHistogram) {
      out += family.name + label_block(s->labels) + " " + format_prometheus_value(s->value) + "\n";
      continue;
    }
    const HistogramData& h = s->histogram;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
      cumulative += h.bucket_counts[i];
      std::string le = format_prometheus_value(h.upper_bounds[i]);
      out += family.name + "_bucket" + label_block(s->labels, le.c_str()) + " " + std::to_string(cumulative) + "\n";
    }
    cumulative += h.bucket_counts.back();
    out += family.name + "_bucket" + label_block(s->labels, "+Inf") + " " + std::to_string(cumulative) + "\n";
    out += family.name + "_sum" + label_block(s->labels) + " " + format_prometheus_value(h.sum) + "\n";
    out += family.name + "_count" + label_block(s->labels) + " " + std::to_string(cumulative) + "\n";
  }
}

}  // namespace

std::string render_prometheus_text(const MetricsSnapshot& snapshot) {
  // Merge by name: a family registered in the registry and topped up by a
  // collector must still appear once, or the scrape is rejected.
  std::map<std::string, MetricFamily> merged;
  std::string problems;
  for (const MetricFamily& family : snapshot) {
    // One bad family must not break the whole scrape: skip it and say why.
    if (auto st = validate_family(family); !st) {
      problems += comment_line("skipped invalid metric family: " + st.error().message);
      continue;
    }
    auto [it, inserted] = merged.try_emplace(family.name, family);
    if (inserted) continue;
    if (it->second.type != family.type) {
      problems += comment_line("skipped metric family " + family.name + ": declared as both " +
                               metric_type_name(it->second.type) + " and " + metric_type_name(family.type));
      continue;
    }
    it->second.samples.insert(it->second.samples.end(), family.samples.begin(), family.samples.end());
  }
  std::string out;
  for (const auto& [name, family] : merged) {
    if (!family.samples.empty()) render_family(family, out);
  }
  return out + problems;
}

Status MetricsRegistry::upsert(const std::string& name, const std::string& help, MetricType type,
                               const MetricLabels& labels, const std::function<void(MetricSample&)>& update) {
  MetricFamily probe{name, help, type, {MetricSample{labels, 0, {}}}};
  if (type == MetricType::kHistogram) probe.samples[0].histogram.bucket_counts.resize(1);
  if (auto st = validate_family(probe); !st) return st;
  if (help.empty()) return Error("metric " + name + " needs help text");

  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = families_.try_emplace(name, MetricFamily{name, help, type, {}});
  MetricFamily& family = it->second;
  if (family.type != type) {
    return Error("metric " + name + " is already registered as a " + metric_type_name(family.type));
  }
  if (family.help != help) return Error("metric " + name + " is already registered with other help text");
  for (MetricSample& s : family.samples) {
    if (s.labels == labels) {
      update(s);
      return {};
    }
  }
  if (family.samples.size() >= max_series_) {
    ++dropped_series_;
    return Error("metric " + name + " already has " + std::to_string(max_series_) + " label sets; new series dropped",
                 "use fewer distinct label values");
  }
  family.samples.push_back(MetricSample{labels, 0, {}});
  update(family.samples.back());
  return {};
}

Status MetricsRegistry::set_counter(const std::string& name, const std::string& help, const MetricLabels& labels,
                                    double value) {
  return upsert(name, help, MetricType::kCounter, labels, [&](MetricSample& s) { s.value = value; });
}

Status MetricsRegistry::add_counter(const std::string& name, const std::string& help, const MetricLabels& labels,
                                    double delta) {
  if (delta < 0) return Error("counter " + name + " cannot decrease (delta " + format_prometheus_value(delta) + ")");
  return upsert(name, help, MetricType::kCounter, labels, [&](MetricSample& s) { s.value += delta; });
}

Status MetricsRegistry::set_gauge(const std::string& name, const std::string& help, const MetricLabels& labels,
                                  double value) {
  return upsert(name, help, MetricType::kGauge, labels, [&](MetricSample& s) { s.value = value; });
}

Status MetricsRegistry::set_histogram(const std::string& name, const std::string& help, const MetricLabels& labels,
                                      HistogramData histogram) {
  MetricFamily check{name, help, MetricType::kHistogram, {MetricSample{labels, 0, histogram}}};
  if (auto st = validate_family(check); !st) return st;
  return upsert(name, help, MetricType::kHistogram, labels,
                [&](MetricSample& s) { s.histogram = std::move(histogram); });
}

Status MetricsRegistry::observe(const std::string& name, const std::string& help, const MetricLabels& labels,
                                const std::vector<double>& bounds, double value) {
  MetricFamily check{name, help, MetricType::kHistogram, {MetricSample{labels, 0, HistogramData::with_bounds(bounds)}}};
  if (auto st = validate_family(check); !st) return st;
  return upsert(name, help, MetricType::kHistogram, labels, [&](MetricSample& s) {
    if (s.histogram.bucket_counts.size() != s.histogram.upper_bounds.size() + 1) {
      s.histogram = HistogramData::with_bounds(bounds);
    }
    s.histogram.observe(value);
  });
}

void MetricsRegistry::add_collector(Collector collector) {
  std::lock_guard<std::mutex> lock(mutex_);
  collectors_.push_back(std::move(collector));
}

MetricsSnapshot MetricsRegistry::snapshot() const {
  MetricsSnapshot out;
  std::vector<Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, family] : families_) out.push_back(family);
    out.push_back(MetricFamily{"tickprobe_metrics_dropped_series_total",
                               "Metric series refused because a family reached its label-set cap.",
                               MetricType::kCounter,
                               {MetricSample{{}, static_cast<double>(dropped_series_), {}}}});
    collectors = collectors_;
  }
  // Collectors read BPF maps and may be slow; never hold the lock meanwhile.
  for (const Collector& collect : collectors) collect(out);
  return out;
}

std::vector<double> log2_bucket_bounds(double first, double last) {
  std::vector<double> bounds;
  if (!(first > 0) || !std::isfinite(first) || !std::isfinite(last)) return bounds;
  for (double b = first; bounds.size() < 128; b *= 2) {
    bounds.push_back(b);
    if (b >= last) break;
  }
  return bounds;
}

HistogramData histogram_from_log2_slots(std::span<const uint64_t> slots, double unit_scale,
                                        const std::vector<double>& bounds, std::optional<double> exact_sum) {
  HistogramData h = HistogramData::with_bounds(bounds);
  double estimated_sum = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] == 0) continue;
    double edge = std::ldexp(1.0, static_cast<int>(i) + 1) * unit_scale;
    // Tolerance: 2^k * 1e-9 and the bound computed by repeated doubling can
    // differ in the last bit.
    size_t b = 0;
    while (b < bounds.size() && bounds[b] < edge * (1 - 1e-12)) ++b;
    h.bucket_counts[b] += slots[i];
    double midpoint = i == 0 ? 0.5 : 1.5 * std::ldexp(1.0, static_cast<int>(i));
    estimated_sum += static_cast<double>(slots[i]) * midpoint * unit_scale;
  }
  h.sum = exact_sum.value_or(estimated_sum);
  return h;
}

}  // namespace tickprobe
