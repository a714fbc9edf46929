#include "exporters/top_table.h"

#include <gtest/gtest.h>

#include <map>

#include "golden.h"
#include "sample_profile.h"

namespace tickprobe {
namespace {

using testing::make_sample_profile;

const FunctionTotals* row(const TopTable& t, const std::string& name) {
  for (const auto& r : t.rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

TEST(TopTable, SelfAndTotalPerFunction) {
  TopTableOptions opts;
  opts.value_index = 0;
  auto t = compute_top_table(make_sample_profile(), opts);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->grand_total, 18);
  EXPECT_EQ(t->value_type.type, "samples");
  EXPECT_EQ(t->function_count, 15u);
  // Sorted by self desc, then total desc, then name.
  ASSERT_GE(t->rows.size(), 3u);
  EXPECT_EQ(t->rows[0].name, "tick_physics");
  EXPECT_EQ(t->rows[1].name, "std::vector<int>::push_back");
  EXPECT_EQ(t->rows[2].name, "tcp_sendmsg");
  EXPECT_EQ(row(*t, "tick_physics")->self, 6);
  EXPECT_EQ(row(*t, "tick_physics")->total, 11);
  // Recursion: tick_loop appears twice in one stack but counts once.
  EXPECT_EQ(row(*t, "tick_loop")->total, 14);
  EXPECT_EQ(row(*t, "tick_loop")->self, 0);
  EXPECT_EQ(row(*t, "main")->total, 18);
  EXPECT_TRUE(row(*t, "tcp_sendmsg")->kernel);
  EXPECT_EQ(row(*t, "[unknown] in libgameplugin.so+0x1234")->module, "/opt/tickgame/lib/libgameplugin.so");
  EXPECT_EQ(row(*t, "idle"), nullptr);  // zero-valued samples contribute nothing
}

TEST(TopTable, SortByTotalAndLimit) {
  TopTableOptions opts;
  opts.value_index = 0;
  opts.sort_by = TopSortKey::kTotal;
  opts.limit = 3;
  auto t = compute_top_table(make_sample_profile(), opts);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_EQ(t->function_count, 15u);
  EXPECT_EQ(t->rows[0].name, "main");
  EXPECT_EQ(t->rows[1].name, "tick_loop");
  EXPECT_EQ(t->rows[2].name, "tick_physics");
}

TEST(TopTable, RendersAlignedText) {
  auto t = compute_top_table(make_sample_profile());  // default: cpu ns
  ASSERT_TRUE(t);
  std::string text = render_top_table(*t);
  testing::expect_matches_golden("sample_top.txt", text);
  EXPECT_NE(text.find("Showing 15 of 15 functions, total 180,000,000 cpu (nanoseconds)"), std::string::npos);
  // Every data line has the function name starting at the same column.
  size_t header = text.find("  function\n") + 2;
  size_t col = header - text.rfind('\n', header) - 1;
  size_t pos = text.find("60,000,000");
  size_t line_start = text.rfind('\n', pos) + 1;
  EXPECT_EQ(text.substr(line_start + col, 12), "tick_physics");
}

TEST(TopTable, FormatThousands) {
  EXPECT_EQ(format_thousands(0), "0");
  EXPECT_EQ(format_thousands(999), "999");
  EXPECT_EQ(format_thousands(1000), "1,000");
  EXPECT_EQ(format_thousands(-1234567), "-1,234,567");
  EXPECT_EQ(format_thousands(INT64_MIN), "-9,223,372,036,854,775,808");
}

TEST(TopTable, LineInfoKeysRowsBySourceLine) {
  TopTableOptions o;
  o.value_index = 0;
  o.line_info = true;
  auto t = compute_top_table(make_sample_profile(), o);
  ASSERT_TRUE(t);
  std::map<std::string, int64_t> self;
  for (const auto& r : t->rows) self[r.name] = r.self;
  EXPECT_EQ(self["tick_physics (physics.cpp:17)"], 6);  // 4 + 2 (under the recursion)
  EXPECT_EQ(self["std::vector<int>::push_back (stl_vector.h:1287)"], 5);
  EXPECT_EQ(self.count("tick_physics"), 0u);
  EXPECT_NE(render_top_table(*t).find("tick_physics (physics.cpp:17)"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
