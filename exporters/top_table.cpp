#include "exporters/top_table.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "exporters/folded.h"

namespace tickprobe {

std::string format_thousands(int64_t value) {
  bool negative = value < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  std::string digits = std::to_string(magnitude);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

Result<TopTable> compute_top_table(const Profile& profile, const TopTableOptions& options) {
  auto index = resolve_value_index(profile, options.value_index);
  if (!index) return index.error();

  TopTable table;
  table.value_type = profile.sample_types[*index];
  std::vector<FunctionTotals> rows;
  std::unordered_map<std::string, size_t> row_of;
  std::unordered_set<size_t> seen_in_sample;
  for (const Sample& sample : profile.samples) {
    int64_t value = *index < sample.values.size() ? sample.values[*index] : 0;
    table.grand_total += value;
    if (value == 0 || sample.frames.empty()) continue;
    seen_in_sample.clear();
    for (size_t i = 0; i < sample.frames.size(); ++i) {
      const Frame& frame = sample.frames[i];
      std::string name = options.line_info ? frame.display_name_with_line() : frame.display_name();
      auto [it, inserted] = row_of.try_emplace(name, rows.size());
      if (inserted) rows.push_back({std::move(name), frame.module, frame.kernel, 0, 0});
      FunctionTotals& row = rows[it->second];
      if (i == 0) row.self += value;
      if (seen_in_sample.insert(it->second).second) row.total += value;
    }
  }
  auto primary = [&](const FunctionTotals& r) { return options.sort_by == TopSortKey::kSelf ? r.self : r.total; };
  auto secondary = [&](const FunctionTotals& r) { return options.sort_by == TopSortKey::kSelf ? r.total : r.self; };
  std::sort(rows.begin(), rows.end(), [&](const FunctionTotals& a, const FunctionTotals& b) {
    if (primary(a) != primary(b)) return primary(a) > primary(b);
    if (secondary(a) != secondary(b)) return secondary(a) > secondary(b);
    return a.name < b.name;
  });
  table.function_count = rows.size();
  if (options.limit != 0 && rows.size() > options.limit) rows.resize(options.limit);
  table.rows = std::move(rows);
  return table;
}

namespace {

std::string percent(int64_t part, int64_t whole) {
  char buf[32];
  double p = whole != 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
  std::snprintf(buf, sizeof buf, "%.2f%%", p);
  return buf;
}

std::string pad_left(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

std::string render_top_table(const TopTable& table) {
  std::string unit = table.value_type.type;
  if (!table.value_type.unit.empty()) unit += " (" + table.value_type.unit + ")";
  std::string out = "Showing " + std::to_string(table.rows.size()) + " of " + std::to_string(table.function_count) +
                    " functions, total " + format_thousands(table.grand_total) + " " + unit + "\n";

  // Column widths from the data, so big numbers stay aligned.
  std::vector<std::vector<std::string>> cells;
  int64_t cumulative = 0;
  for (const FunctionTotals& row : table.rows) {
    cumulative += row.self;
    cells.push_back({format_thousands(row.self), percent(row.self, table.grand_total),
                     percent(cumulative, table.grand_total), format_thousands(row.total),
                     percent(row.total, table.grand_total), row.name});
  }
  const std::vector<std::string> header = {"self", "self%", "cum%", "total", "total%", "function"};
  std::vector<size_t> widths(header.size() - 1);
  for (size_t c = 0; c < widths.size(); ++c) {
    widths[c] = header[c].size();
    for (const auto& r : cells) widths[c] = std::max(widths[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t c = 0; c < widths.size(); ++c) s += pad_left(r[c], widths[c]) + "  ";
    s += r.back();
    s += '\n';
    return s;
  };
  out += line(header);
  for (const auto& r : cells) out += line(r);
  return out;
}

}  // namespace tickprobe
