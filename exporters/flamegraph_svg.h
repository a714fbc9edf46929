// Interactive SVG flame graph, self-contained (inline CSS and JavaScript, no
// external resources), in the spirit of Brendan Gregg's flamegraph.pl.
//
// What the file does on its own (opened directly in a browser):
//  - hover a frame: the details line shows "name (value unit, percent)";
//    every frame also has a <title> tooltip with the same text;
//  - click a frame: zoom so it fills the width (ancestors stay, faded);
//    "Reset Zoom", or Escape, restores the full view;
//  - "Search" (or Ctrl-F / F3): a regular expression; matching frames turn
//    magenta and "Matched: x%" shows their share of the total, without
//    double counting nested matches; click again ("Reset Search") to clear.
// Colors follow the frame kind and are a pure function of the name (FNV-1a):
// user frames warm (red-yellow), kernel frames aqua, unknown frames grey,
// process/thread frames purple.
//
// Layout: the root "all" frame spans the full width; children are sorted by
// name. A frame narrower than min_width pixels is not drawn (nor its
// children) but its value still counts in its parent's width; the count of
// such frames is recorded in the SVG (fg:omitted on the frames group).
// Output is deterministic: equal Profile and options give equal bytes.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "exporters/folded.h"
#include "exporters/sink.h"
#include "model/profile.h"

namespace tickprobe {

struct FlameGraphOptions {
  // Value index, process/thread prefix frames, kernel annotation.
  FoldedOptions folded;
  std::string title = "Flame Graph";
  // Empty: "<type> (<unit>)" of the drawn value, followed by the profile's
  // counters ("lost_samples=3, stack_errors=1") when there are any.
  std::string subtitle;
  int width = 1200;          // px, whole image
  double min_width = 0.1;    // px; narrower frames are omitted
  int frame_height = 16;     // px
  int font_size = 12;        // px
  bool inverted = false;     // icicle graph: root at the top
  // Unit word in tooltips; empty: "samples" for count-like units, else the
  // sample type's unit.
  std::string count_name;
};

Result<std::string> render_flamegraph_svg(const Profile& profile, const FlameGraphOptions& options = {});

Status write_flamegraph_svg(const Profile& profile, const FlameGraphOptions& options, Sink& sink);

// XML text/attribute escaping (& < > " '), after replacing invalid UTF-8
// and control characters (other than tab) with '?', so any symbol name
// yields well-formed XML.
std::string escape_xml(std::string_view text);

}  // namespace tickprobe
