#include "core/parse.h"

#include <gtest/gtest.h>

namespace tickprobe {
namespace {

TEST(ParseDuration, UnitsAndStrictness) {
  struct Case {
    const char* text;
    bool ok;
    double seconds;
  };
  const Case cases[] = {{"300s", true, 300},   {"300", true, 300}, {"5m", true, 300},  {"1.5h", true, 5400},
                        {"250ms", true, 0.25}, {"0", true, 0},     {"nan", false, 0},  {"-1s", false, 0},
                        {"1e3", false, 0},     {"0x10", false, 0}, {"", false, 0},     {"s", false, 0},
                        {"5 m", false, 0},     {"5d", false, 0},   {"9999h", false, 0}};
  for (const auto& c : cases) {
    auto r = parse_duration_seconds(c.text);
    EXPECT_EQ(static_cast<bool>(r), c.ok) << c.text;
    if (r && c.ok) {
      EXPECT_DOUBLE_EQ(*r, c.seconds) << c.text;
    }
  }
}

}  // namespace
}  // namespace tickprobe
