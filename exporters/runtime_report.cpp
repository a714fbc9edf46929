#include "runtime_report.h"

#include <cmath>
#include <cstdio>

namespace tickprobe {

namespace {

using nlohmann::json;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string cut(const std::string& s, size_t width) {
  return s.size() > width ? s.substr(0, width - 3) + "..." : s;
}

std::string dur(double ns) {
  if (ns >= 1e9) return fmt("%.2f s", ns / 1e9);
  if (ns >= 1e6) return fmt("%.2f ms", ns / 1e6);
  if (ns >= 1e3) return fmt("%.1f us", ns / 1e3);
  return fmt("%.0f ns", ns);
}

json hist_json(const LatencyHistogram& h) {
  json j;
  j["count"] = h.count();
  j["total_ns"] = h.sum();
  j["max_ns"] = h.max();
  j["mean_ns"] = h.mean();
  j["p50_ns"] = h.quantile(0.5);
  j["p90_ns"] = h.quantile(0.9);
  j["p99_ns"] = h.quantile(0.99);
  json buckets = json::array();
  for (uint32_t i = 0; i < LatencyHistogram::kSlots; i++)
    if (h.slots()[i])
      buckets.push_back({{"ge_ns", LatencyHistogram::slot_lower(i)},
                         {"lt_ns", LatencyHistogram::slot_upper(i)},
                         {"count", h.slots()[i]}});
  j["buckets"] = buckets;
  return j;
}

std::string hist_line(const std::string& name, const LatencyHistogram& h) {
  if (h.count() == 0) return "  " + name + ": none\n";
  return "  " + name + ": " + std::to_string(h.count()) + "  total " + dur(static_cast<double>(h.sum())) + "  p50 " +
         dur(h.quantile(0.5)) + "  p90 " + dur(h.quantile(0.9)) + "  p99 " + dur(h.quantile(0.99)) + "  max " +
         dur(static_cast<double>(h.max())) + "\n";
}

// A small log-scale bar chart of a histogram (octave rows).
std::string hist_bars(const LatencyHistogram& h) {
  if (h.count() == 0) return "";
  std::vector<std::pair<uint64_t, uint64_t>> rows;  // octave lower bound, count
  uint64_t maxc = 0;
  int first = -1, last = -1;
  for (uint32_t oct = 0; oct < LatencyHistogram::kSlots / 4; oct++) {
    uint64_t c = 0;
    for (uint32_t k = 0; k < 4; k++) c += h.slots()[oct * 4 + k];
    rows.push_back({LatencyHistogram::slot_lower(oct * 4), c});
    if (c) {
      if (first < 0) first = static_cast<int>(oct);
      last = static_cast<int>(oct);
    }
    maxc = std::max(maxc, c);
  }
  std::string out;
  for (int i = first; i <= last && i >= 0; i++) {
    const auto& [lo, c] = rows[static_cast<size_t>(i)];
    size_t bar = maxc ? static_cast<size_t>(std::ceil(40.0 * static_cast<double>(c) / static_cast<double>(maxc))) : 0;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "    %10s .. %-10s %8llu |", dur(static_cast<double>(lo)).c_str(),
                  dur(static_cast<double>(lo * 2)).c_str(), static_cast<unsigned long long>(c));
    out += buf + std::string(c ? bar : 0, '#') + "\n";
  }
  return out;
}

json stack_json(const StackView& s) { return {{"id", s.hash}, {"frames", s.frames}}; }

std::string stack_text(const StackView& s, size_t width, size_t max_frames = 12) {
  std::string out;
  for (size_t i = 0; i < s.frames.size() && i < max_frames; i++) out += "      " + cut(s.frames[i], width - 6) + "\n";
  if (s.frames.size() > max_frames) out += "      ... " + std::to_string(s.frames.size() - max_frames) + " more\n";
  return out;
}

json counters_json(const std::map<std::string, uint64_t>& c) {
  json j = json::object();
  for (const auto& [k, v] : c) j[k] = v;
  return j;
}

std::string counters_text(const std::map<std::string, uint64_t>& c) {
  std::string s;
  for (const auto& [k, v] : c)
    if (v) s += " " + k + "=" + std::to_string(v);
  return s.empty() ? "" : "# self-accounting:" + s + "\n";
}

std::string notes_text(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += "note: " + n + "\n";
  return s;
}

}  // namespace

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(b) >= 1024 && u < 4) {
    b /= 1024;
    u++;
  }
  return fmt(u == 0 ? "%.0f" : "%.1f", b) + " " + units[u];
}

