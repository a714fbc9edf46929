#include "exporters/flamegraph_svg.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

#include "exporters/top_table.h"

namespace tickprobe {

namespace {

// The script works on attributes the renderer writes on every frame group:
// fg:x / fg:w (offset and width in value units), fg:d (depth), and on the
// root: fg:total, fg:xpad, fg:fontsize, fg:unit. Positions are recomputed
// from these on zoom, so the static layout and the zoomed one agree.
constexpr const char* kScript = R"JS(
"use strict";
var svg, frames, details, unzoombtn, searchbtn, matchedtxt;
var total = 0, xpad = 10, innerWidth = 0, fontSize = 12, fontWidth = 0.59, unit = "";
var searching = false, zoomed = null;

function init(evt) {
  svg = document.documentElement;
  frames = document.getElementById("frames");
  details = document.getElementById("details").firstChild;
  unzoombtn = document.getElementById("unzoom");
  searchbtn = document.getElementById("search");
  matchedtxt = document.getElementById("matched");
  total = +svg.getAttribute("fg:total");
  xpad = +svg.getAttribute("fg:xpad");
  fontSize = +svg.getAttribute("fg:fontsize");
  unit = svg.getAttribute("fg:unit");
  innerWidth = +svg.getAttribute("width") - 2 * xpad;
  frames.addEventListener("click", function (e) {
    var g = frame_of(e.target);
    if (g) zoom(g);
  });
  frames.addEventListener("mouseover", function (e) {
    var g = frame_of(e.target);
    if (g) details.nodeValue = title_of(g);
  });
  frames.addEventListener("mouseout", function () { details.nodeValue = " "; });
  unzoombtn.addEventListener("click", unzoom);
  searchbtn.addEventListener("click", search_prompt);
  window.addEventListener("keydown", function (e) {
    if (e.keyCode === 114 || ((e.ctrlKey || e.metaKey) && e.keyCode === 70)) {
      e.preventDefault();
      search_prompt();
    } else if (e.key === "Escape") {
      unzoom();
    }
  });
}

function frame_of(node) {
  while (node && node !== frames) {
    if (node.nodeName === "g" && node.classList.contains("f")) return node;
    node = node.parentNode;
  }
  return null;
}
function num(g, name) { return +g.getAttribute("fg:" + name); }
function title_of(g) { return g.getElementsByTagName("title")[0].textContent; }
function name_of(g) {
  var t = title_of(g);
  var i = t.lastIndexOf(" (");
  return i < 0 ? t : t.substring(0, i);
}
function each_frame(fn) {
  var list = frames.getElementsByTagName("g");
  for (var i = 0; i < list.length; i++) fn(list[i]);
}

function place(g, x, w) {
  var rect = g.getElementsByTagName("rect")[0];
  var text = g.getElementsByTagName("text")[0];
  rect.setAttribute("x", x.toFixed(1));
  rect.setAttribute("width", Math.max(0, w).toFixed(1));
  text.setAttribute("x", (x + 3).toFixed(1));
  var fit = Math.floor((w - 6) / (fontSize * fontWidth));
  var name = name_of(g);
  if (fit < 3) text.textContent = "";
  else if (name.length > fit) text.textContent = name.substring(0, fit - 2) + "..";
  else text.textContent = name;
}

function zoom(node) {
  var zx = num(node, "x"), zw = num(node, "w"), zd = num(node, "d");
  if (zw <= 0) return;
  var scale = innerWidth / zw;
  zoomed = node;
  unzoombtn.classList.remove("hide");
  each_frame(function (g) {
    var x = num(g, "x"), w = num(g, "w"), d = num(g, "d");
    g.classList.remove("parent");
    if (d < zd && x <= zx && x + w >= zx + zw) {
      g.classList.remove("hide");
      g.classList.add("parent");
      place(g, xpad, innerWidth);
    } else if (d >= zd && x >= zx && x + w <= zx + zw) {
      g.classList.remove("hide");
      place(g, xpad + (x - zx) * scale, w * scale);
    } else {
      g.classList.add("hide");
    }
  });
}

function unzoom() {
  zoomed = null;
  unzoombtn.classList.add("hide");
  var scale = total > 0 ? innerWidth / total : 0;
  each_frame(function (g) {
    g.classList.remove("hide");
    g.classList.remove("parent");
    place(g, xpad + num(g, "x") * scale, num(g, "w") * scale);
  });
}

function search_prompt() {
  if (searching) {
    reset_search();
    return;
  }
  var term = prompt("Search frames (regular expression, e.g. ^tick_|vector)", "");
  if (term) search(term);
}

function reset_search() {
  searching = false;
  each_frame(function (g) {
    var rect = g.getElementsByTagName("rect")[0];
    var orig = g.getAttribute("fg:fill");
    if (orig) rect.setAttribute("fill", orig);
  });
  searchbtn.firstChild.nodeValue = "Search";
  searchbtn.classList.remove("show");
  matchedtxt.classList.add("hide");
}

function search(term) {
  var re;
  try {
    re = new RegExp(term);
  } catch (e) {
    re = new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  }
  // Matched share: nested matches (a matching frame under another) must not
  // be counted twice, so keep the widest match per x range.
  var spans = [];
  each_frame(function (g) {
    var rect = g.getElementsByTagName("rect")[0];
    if (!re.test(name_of(g))) return;
    rect.setAttribute("fill", "rgb(230,0,230)");
    spans.push([num(g, "x"), num(g, "w")]);
  });
  if (spans.length === 0) return;
  searching = true;
  searchbtn.firstChild.nodeValue = "Reset Search";
  searchbtn.classList.add("show");
  spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
  var matched = 0, end = -1;
  for (var i = 0; i < spans.length; i++) {
    var x = spans[i][0], w = spans[i][1];
    if (x >= end) {
      matched += w;
      end = x + w;
    } else if (x + w > end) {
      matched += x + w - end;
      end = x + w;
    }
  }
  var pct = total > 0 ? (100 * matched / total) : 0;
  matchedtxt.firstChild.nodeValue = "Matched: " + pct.toFixed(2) + "% (" + matched + " " + unit + ")";
  matchedtxt.classList.remove("hide");
}
)JS";

constexpr const char* kStyle = R"CSS(
text { font-family: Verdana, "DejaVu Sans", sans-serif; fill: rgb(0,0,0); }
#title { text-anchor: middle; font-weight: bold; }
#subtitle { text-anchor: middle; fill: rgb(110,110,110); }
#unzoom, #search { cursor: pointer; }
#unzoom:hover, #search:hover, #search.show { fill: rgb(0,0,200); }
#matched { text-anchor: end; }
.hide { display: none; }
g.parent { opacity: 0.5; }
g.f { cursor: pointer; }
g.f:hover > rect { stroke: rgb(0,0,0); stroke-width: 0.5; }
g.f text { pointer-events: none; }
)CSS";

