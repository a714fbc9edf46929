// A small reader of the Prometheus text format (0.0.4) for tests: what a
// scraper sees, so tests assert values and structure instead of spelling.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tickprobe::testing {

using SeriesLabels = std::map<std::string, std::string>;

struct Exposition {
  std::map<std::string, std::string> help;  // family -> HELP text, unescaped
  std::map<std::string, std::string> type;  // family -> TYPE
  std::vector<std::string> family_order;    // as TYPE lines appear
  // (sample name, labels with values unescaped) -> value
  std::map<std::pair<std::string, SeriesLabels>, double> samples;
  // Malformed lines, samples outside their family, repeated series, ...
  std::vector<std::string> errors;

  bool has(const std::string& name, const SeriesLabels& labels = {}) const {
    return samples.count({name, labels}) > 0;
  }
  // NaN when absent (and counted in `errors` of nothing: check has() first).
  double value(const std::string& name, const SeriesLabels& labels = {}) const;
  // Series of one sample name.
  size_t count(const std::string& name) const;
};

Exposition parse_exposition(const std::string& text);

}  // namespace tickprobe::testing
