#include "exporters/tls_report.h"

#include <cstdio>

namespace tickprobe {
namespace {

std::string fmt_ns(double ns) {
  char buf[32];
  if (ns >= 1e9) std::snprintf(buf, sizeof(buf), "%.2f s", ns / 1e9);
  else if (ns >= 1e6) std::snprintf(buf, sizeof(buf), "%.2f ms", ns / 1e6);
  else if (ns >= 1e3) std::snprintf(buf, sizeof(buf), "%.1f us", ns / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.0f ns", ns);
  return buf;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

nlohmann::json hist_json(const LatencyHistogram& h) {
  return {{"count", h.count()},
          {"mean_ns", h.mean()},
          {"p50_ns", h.quantile(0.5)},
          {"p90_ns", h.quantile(0.9)},
          {"p99_ns", h.quantile(0.99)},
          {"max_ns", h.max()}};
}

std::string hist_text(const LatencyHistogram& h) {
  if (!h.count()) return "-";
  return "p50 " + fmt_ns(h.quantile(0.5)) + "  p99 " + fmt_ns(h.quantile(0.99)) + "  max " +
         fmt_ns(static_cast<double>(h.max())) + "  mean " + fmt_ns(h.mean());
}

std::string cut(std::string s, size_t width) {
  if (width > 3 && s.size() > width) s = s.substr(0, width - 3) + "...";
  return s;
}

}  // namespace

nlohmann::json tls_report_json(const TlsReport& r) {
  nlohmann::json j;
  j["pid"] = r.pid;
  j["comm"] = r.comm;
  j["duration_s"] = r.duration_s;
  j["library"] = r.library;
  j["found_by"] = r.found_by;
  j["attached"] = r.attached;
  j["notes"] = r.notes;
  j["handshakes"] = {{"total", r.total},
                     {"completed", r.completed},
                     {"failed", r.failed},
                     {"abandoned", r.abandoned},
                     {"rate_per_s", r.rate_per_s},
                     {"completed_per_s", r.completed_per_s}};
  nlohmann::json outcomes = nlohmann::json::array();
  for (const auto& o : r.outcomes)
    outcomes.push_back({{"side", o.side},
                        {"result", o.result},
                        {"count", o.count},
                        {"calls", o.calls},
                        {"cpu_ns", o.cpu_ns},
                        {"latency", hist_json(o.latency)},
                        {"cpu", hist_json(o.cpu)}});
  j["outcomes"] = outcomes;
  j["latency"] = hist_json(r.latency);
  j["cpu"] = hist_json(r.cpu);
  j["mean_calls"] = r.mean_calls;
  j["cpu_share_of_latency"] = r.cpu_share_of_latency;
  nlohmann::json worst = nlohmann::json::array();
  for (const auto& h : r.worst)
    worst.push_back({{"pid", h.pid},
                     {"tid", h.tid},
                     {"side", h.side},
                     {"result", h.result},
                     {"latency_ns", h.latency_ns()},
                     {"cpu_ns", h.cpu_ns},
                     {"calls", h.calls},
                     {"peer", h.peer},
                     {"fd", h.fd},
                     {"last_ret", h.last_ret}});
  j["worst"] = worst;
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& s : r.top_stacks) stacks.push_back({{"samples", s.samples}, {"share", s.share}, {"frames", s.frames}});
  j["cpu_profile"] = {{"event", r.sample_event},
                      {"samples", r.cpu_samples},
                      {"share_reaching_openssl", r.share_reaching_openssl},
                      {"share_reaching_caller", r.share_reaching_caller},
                      {"top_stacks", stacks}};
  j["counters"] = r.counters;
  return j;
}

std::string tls_report_text(const TlsReport& r, size_t width) {
  std::string out;
  auto line = [&](const std::string& s) { out += cut(s, width) + "\n"; };
  line("TLS handshakes of " + std::to_string(r.pid) + " (" + r.comm + ") over " + fmt("%.1f", r.duration_s) +
       " s; OpenSSL in " + r.library);
  line("  finished    " + std::to_string(r.total) + " (" + fmt("%.2f", r.rate_per_s) + "/s): " +
       std::to_string(r.completed) + " completed (" + fmt("%.2f", r.completed_per_s) + "/s), " +
       std::to_string(r.failed) + " failed, " + std::to_string(r.abandoned) + " abandoned");
  for (const auto& o : r.outcomes)
    line("  " + o.side + " " + o.result + ": " + std::to_string(o.count) + "  latency " + hist_text(o.latency));
  if (r.completed) {
    line("  latency     " + hist_text(r.latency) + "   (first call to completion; " + fmt("%.1f", r.mean_calls) +
         " calls per handshake)");
    line("  CPU         " + hist_text(r.cpu) + "   (per handshake, on CPU inside handshake calls; " +
         fmt("%.0f", r.cpu_share_of_latency * 100) + "% of the latency)");
  }
  if (!r.worst.empty()) {
    out += "\nslowest handshakes\n";
    char buf[256];
    std::snprintf(buf, sizeof(buf), "  %-11s %-11s %6s  %-7s %-10s %s\n", "latency", "cpu", "calls", "side", "result",
                  "peer");
    out += buf;
    for (const auto& h : r.worst) {
      std::snprintf(buf, sizeof(buf), "  %-11s %-11s %6u  %-7s %-10s %s\n", fmt_ns(static_cast<double>(h.latency_ns())).c_str(),
                    fmt_ns(static_cast<double>(h.cpu_ns)).c_str(), h.calls, h.side.c_str(), h.result.c_str(),
                    h.peer.empty() ? (h.fd >= 0 ? ("fd " + std::to_string(h.fd)).c_str() : "?") : h.peer.c_str());
      out += cut(buf, width + 1);
    }
  }
  out += "\nhandshake CPU";
  if (!r.sample_event.empty()) out += " (" + r.sample_event + ")";
  out += ": " + std::to_string(r.cpu_samples) + " samples";
  if (r.cpu_samples)
    out += "; stacks reach OpenSSL's handshake code in " + fmt("%.0f", r.share_reaching_openssl * 100) +
           "%, its caller in " + fmt("%.0f", r.share_reaching_caller * 100) + "%";
  out += "\n";
  for (const auto& s : r.top_stacks) {
    std::string stack;
    for (size_t i = 0; i < s.frames.size() && i < 12; i++) stack += (i ? " <- " : "") + s.frames[i];
    if (s.frames.size() > 12) stack += " <- ...";
    line("  " + fmt("%5.1f%%", s.share * 100) + "  " + stack);
  }
  if (!r.notes.empty()) {
    out += "\nnotes\n";
    for (const auto& n : r.notes) line("  " + n);
  }
  std::string counters;
  for (const auto& [k, v] : r.counters) counters += " " + k + "=" + std::to_string(v);
  if (!counters.empty()) line("# self-accounting:" + counters);
  return out;
}

}  // namespace tickprobe