// ---------------------------------------------------------------- coroutines

json coro_report_json(const CoroReport& r) {
  json j;
  j["pid"] = r.pid;
  j["comm"] = r.comm;
  j["runtime"] = r.runtime;
  j["duration_s"] = r.duration_s;
  j["window"] = {{"start_ns", r.window_start_ns}, {"end_ns", r.window_end_ns}};
  j["live"] = r.live;
  j["created"] = r.counts.created;
  j["destroyed"] = r.counts.destroyed;
  j["destroyed_before_attach"] = r.counts.destroyed_untracked;
  j["adopted"] = r.counts.adopted;
  j["untracked"] = r.counts.untracked;
  j["resumes"] = r.counts.resumes;
  j["create_rate_per_s"] = r.create_rate;
  j["destroy_rate_per_s"] = r.destroy_rate;
  j["lifetime"] = hist_json(r.lifetime);
  if (r.run.count()) j["run_per_resume"] = hist_json(r.run);
  if (r.suspended.count()) j["suspended"] = hist_json(r.suspended);
  json names = json::array();
  for (const auto& n : r.by_name)
    names.push_back({{"name", n.name}, {"created", n.created}, {"destroyed", n.destroyed}, {"live", n.live}});
  j["by_name"] = names;
  j["min_age_s"] = r.min_age_s;
  j["leak_suspects"] = r.suspects;
  json groups = json::array();
  for (const auto& g : r.groups)
    groups.push_back({{"name", g.name},
                      {"count", g.count},
                      {"oldest_age_s", g.oldest_age_s},
                      {"youngest_age_s", g.youngest_age_s},
                      {"created_before_attach", g.adopted},
                      {"stack", stack_json(g.stack)}});
  j["leaks"] = groups;
  j["counters"] = counters_json(r.counters);
  j["notes"] = r.notes;
  return j;
}

std::string coro_report_text(const CoroReport& r, size_t width) {
  std::string s = "coroutines of pid " + std::to_string(r.pid) + " (" + r.comm + "), runtime " + r.runtime + ", " +
                  fmt("%.1f", r.duration_s) + " s\n";
  s += "  live " + std::to_string(r.live) + "  created " + std::to_string(r.counts.created) + " (" +
       fmt("%.1f", r.create_rate) + "/s)  destroyed " + std::to_string(r.counts.destroyed + r.counts.destroyed_untracked) +
       " (" + fmt("%.1f", r.destroy_rate) + "/s)\n";
  s += hist_line("lifetime", r.lifetime);
  s += hist_bars(r.lifetime);
  if (r.run.count()) s += hist_line("run per resume", r.run);
  if (r.suspended.count()) s += hist_line("suspended", r.suspended);
  if (!r.by_name.empty()) {
    s += "\n  by name:            created  destroyed       live\n";
    for (const auto& n : r.by_name) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "    %-16s %10llu %10llu %10lld\n", cut(n.name, 16).c_str(),
                    static_cast<unsigned long long>(n.created), static_cast<unsigned long long>(n.destroyed),
                    static_cast<long long>(n.live));
      s += buf;
    }
  }
  s += "\n";
  if (r.groups.empty()) {
    s += "no coroutine leak: no live coroutine is older than " + fmt("%.0f", r.min_age_s) + " s\n";
  } else {
    s += "LEAKED? " + std::to_string(r.suspects) + " live coroutines older than " + fmt("%.0f", r.min_age_s) +
         " s, by creation stack:\n";
    int i = 1;
    for (const auto& g : r.groups) {
      s += "  #" + std::to_string(i++) + " " + std::to_string(g.count) + " x " + g.name + "  oldest " +
           fmt("%.1f", g.oldest_age_s) + " s" + (g.adopted ? "+" : "") + "  youngest " + fmt("%.1f", g.youngest_age_s) +
           " s\n";
      s += stack_text(g.stack, width);
    }
  }
  s += notes_text(r.notes);
  s += counters_text(r.counters);
  return s;
}

// ---------------------------------------------------------------- pauses

