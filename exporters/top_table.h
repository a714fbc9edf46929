// "Top functions": self and total value per function, as `pprof -top` shows.
//
//  - self:  sum of the chosen value over samples whose leaf frame is the
//           function.
//  - total: sum over samples whose stack contains the function anywhere,
//           counted once per sample even under recursion.
// Functions are keyed by Frame::display_name(), so unknown frames group by
// module+offset. Used by the JSON exporter and by the CLI's human output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/profile.h"

namespace tickprobe {

struct FunctionTotals {
  std::string name;    // Frame::display_name()
  std::string module;  // module of the first frame seen with this name
  bool kernel = false;
  int64_t self = 0;
  int64_t total = 0;
};

enum class TopSortKey { kSelf, kTotal };

struct TopTableOptions {
  std::optional<size_t> value_index;  // nullopt = Profile::default_value_index
  TopSortKey sort_by = TopSortKey::kSelf;
  size_t limit = 0;  // keep the first N rows after sorting; 0 = all
  bool line_info = false;  // key rows by "func (file.cpp:42)" (Frame::display_name_with_line)
};

struct TopTable {
  ValueType value_type;  // the column the numbers are in
  int64_t grand_total = 0;  // sum of the value over all samples
  size_t function_count = 0;  // before the limit
  std::vector<FunctionTotals> rows;  // sorted: key desc, other desc, name asc
};

Result<TopTable> compute_top_table(const Profile& profile, const TopTableOptions& options = {});

// Aligned text, e.g.
//   Showing 2 of 5 functions, total 1,000 samples (count)
//         self  self%  cum%      total  total%  function
//          600 60.00% 60.00%       900  90.00%  tick_physics
// Numbers use thousands separators; percentages are of grand_total.
std::string render_top_table(const TopTable& table);

// 1234567 -> "1,234,567" (used by the text renderers).
std::string format_thousands(int64_t value);

}  // namespace tickprobe
