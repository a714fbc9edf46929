#include "exporters/flamegraph_svg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "golden.h"
#include "sample_profile.h"

namespace tickprobe {
namespace {

using testing::make_sample_profile;

// xmllint comes from libxml2-utils (scripts/bootstrap.sh installs it); a
// missing tool is a failure, not a skip.
void expect_well_formed_xml(const std::string& svg, const std::string& tag) {
  std::string dir = testing::make_temp_dir(tag);
  std::string path = dir + "/graph.svg";
  testing::write_file(path, svg);
  std::string out;
  ASSERT_EQ(testing::run_command("command -v xmllint", &out), 0)
      << "xmllint not found\nhint: run scripts/bootstrap.sh (installs libxml2-utils)";
  int rc = testing::run_command("xmllint --noout --nonet '" + path + "'", &out, true);
  EXPECT_EQ(rc, 0) << "xmllint rejected " << path << ":\n" << out;
  if (rc == 0) std::filesystem::remove_all(dir);
}

// Attribute of the frame group whose <title> starts with `name (`.
std::string frame_group(const std::string& svg, const std::string& escaped_name) {
  auto pos = svg.find("<title>" + escaped_name + " (");
  if (pos == std::string::npos) return {};
  auto start = svg.rfind("<g class=\"f\"", pos);
  auto end = svg.find("</g>", pos);
  return svg.substr(start, end - start);
}

TEST(FlameGraphSvg, GoldenAndWellFormed) {
  FlameGraphOptions opts;
  opts.title = "tickgame CPU";
  auto svg = render_flamegraph_svg(make_sample_profile(), opts);
  ASSERT_TRUE(svg) << svg.error().message;
  testing::expect_matches_golden("sample.svg", *svg);
  expect_well_formed_xml(*svg, "svg");
}

TEST(FlameGraphSvg, SelfContainedAndInteractive) {
  auto svg = *render_flamegraph_svg(make_sample_profile());
  EXPECT_NE(svg.find("<script type=\"text/ecmascript\"><![CDATA["), std::string::npos);
  EXPECT_NE(svg.find("<style"), std::string::npos);
  for (const char* fn : {"function init(", "function zoom(", "function unzoom(", "function search(", "reset_search"}) {
    EXPECT_NE(svg.find(fn), std::string::npos) << fn;
  }
  EXPECT_NE(svg.find("onload=\"init(evt)\""), std::string::npos);
  EXPECT_NE(svg.find(">Reset Zoom</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Search</text>"), std::string::npos);
  // Nothing is fetched from elsewhere.
  EXPECT_EQ(svg.find("href"), std::string::npos);
  EXPECT_EQ(svg.find("http://www.w3.org/2000/svg\""), svg.find("http"));
}

TEST(FlameGraphSvg, TitleSubtitleAndTooltips) {
  auto svg = *render_flamegraph_svg(make_sample_profile());
  EXPECT_NE(svg.find(">Flame Graph</text>"), std::string::npos);
  // Subtitle: value type plus self-accounting counters.
  EXPECT_NE(svg.find(">cpu (nanoseconds); lost_samples=3, stack_errors=1</text>"), std::string::npos);
  // Total cpu is 18 samples * 10ms.
  EXPECT_NE(svg.find("fg:total=\"180000000\""), std::string::npos);
  EXPECT_NE(svg.find("<title>all (180,000,000 nanoseconds, 100.00%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>main (180,000,000 nanoseconds, 100.00%)</title>"), std::string::npos);
  // tick_physics appears under tick_loop (9 samples) and under the recursion (2).
  EXPECT_NE(svg.find("<title>tick_physics (90,000,000 nanoseconds, 50.00%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>tick_physics (20,000,000 nanoseconds, 11.11%)</title>"), std::string::npos);

  FlameGraphOptions counts;
  counts.folded.value_index = 0;
  counts.subtitle = "custom <sub>";
  auto svg2 = *render_flamegraph_svg(make_sample_profile(), counts);
  EXPECT_NE(svg2.find("<title>tick_loop (14 samples, 77.78%)</title>"), std::string::npos);
  EXPECT_NE(svg2.find(">custom &lt;sub&gt;</text>"), std::string::npos);
}

TEST(FlameGraphSvg, EscapesNames) {
  auto svg = *render_flamegraph_svg(make_sample_profile());
  EXPECT_NE(svg.find("<title>std::vector&lt;int&gt;::push_back ("), std::string::npos);
  EXPECT_NE(svg.find("<title>operator&lt;&lt;(std::ostream&amp;, Vec3 const&amp;) ("), std::string::npos);
  EXPECT_NE(svg.find("<title>Foo&lt;Bar&gt;::operator()(char const*) &amp; &quot;x:y&quot; ("), std::string::npos);
  EXPECT_EQ(svg.find("std::vector<int>"), std::string::npos);
  EXPECT_EQ(svg.find("operator<<"), std::string::npos);

  // Hostile names: markup, CDATA end, control bytes, invalid UTF-8.
  Profile p = make_sample_profile();
  p.samples[0].frames[0].function = "evil]]><script>alert(1)</script>\x01\xff\xc3(";
  p.samples[1].frames[0].function = "naïve_ünïcode_名前";
  auto hostile = render_flamegraph_svg(p);
  ASSERT_TRUE(hostile);
  EXPECT_NE(hostile->find("evil]]&gt;&lt;script&gt;alert(1)&lt;/script&gt;" + std::string(3, '?') + "("), std::string::npos);
  EXPECT_NE(hostile->find("naïve_ünïcode_名前"), std::string::npos);
  expect_well_formed_xml(*hostile, "svg-hostile");
}

TEST(FlameGraphSvg, ColorsByKindAndDeterministic) {
  auto svg = *render_flamegraph_svg(make_sample_profile());
  std::regex fill(R"re(fill="rgb\((\d+),(\d+),(\d+)\)")re");
  std::smatch m;
  std::string kernel = frame_group(svg, "tcp_sendmsg");
  ASSERT_TRUE(std::regex_search(kernel, m, fill));
  EXPECT_LE(std::stoi(m[1]), 110);  // aqua: low red, high green/blue
  EXPECT_GE(std::stoi(m[2]), 165);
  std::string user = frame_group(svg, "tick_loop");
  ASSERT_TRUE(std::regex_search(user, m, fill));
  EXPECT_GE(std::stoi(m[1]), 205);  // warm
  EXPECT_LE(std::stoi(m[3]), 55);
  std::string unknown = frame_group(svg, "[unknown] in libgameplugin.so+0x1234");
  ASSERT_TRUE(std::regex_search(unknown, m, fill));
  EXPECT_EQ(m[1], m[2]);  // grey
  EXPECT_EQ(m[2], m[3]);

  Profile shuffled = make_sample_profile();
  std::reverse(shuffled.samples.begin(), shuffled.samples.end());
  EXPECT_EQ(svg, *render_flamegraph_svg(shuffled));
}

TEST(FlameGraphSvg, NarrowFramesOmittedButCounted) {
  FlameGraphOptions opts;
  opts.folded.value_index = 0;
  opts.width = 200;      // 180 px inner: 10 px per sample
  opts.min_width = 15;   // frames of one sample (10 px) are dropped
  auto svg = *render_flamegraph_svg(make_sample_profile(), opts);
  EXPECT_EQ(svg.find("<title>plugin_tick"), std::string::npos);
  EXPECT_EQ(svg.find("<title>Foo&lt;Bar&gt;"), std::string::npos);
  // plugin_tick + its unknown child, and the Foo frame.
  EXPECT_NE(svg.find("fg:omitted=\"3\""), std::string::npos);
  // Parents keep the omitted value.
  EXPECT_NE(svg.find("<title>main (18 samples, 100.00%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>tick_loop (14 samples, 77.78%)</title>"), std::string::npos);
  expect_well_formed_xml(svg, "svg-narrow");
}

TEST(FlameGraphSvg, InvertedPutsRootOnTop) {
  FlameGraphOptions opts;
  auto normal = *render_flamegraph_svg(make_sample_profile(), opts);
  opts.inverted = true;
  auto icicle = *render_flamegraph_svg(make_sample_profile(), opts);
  std::regex root_y(R"re(<title>all \([^<]*</title><rect x="[0-9.]+" y="(\d+)")re");
  std::smatch a, b;
  ASSERT_TRUE(std::regex_search(normal, a, root_y));
  ASSERT_TRUE(std::regex_search(icicle, b, root_y));
  EXPECT_GT(std::stoi(a[1]), std::stoi(b[1]));
  EXPECT_EQ(std::stoi(b[1]), 12 * 5);  // just under the title area
  testing::expect_matches_golden("sample_icicle.svg", icicle);
}

TEST(FlameGraphSvg, EmptyProfileStillRenders) {
  Profile p;
  p.sample_types = {{"samples", "count"}};
  auto svg = render_flamegraph_svg(p);
  ASSERT_TRUE(svg);
  EXPECT_NE(svg->find("No stacks"), std::string::npos);
  expect_well_formed_xml(*svg, "svg-empty");
}

TEST(FlameGraphSvg, RejectsBadOptions) {
  FlameGraphOptions opts;
  opts.width = 10;
  EXPECT_FALSE(render_flamegraph_svg(make_sample_profile(), opts));
  opts = {};
  opts.folded.value_index = 9;
  EXPECT_FALSE(render_flamegraph_svg(make_sample_profile(), opts));
}

}  // namespace
}  // namespace tickprobe

namespace tickprobe {
namespace {

// The embedded script, run by node against a small fake DOM built from the
// SVG (flamegraph_js_harness.js): hover, zoom, reset, search, matched %.
// node comes from the nodejs package (scripts/bootstrap.sh).
TEST(FlameGraphSvg, ScriptZoomsAndSearches) {
  auto svg = render_flamegraph_svg(make_sample_profile());
  ASSERT_TRUE(svg);
  std::string dir = testing::make_temp_dir("svg-js");
  std::string path = dir + "/graph.svg";
  testing::write_file(path, *svg);
  std::string out;
  ASSERT_EQ(testing::run_command("command -v node", &out), 0)
      << "node not found\nhint: run scripts/bootstrap.sh (installs nodejs)";
  std::string harness = std::string(TICKPROBE_SOURCE_DIR) + "/tests/unit/exporters/flamegraph_js_harness.js";
  int rc = testing::run_command("node '" + harness + "' '" + path + "'", &out, true);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "OK\n");
  if (rc == 0) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tickprobe