json pause_report_json(const PauseReport& r) {
  json j;
  j["pid"] = r.pid;
  j["comm"] = r.comm;
  j["runtime"] = r.runtime;
  j["duration_s"] = r.duration_s;
  j["window"] = {{"start_ns", r.window_start_ns}, {"end_ns", r.window_end_ns}};
  json pauses = json::object();
  for (const auto& [kind, p] : r.pauses) pauses[kind] = hist_json(p.hist);
  j["pauses"] = pauses;
  if (r.tick) j["tick"] = hist_json(r.tick->hist);
  if (r.frame) j["frame"] = hist_json(r.frame->hist);
  j["budget_ns"] = r.budget_ns;
  j["budget_inferred"] = r.budget_inferred;
  j["frames"] = r.frames;
  j["hitches"] = r.hitches;
  j["hitches_by_cause"] = r.hitches_by_cause;
  json worst = json::array();
  for (const auto& h : r.worst_hitches) {
    json parts = json::array();
    for (const auto& p : h.parts)
      parts.push_back({{"cause", p.cause}, {"label", p.label}, {"ns", p.ns}, {"idle", p.idle}});
    worst.push_back({{"tick", h.frame.tick},
                     {"tid", h.frame.tid},
                     {"start_ns", h.frame.start_ns},
                     {"frame_ns", h.frame.frame_ns},
                     {"tick_ns", h.frame.tick_ns},
                     {"over_budget_ns", h.frame.frame_ns > h.budget_ns ? h.frame.frame_ns - h.budget_ns : 0},
                     {"dominant_cause", h.dominant_cause},
                     {"parts", parts},
                     {"summary", h.summary}});
  }
  j["worst_hitches"] = worst;
  json wp = json::array();
  for (const auto& p : r.worst_pauses) {
    json args = json::object();
    for (const auto& [k, v] : p.pause.args) args[k] = v;
    wp.push_back({{"kind", p.pause.kind},
                  {"duration_ns", p.pause.duration_ns},
                  {"tid", p.pause.tid},
                  {"tick", p.pause.tick},
                  {"args", args},
                  {"stack", stack_json(p.stack)}});
  }
  j["worst_pauses"] = wp;
  j["counters"] = counters_json(r.counters);
  j["notes"] = r.notes;
  return j;
}

std::string pause_report_text(const PauseReport& r, size_t width) {
  std::string s = "pauses and ticks of pid " + std::to_string(r.pid) + " (" + r.comm + "), runtime " + r.runtime +
                  ", " + fmt("%.1f", r.duration_s) + " s\n";
  for (const auto& [kind, p] : r.pauses) {
    s += hist_line(kind + " pauses", p.hist);
    s += hist_bars(p.hist);
  }
  if (r.tick) {
    s += hist_line("tick duration", r.tick->hist);
    s += hist_bars(r.tick->hist);
  }
  if (r.frame) s += hist_line("tick-to-tick", r.frame->hist);
  s += "\n";
  if (r.frames) {
    s += "hitches: " + std::to_string(r.hitches) + " of " + std::to_string(r.frames) + " ticks over budget " +
         format_ms(r.budget_ns) + (r.budget_inferred ? " (inferred from the tick rate; --budget-ms sets it)" : "") + "\n";
    for (const auto& [cause, n] : r.hitches_by_cause) s += "  " + cause + ": " + std::to_string(n) + "\n";
    if (!r.worst_hitches.empty()) {
      s += "worst hitches:\n";
      for (const auto& h : r.worst_hitches) s += "  " + cut(h.summary, width - 2) + "\n";
    }
  }
  if (!r.worst_pauses.empty()) {
    s += "\nlongest pauses:\n";
    for (const auto& p : r.worst_pauses) {
      std::string args;
      for (const auto& [k, v] : p.pause.args) args += " " + k + "=" + std::to_string(v);
      s += "  " + p.pause.kind + " " + dur(static_cast<double>(p.pause.duration_ns)) +
           (p.pause.tick ? " in tick " + std::to_string(p.pause.tick) : "") + args + "\n";
      s += stack_text(p.stack, width, 6);
    }
  }
  s += notes_text(r.notes);
  s += counters_text(r.counters);
  return s;
}

// ---------------------------------------------------------------- leaks