struct Node {
  std::string name;
  FrameKind kind = FrameKind::kUser;
  int64_t value = 0;
  std::map<std::string, std::unique_ptr<Node>> children;  // sorted by name
};

uint32_t fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string color_for(const std::string& name, FrameKind kind) {
  uint32_t h = fnv1a(name);
  double v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0, v3 = ((h >> 16) & 0xff) / 255.0;
  int r, g, b;
  switch (kind) {
    case FrameKind::kKernel:  // aqua
      r = 50 + static_cast<int>(60 * v1);
      g = 165 + static_cast<int>(55 * v2);
      b = 165 + static_cast<int>(55 * v3);
      break;
    case FrameKind::kUnknown:  // grey
      r = g = b = 160 + static_cast<int>(50 * v1);
      break;
    case FrameKind::kProcess:  // purple
      r = 190 + static_cast<int>(65 * v1);
      g = 80 + static_cast<int>(60 * v1);
      b = 190 + static_cast<int>(65 * v1);
      break;
    case FrameKind::kUser:
    default:  // hot: red to yellow
      r = 205 + static_cast<int>(50 * v3);
      g = static_cast<int>(230 * v1);
      b = static_cast<int>(55 * v2);
      break;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,%d)", r, g, b);
  return buf;
}

std::string fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string percent(int64_t part, int64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

// Cut to at most max_bytes without splitting a UTF-8 sequence.
std::string utf8_prefix(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Same rule as the script's place(), so the static text matches what a zoom
// followed by a reset shows.
std::string fitted_label(const std::string& name, double width_px, int font_size) {
  int fit = static_cast<int>((width_px - 6) / (font_size * 0.59));
  if (fit < 3) return {};
  if (utf8_length(name) <= static_cast<size_t>(fit)) return name;
  // Byte-based cut is conservative for multibyte names (it keeps fewer chars).
  return utf8_prefix(name, static_cast<size_t>(fit - 2)) + "..";
}

class SvgRenderer {
 public:
  SvgRenderer(const FlameGraphOptions& options, int64_t total, std::string unit)
      : options_(options), total_(total), unit_(std::move(unit)) {
    xpad_ = 10;
    inner_width_ = std::max(1, options.width - 2 * xpad_);
    scale_ = total > 0 ? inner_width_ / static_cast<double>(total) : 0;
  }

  // Depth of the deepest drawn frame, to size the image before drawing.
  int drawn_depth(const Node& node, int depth) const {
    int deepest = depth;
    for (const auto& [name, child] : node.children) {
      if (child->value * scale_ < options_.min_width) continue;
      deepest = std::max(deepest, drawn_depth(*child, depth + 1));
    }
    return deepest;
  }

  void draw(const Node& node, int64_t x, int depth, int image_height, int ypad1, int ypad2, std::string& out) {
    double px = xpad_ + x * scale_;
    double pw = node.value * scale_;
    int fh = options_.frame_height;
    int y = options_.inverted ? ypad1 + depth * fh : image_height - ypad2 - (depth + 1) * fh;
    std::string name = escape_xml(node.name);
    std::string fill = color_for(node.name, node.kind);
    std::string tooltip = name + " (" + format_thousands(node.value) + " " + escape_xml(unit_) + ", " +
                          percent(node.value, total_) + ")";
    out += "<g class=\"f\" fg:x=\"" + std::to_string(x) + "\" fg:w=\"" + std::to_string(node.value) +
           "\" fg:d=\"" + std::to_string(depth) + "\" fg:fill=\"" + fill + "\"><title>" + tooltip +
           "</title><rect x=\"" + fixed1(px) + "\" y=\"" + std::to_string(y) + "\" width=\"" + fixed1(pw) +
           "\" height=\"" + std::to_string(fh - 1) + "\" fill=\"" + fill + "\" rx=\"2\" ry=\"2\"/><text x=\"" +
           fixed1(px + 3) + "\" y=\"" + fixed1(y + fh - 4.5) + "\">" +
           escape_xml(fitted_label(node.name, pw, options_.font_size)) + "</text></g>\n";
    int64_t child_x = x;
    for (const auto& [child_name, child] : node.children) {
      if (child->value * scale_ < options_.min_width) {
        omitted_ += count_nodes(*child);
      } else {
        draw(*child, child_x, depth + 1, image_height, ypad1, ypad2, out);
      }
      child_x += child->value;
    }
  }

  int xpad() const { return xpad_; }
  uint64_t omitted() const { return omitted_; }

 private:
  static uint64_t count_nodes(const Node& node) {
    uint64_t n = 1;
    for (const auto& [name, child] : node.children) n += count_nodes(*child);
    return n;
  }

  const FlameGraphOptions& options_;
  int64_t total_;
  std::string unit_;
  int xpad_;
  int inner_width_;
  double scale_;
  uint64_t omitted_ = 0;
};

bool is_count_unit(const std::string& unit) { return unit.empty() || unit == "count" || unit == "samples"; }

}  // namespace

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default:
          // XML 1.0 forbids most control characters, even escaped.
          out += (c < 0x20 && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Validate one UTF-8 sequence; anything malformed becomes '?'.
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c >= 0xF5) len = 0;
    bool ok = len != 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) ok = false;  // overlong / surrogate
      if (ok && c == 0xEF && c1 == 0xBF && static_cast<unsigned char>(text[i + 2]) >= 0xBE) ok = false;  // U+FFFE/F
    }
    if (ok && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) ok = false;
    }
    if (!ok) {
      out += '?';
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

Result<std::string> render_flamegraph_svg(const Profile& profile, const FlameGraphOptions& options) {
  if (options.width < 100) return Error("flame graph width must be at least 100 px", "pass --width 1200");
  if (options.frame_height < 4 || options.font_size < 4) return Error("flame graph frame height and font size must be >= 4");
  auto stacks = fold_stacks(profile, options.folded);
  if (!stacks) return stacks.error();
  size_t index = *resolve_value_index(profile, options.folded.value_index);
  const ValueType& vt = profile.sample_types[index];

  Node root;
  root.name = "all";
  for (const FoldedStack& stack : *stacks) {
    // Negative values (differential profiles) have no width; leave them out.
    if (stack.value <= 0) continue;
    Node* node = &root;
    root.value += stack.value;
    for (const FoldedFrame& frame : stack.frames) {
      auto& child = node->children[frame.name];
      if (!child) {
        child = std::make_unique<Node>();
        child->name = frame.name;
        child->kind = frame.kind;
      }
      child->value += stack.value;
      node = child.get();
    }
  }

  std::string unit = options.count_name;
  if (unit.empty()) unit = is_count_unit(vt.unit) ? "samples" : vt.unit;
  std::string subtitle = options.subtitle;
  if (subtitle.empty()) {
    subtitle = vt.type + (vt.unit.empty() ? "" : " (" + vt.unit + ")");
    std::string counters;
    for (const auto& [name, value] : profile.counters) {
      counters += (counters.empty() ? "" : ", ") + name + "=" + std::to_string(value);
    }
    if (!counters.empty()) subtitle += "; " + counters;
  }

  SvgRenderer renderer(options, root.value, unit);
  const int fs = options.font_size;
  const int ypad1 = fs * 5;      // title, subtitle, buttons
  const int ypad2 = fs * 2 + 10; // details line
  int depth = root.value > 0 ? renderer.drawn_depth(root, 0) : 0;
  int height = (depth + 1) * options.frame_height + ypad1 + ypad2;
  std::string frames;
  if (root.value > 0) renderer.draw(root, 0, 0, height, ypad1, ypad2, frames);

  const int w = options.width;
  const int xpad = renderer.xpad();
  std::string out;
  out.reserve(frames.size() + 8192);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  out += "<svg version=\"1.1\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(height) +
         "\" viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(height) +
         "\" onload=\"init(evt)\" xmlns=\"http://www.w3.org/2000/svg\" "
         "xmlns:fg=\"urn:tickprobe:flamegraph\" fg:total=\"" +
         std::to_string(root.value) + "\" fg:xpad=\"" + std::to_string(xpad) + "\" fg:fontsize=\"" +
         std::to_string(fs) + "\" fg:unit=\"" + escape_xml(unit) + "\" font-size=\"" + std::to_string(fs) + "\">\n";
  out += "<style type=\"text/css\"><![CDATA[" + std::string(kStyle) + "]]></style>\n";
  out += "<script type=\"text/ecmascript\"><![CDATA[" + std::string(kScript) + "]]></script>\n";
  out += "<defs><linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
         "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#eeeeb0\" offset=\"95%\"/>"
         "</linearGradient></defs>\n";
  out += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(height) +
         "\" fill=\"url(#background)\"/>\n";
  out += "<text id=\"title\" x=\"" + std::to_string(w / 2) + "\" y=\"" + std::to_string(fs * 2) +
         "\" font-size=\"" + std::to_string(fs + 5) + "\">" + escape_xml(options.title) + "</text>\n";
  out += "<text id=\"subtitle\" x=\"" + std::to_string(w / 2) + "\" y=\"" + std::to_string(fs * 3 + 4) + "\">" +
         escape_xml(subtitle) + "</text>\n";
  out += "<text id=\"unzoom\" class=\"hide\" x=\"" + std::to_string(xpad) + "\" y=\"" + std::to_string(fs * 2) +
         "\">Reset Zoom</text>\n";
  out += "<text id=\"search\" x=\"" + std::to_string(w - xpad - 100) + "\" y=\"" + std::to_string(fs * 2) +
         "\">Search</text>\n";
  std::string details = root.value > 0 ? " " : "No stacks: the profile has no samples with a non-zero value.";
  out += "<text id=\"details\" x=\"" + std::to_string(xpad) + "\" y=\"" + std::to_string(height - ypad2 / 2) +
         "\">" + escape_xml(details) + "</text>\n";
  out += "<text id=\"matched\" class=\"hide\" x=\"" + std::to_string(w - xpad) + "\" y=\"" +
         std::to_string(height - ypad2 / 2) + "\"> </text>\n";
  out += "<g id=\"frames\" fg:omitted=\"" + std::to_string(renderer.omitted()) + "\">\n";
  out += frames;
  out += "</g>\n</svg>\n";
  return out;
}

Status write_flamegraph_svg(const Profile& profile, const FlameGraphOptions& options, Sink& sink) {
  auto svg = render_flamegraph_svg(profile, options);
  if (!svg) return svg.error();
  return write_and_commit(sink, *svg);
}

}  // namespace tickprobe
