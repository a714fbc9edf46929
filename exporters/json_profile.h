// JSON rendering of a Profile (nlohmann/json), for scripts and the web UI.
//
// Shape (keys always present unless noted):
// {
//   "sample_types": [{"type": "cpu", "unit": "nanoseconds"}, ...],
//   "default_sample_type": "cpu",
//   "period_type": {"type","unit"}, "period": N, "time_nanos": N, "duration_nanos": N,
//   "samples": [{
//      "values": [N, ...],                      // parallel to sample_types
//      "pid": N, "tid": N, "comm": "..", "thread": "..", "labels": {k: v},
//      "stack": [{                              // leaf first
//         "name": display name (+ " (file:line)" with line_info), "function": "..", "module": "..",
//         "address": "0x7f..", "module_offset": "0x..",   // hex strings: u64 does not fit a JS number
//         "file": "..", "line": N, "kernel": bool, "inlined": bool }]}],
//   "counters": {"lost_samples": N, ...},
//   "comments": [".."],
//   "totals": {"sample_count": N, "values": [sum per sample type]},
//   "top_functions": [{"name","module","kernel","self","total"}]   // only when top_limit != 0
// }
// Key order is fixed (nlohmann::ordered_json), so equal Profiles give equal
// text.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/result.h"
#include "exporters/sink.h"
#include "model/profile.h"

namespace tickprobe {

struct JsonProfileOptions {
  bool include_samples = true;
  // Rows of the top-functions table to include (0 = leave the table out),
  // computed for top_value_index (nullopt = default sample type).
  size_t top_limit = 0;
  std::optional<size_t> top_value_index;
  int indent = -1;  // -1 = compact; used by render_json_profile
  // "name" of frames and top_functions rows as "func (file.cpp:42)" when
  // the profile carries line info (--line-info); "file"/"line" are always there.
  bool line_info = false;
};

Result<nlohmann::ordered_json> profile_to_json(const Profile& profile, const JsonProfileOptions& options = {});

// Serialized, with a trailing newline.
Result<std::string> render_json_profile(const Profile& profile, const JsonProfileOptions& options = {});

Status write_json_profile(const Profile& profile, const JsonProfileOptions& options, Sink& sink);

}  // namespace tickprobe
