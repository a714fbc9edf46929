#include "exporters/json_profile.h"

#include <gtest/gtest.h>

#include "sample_profile.h"

namespace tickprobe {
namespace {

using testing::make_sample_profile;

TEST(JsonProfile, RendersSamplesCountersAndTotals) {
  JsonProfileOptions opts;
  opts.top_limit = 3;
  opts.top_value_index = 0;
  auto text = render_json_profile(make_sample_profile(), opts);
  ASSERT_TRUE(text) << text.error().message;
  auto j = nlohmann::json::parse(*text);

  EXPECT_EQ(j["sample_types"][1]["type"], "cpu");
  EXPECT_EQ(j["default_sample_type"], "cpu");
  EXPECT_EQ(j["period"], 10000000);
  EXPECT_EQ(j["counters"]["lost_samples"], 3);
  EXPECT_EQ(j["comments"][0], "tickprobe test profile");
  EXPECT_EQ(j["totals"]["sample_count"], 9);
  EXPECT_EQ(j["totals"]["values"], nlohmann::json::array({18, 180000000}));

  const auto& s0 = j["samples"][0];
  EXPECT_EQ(s0["values"], nlohmann::json::array({3, 30000000}));
  EXPECT_EQ(s0["pid"], 4242);
  EXPECT_EQ(s0["thread"], "sim");
  ASSERT_EQ(s0["stack"].size(), 4u);
  const auto& leaf = s0["stack"][0];
  EXPECT_EQ(leaf["name"], "std::vector<int>::push_back");
  EXPECT_EQ(leaf["module"], "/opt/tickgame/bin/tickgame");
  EXPECT_EQ(leaf["address"], "0x555555555310");
  EXPECT_EQ(leaf["line"], 1287);
  EXPECT_EQ(leaf["inlined"], true);
  EXPECT_EQ(leaf["kernel"], false);
  EXPECT_EQ(s0["stack"][3]["name"], "main");

  const auto& net = j["samples"][4];
  EXPECT_EQ(net["labels"]["state"], "R");
  EXPECT_EQ(net["stack"][0]["kernel"], true);
  EXPECT_EQ(j["samples"][5]["stack"][0]["name"], "[unknown] in libgameplugin.so+0x1234");
  EXPECT_EQ(j["samples"][5]["stack"][0]["function"], "");

  ASSERT_EQ(j["top_functions"].size(), 3u);
  EXPECT_EQ(j["top_functions"][0]["name"], "tick_physics");
  EXPECT_EQ(j["top_functions"][0]["self"], 6);
  EXPECT_EQ(j["top_functions"][0]["total"], 11);
}

TEST(JsonProfile, DeterministicKeyOrderAndOptionalParts) {
  JsonProfileOptions opts;
  opts.include_samples = false;
  auto text = render_json_profile(make_sample_profile(), opts);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->find("\"samples\":["), std::string::npos);
  EXPECT_EQ(text->find("top_functions"), std::string::npos);
  EXPECT_EQ(text->rfind("{\"sample_types\":", 0), 0u);
  EXPECT_EQ(text->back(), '\n');
  EXPECT_EQ(*text, *render_json_profile(make_sample_profile(), opts));
}

TEST(JsonProfile, InvalidUtf8DoesNotThrow) {
  Profile p = make_sample_profile();
  p.samples[0].frames[0].function = "bad\xff name";
  auto text = render_json_profile(p);
  ASSERT_TRUE(text);
  EXPECT_TRUE(nlohmann::json::accept(*text));
}

TEST(JsonProfile, WritesToSink) {
  StringSink sink;
  ASSERT_TRUE(write_json_profile(make_sample_profile(), {}, sink));
  EXPECT_EQ(sink.str(), *render_json_profile(make_sample_profile()));
}

TEST(JsonProfile, LineInfoInFrameNamesAndTopFunctions) {
  JsonProfileOptions o;
  o.top_limit = 50;
  o.line_info = true;
  auto j = profile_to_json(testing::make_sample_profile(), o);
  ASSERT_TRUE(j);
  bool frame_seen = false, row_seen = false;
  for (const auto& s : (*j)["samples"])
    for (const auto& f : s["stack"]) frame_seen |= f["name"] == "tick_physics (physics.cpp:23)";
  for (const auto& r : (*j)["top_functions"]) row_seen |= r["name"] == "tick_physics (physics.cpp:17)";
  EXPECT_TRUE(frame_seen);
  EXPECT_TRUE(row_seen);
}

}  // namespace
}  // namespace tickprobe
