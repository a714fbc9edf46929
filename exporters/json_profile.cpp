#include "exporters/json_profile.h"

#include <cstdio>

#include "exporters/top_table.h"

namespace tickprobe {

namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

nlohmann::ordered_json value_type_json(const ValueType& vt) {
  return nlohmann::ordered_json{{"type", vt.type}, {"unit", vt.unit}};
}

nlohmann::ordered_json frame_json(const Frame& f, bool line_info) {
  return nlohmann::ordered_json{{"name", line_info ? f.display_name_with_line() : f.display_name()},
                                {"function", f.function},
                                {"module", f.module},
                                {"address", hex(f.address)},
                                {"module_offset", hex(f.module_offset)},
                                {"file", f.file},
                                {"line", f.line},
                                {"kernel", f.kernel},
                                {"inlined", f.inlined}};
}

}  // namespace

Result<nlohmann::ordered_json> profile_to_json(const Profile& profile, const JsonProfileOptions& options) {
  using json = nlohmann::ordered_json;
  json out = json::object();
  json types = json::array();
  for (const ValueType& vt : profile.sample_types) types.push_back(value_type_json(vt));
  out["sample_types"] = std::move(types);
  out["default_sample_type"] = profile.default_value_index < profile.sample_types.size()
                                   ? profile.sample_types[profile.default_value_index].type
                                   : std::string();
  out["period_type"] = value_type_json(profile.period_type);
  out["period"] = profile.period;
  out["time_nanos"] = profile.time_nanos;
  out["duration_nanos"] = profile.duration_nanos;

  std::vector<int64_t> totals(profile.sample_types.size(), 0);
  json samples = json::array();
  for (const Sample& s : profile.samples) {
    for (size_t i = 0; i < totals.size() && i < s.values.size(); ++i) totals[i] += s.values[i];
    if (!options.include_samples) continue;
    json stack = json::array();
    for (const Frame& f : s.frames) stack.push_back(frame_json(f, options.line_info));
    json labels = json::object();
    for (const auto& [k, v] : s.labels) labels[k] = v;
    samples.push_back(json{{"values", s.values},
                           {"pid", s.pid},
                           {"tid", s.tid},
                           {"comm", s.comm},
                           {"thread", s.thread},
                           {"labels", std::move(labels)},
                           {"stack", std::move(stack)}});
  }
  if (options.include_samples) out["samples"] = std::move(samples);

  // Only when the collector gave them (synthetic profiles have none).
  if (!profile.mappings.empty()) {
    json mappings = json::array();
    for (const ProfileMapping& m : profile.mappings) {
      json jm{{"pid", m.pid},       {"path", m.path},           {"start", hex(m.start)},
              {"limit", hex(m.limit)}, {"file_offset", hex(m.file_offset)}, {"build_id", m.build_id},
              {"main_executable", m.main_executable}};
      // The file a symlinked executable resolves to (frames name the link).
      if (!m.resolved_path.empty()) jm["resolved_path"] = m.resolved_path;
      mappings.push_back(std::move(jm));
    }
    out["mappings"] = std::move(mappings);
  }

  json counters = json::object();
  for (const auto& [k, v] : profile.counters) counters[k] = v;
  out["counters"] = std::move(counters);
  out["comments"] = profile.comments;
  out["totals"] = json{{"sample_count", profile.samples.size()}, {"values", totals}};

  if (options.top_limit != 0) {
    auto table = compute_top_table(profile, {options.top_value_index, TopSortKey::kSelf, options.top_limit, options.line_info});
    if (!table) return table.error();
    json rows = json::array();
    for (const FunctionTotals& r : table->rows) {
      rows.push_back(json{{"name", r.name}, {"module", r.module}, {"kernel", r.kernel}, {"self", r.self},
                          {"total", r.total}});
    }
    out["top_functions"] = std::move(rows);
  }
  return out;
}

Result<std::string> render_json_profile(const Profile& profile, const JsonProfileOptions& options) {
  auto j = profile_to_json(profile, options);
  if (!j) return j.error();
  // replace: invalid UTF-8 in symbol names must not make dump() throw.
  return j->dump(options.indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Status write_json_profile(const Profile& profile, const JsonProfileOptions& options, Sink& sink) {
  auto text = render_json_profile(profile, options);
  if (!text) return text.error();
  return write_and_commit(sink, *text);
}

}  // namespace tickprobe
