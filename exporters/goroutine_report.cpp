#include "goroutine_report.h"

#include <cstdio>
#include <sstream>

namespace tickprobe {
namespace {

nlohmann::json frames_json(const std::vector<GoStackFrame>& frames) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : frames)
    out.push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}, {"inlined", f.inlined}});
  return out;
}

nlohmann::json group_json(const GoroutineGroup& g) {
  nlohmann::json j = {{"start_function", g.start_function}, {"created_by", g.created_by},   {"count", g.count},
                      {"first_count", g.first_count},       {"oldest_s", g.oldest_s},       {"states", g.states},
                      {"stack_state", g.stack_state},       {"stack", frames_json(g.stack)}};
  j["growth"] = {{"leaking", g.verdict.leaking},
                 {"per_second", g.verdict.growth_bytes_per_s},
                 {"r2", g.verdict.r2},
                 {"net", g.verdict.net_growth_bytes},
                 {"why", g.verdict.why}};
  return j;
}

void stack_text(std::ostringstream& out, const std::vector<GoStackFrame>& frames) {
  for (const auto& f : frames) {
    if (f.function == "runtime.goexit") continue;
    out << "      " << f.function << (f.inlined ? " (inlined)" : "") << "\n        " << f.file << ":" << f.line << "\n";
  }
}

}  // namespace

nlohmann::json goroutine_report_json(const GoroutineReport& r) {
  nlohmann::json j = {{"pid", r.pid},
                      {"executable", r.executable},
                      {"go_version", r.go_version},
                      {"layout_source", r.layout_source},
                      {"layout_verified", r.layout_verified},
                      {"allgs_source", r.allgs_source},
                      {"elapsed_s", r.elapsed_s},
                      {"interval_s", r.interval_s},
                      {"snapshots", r.snapshots},
                      {"live", r.live},
                      {"live_system", r.live_system},
                      {"allglen", r.allglen},
                      {"snapshot_ms", {{"mean", r.snapshot_ms_mean}, {"max", r.snapshot_ms_max}}},
                      {"counters", r.counters}};
  j["groups"] = nlohmann::json::array();
  for (const auto& g : r.groups) j["groups"].push_back(group_json(g));
  j["leaks"] = nlohmann::json::array();
  for (const auto& g : r.leaks) j["leaks"].push_back(group_json(g));
  return j;
}

std::string goroutine_report_text(const GoroutineReport& r, bool leaks) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line,
                "pid %d (%s, %s, offsets from %s%s): %lld goroutines (+%lld runtime), %zu snapshot%s in %.1fs, "
                "%.2f ms each\n",
                r.pid, r.executable.c_str(), r.go_version.c_str(), r.layout_source.c_str(),
                r.layout_verified ? "" : ", unverified", static_cast<long long>(r.live),
                static_cast<long long>(r.live_system), r.snapshots, r.snapshots == 1 ? "" : "s", r.elapsed_s,
                r.snapshot_ms_mean);
  out << line;
  if (leaks) {
    if (r.leaks.empty()) {
      out << "\nno goroutine group grew steadily";
      if (r.snapshots < 4) out << " (too few snapshots to judge: raise -d)";
      out << "\n";
    } else {
      out << "\ngrowing goroutine groups (leak suspects):\n";
    }
    for (const auto& g : r.leaks) {
      std::snprintf(line, sizeof line, "  %+.1f goroutines/s  (%lld -> %lld, r2 %.2f, oldest seen %.1fs)  %s\n",
                    g.verdict.growth_bytes_per_s, static_cast<long long>(g.first_count),
                    static_cast<long long>(g.count), g.verdict.r2, g.oldest_s, g.start_function.c_str());
      out << line << "    created by " << g.created_by << "\n    parked [" << g.stack_state << "]:\n";
      stack_text(out, g.stack);
    }
  }
  out << "\ngoroutines by start function and creation site:\n";
  for (const auto& g : r.groups) {
    std::string states;
    for (const auto& [s, n] : g.states) states += (states.empty() ? "" : ", ") + std::to_string(n) + " " + s;
    std::snprintf(line, sizeof line, "  %6lld  %s  [%s]\n", static_cast<long long>(g.count), g.start_function.c_str(),
                  states.c_str());
    out << line << "          created by " << g.created_by << "\n";
  }
  std::string counters;
  for (const auto& [k, v] : r.counters)
    if (v && k != "bytes_read") counters += " " + k + "=" + std::to_string(v);
  if (!counters.empty()) out << "# inconsistent reads (the target ran on):" << counters << "\n";
  return out.str();
}

}  // namespace tickprobe