namespace {

json leak_stack_json(const LeakStack& l) {
  return {{"kind", l.kind == 1 ? "mmap" : "heap"},
          {"site", l.site},
          {"bytes", l.bytes},
          {"count", l.count},
          {"allocs", l.allocs},
          {"frees", l.frees},
          {"growth_bytes_per_s", l.verdict.growth_bytes_per_s},
          {"r2", l.verdict.r2},
          {"grew_in_fraction", l.verdict.up_fraction},
          {"oldest_age_s", l.oldest_age_s},
          {"leaking", l.verdict.leaking},
          {"why", l.verdict.why},
          {"stack", stack_json(l.stack)}};
}

std::string leak_stack_text(const LeakStack& l, int rank, size_t width, bool growth) {
  std::string s = "  #" + std::to_string(rank) + " ";
  if (growth) s += "+" + format_bytes(l.verdict.growth_bytes_per_s) + "/s  ";
  s += format_bytes(l.bytes) + " in " + fmt("%.0f", l.count) + " allocations" + (l.kind == 1 ? " (mmap)" : "") +
       "  oldest " + fmt("%.1f", l.oldest_age_s) + " s  (" + l.verdict.why + ")\n";
  return s + stack_text(l.stack, width);
}

}  // namespace

json leak_report_json(const LeakReport& r) {
  json j;
  j["pid"] = r.pid;
  j["comm"] = r.comm;
  j["duration_s"] = r.duration_s;
  j["window"] = {{"start_ns", r.window_start_ns}, {"end_ns", r.window_end_ns}};
  j["interval_s"] = r.interval_s;
  j["intervals"] = r.intervals;
  j["mode"] = r.sample_bytes ? "sampled" : "exact";
  j["sample_bytes"] = r.sample_bytes;
  j["attached"] = r.attached;
  json objects = json::array();
  for (const auto& o : r.attached_objects)
    objects.push_back({{"object", o.object}, {"reason", o.reason}, {"functions", o.functions}});
  j["attached_objects"] = objects;
  j["allocator_object"] = r.allocator_object;
  // "leak", "no_leak", or "no_verdict" (warning says why: nothing was seen).
  j["verdict"] = !r.warning.empty() ? "no_verdict" : r.leaks.empty() ? "no_leak" : "leak";
  j["warning"] = r.warning;
  j["outstanding_bytes"] = r.outstanding_bytes;
  j["outstanding_count"] = r.outstanding_count;
  json leaks = json::array();
  for (const auto& l : r.leaks) leaks.push_back(leak_stack_json(l));
  j["leaks"] = leaks;
  json largest = json::array();
  for (const auto& l : r.largest) largest.push_back(leak_stack_json(l));
  j["largest_not_leaking"] = largest;
  json growing = json::array();
  for (const auto& l : r.growing) growing.push_back(leak_stack_json(l));
  j["growing"] = growing;
  j["counters"] = counters_json(r.counters);
  j["notes"] = r.notes;
  if (r.coroutines) j["coroutines"] = coro_report_json(*r.coroutines);
  return j;
}

std::string leak_report_text(const LeakReport& r, size_t width) {
  auto c = r.counters;
  std::string s = "leak hunt on pid " + std::to_string(r.pid) + " (" + r.comm + "), " + fmt("%.1f", r.duration_s) +
                  " s in " + std::to_string(r.intervals) + " samples, " +
                  (r.sample_bytes ? "sampled every " + format_bytes(static_cast<double>(r.sample_bytes)) + " (estimates)"
                                  : std::string("exact")) +
                  "\n";
  if (!r.allocator_object.empty()) s += "  allocator: " + r.allocator_object + "\n";
  s += "  " + std::to_string(c["alloc_calls"]) + " allocations (" + format_bytes(static_cast<double>(c["alloc_bytes"])) +
       "), " + std::to_string(c["free_calls"]) + " frees; outstanding since attach: " + format_bytes(r.outstanding_bytes) +
       " in " + fmt("%.0f", r.outstanding_count) + " allocations\n\n";
  if (!r.warning.empty()) {
    s += "NO VERDICT: " + r.warning + "\n";
  } else if (r.leaks.empty()) {
    s += "no leak: no allocation stack grew steadily\n";
  } else {
    s += "LEAKING (outstanding bytes grow steadily), fastest first:\n";
    int i = 1;
    for (const auto& l : r.leaks) s += leak_stack_text(l, i++, width, true);
  }
  if (!r.growing.empty()) {
    s += "\ngrowing, but recycling most allocations (not judged a leak yet):\n";
    int i = 1;
    for (const auto& l : r.growing) s += leak_stack_text(l, i++, width, true);
  }
  if (!r.largest.empty()) {
    s += "\nlargest outstanding, not leaking (flat or stopped growing):\n";
    int i = 1;
    for (const auto& l : r.largest) s += leak_stack_text(l, i++, width, false);
  }
  s += notes_text(r.notes);
  s += counters_text(r.counters);
  if (r.coroutines) s += "\n" + coro_report_text(*r.coroutines, width);
  return s;
}

}  // namespace tickprobe
