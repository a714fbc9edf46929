// `tickprobe growth`: where a process's memory grows, at no cost per malloc
// (collector/probes/growth.h): first-touch page faults on anonymous memory,
// brk and anonymous mmap, by user stack.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/commands.h"
#include "flamegraph_svg.h"
#include "folded.h"
#include "json_profile.h"
#include "pprof.h"
#include "runtime/hunts.h"
#include "sink.h"
#include "top_table.h"

namespace tickprobe::cli {
namespace {

struct GrowthArgs {
  GrowthHuntOptions hunt;
  std::string output;
  std::string format = "auto";
  std::string value = "page_fault_space";
  bool json = false;
  size_t top = 20;
};

std::string infer_format(const std::string& output) {
  auto ends = [&](const char* s) { return output.size() >= std::strlen(s) && output.ends_with(s); };
  if (output.empty() || output == "-") return "top";
  if (ends(".svg")) return "svg";
  if (ends(".pb.gz") || ends(".pprof") || ends(".pb")) return "pprof";
  if (ends(".json")) return "json";
  return "folded";
}

Status write_growth(Profile& profile, const GrowthArgs& a) {
  for (size_t i = 0; i < profile.sample_types.size(); ++i)
    if (profile.sample_types[i].type == a.value) profile.default_value_index = i;
  std::string format = a.json ? "json" : a.format == "auto" ? infer_format(a.output) : a.format;
  auto opened = open_sink(a.output.empty() ? "-" : a.output);
  if (!opened) return opened.error();
  std::unique_ptr<Sink> sink = opened.take();
  if (format == "folded") return write_folded(profile, {}, *sink);
  if (format == "pprof") return write_pprof(profile, {}, *sink);
  if (format == "json") {
    JsonProfileOptions o;
    o.top_limit = a.top;
    o.indent = 2;
    return write_json_profile(profile, o, *sink);
  }
  if (format == "svg") {
    FlameGraphOptions o;
    o.title = "Memory Growth Flame Graph (" + a.value + ")";
    return write_flamegraph_svg(profile, o, *sink);
  }
  TopTableOptions o;
  o.limit = a.top;
  auto t = compute_top_table(profile, o);
  if (!t) return t.error();
  std::string text = render_top_table(*t);
  for (const auto& c : profile.comments) text += "# " + c + "\n";
  std::string counters;
  for (const auto& [k, v] : profile.counters)
    if (v) counters += " " + k + "=" + std::to_string(v);
  if (!counters.empty()) text += "# self-accounting:" + counters + "\n";
  if (auto st = sink->write(text); !st) return st;
  return sink->commit();
}

}  // namespace

void register_growth(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<GrowthArgs>();
  auto* cmd = app.add_subcommand(
      "growth",
      "memory growth per stack at no cost per malloc: first-touch page faults (writes to new pages), brk and "
      "anonymous mmap (tracepoints)");
  cmd->add_option("-p,--pid", a->hunt.common.pid, "process to profile")->required()->group("Target");
  cmd->add_option("-d,--duration", a->hunt.common.duration_s, "seconds to record (0 = until Ctrl-C)")
      ->default_val(10)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--fault-sample", a->hunt.growth.fault_sample_every,
                  "record one first-touch page fault in N (weighted by N); 1 = every fault")
      ->default_val(1)
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_option("-o,--output", a->output,
                  "output file: .pb.gz (pprof: page_fault_space, page_faults, brk_space, mmap_space), .svg, .json, "
                  "else folded (default: a table on stdout)");
  cmd->add_option("-f,--format", a->format, "output format: folded, svg, pprof, json, top (default: from --output)")
      ->check(CLI::IsMember({"auto", "folded", "svg", "pprof", "json", "top"}));
  cmd->add_option("--value", a->value, "the value tables, flame graphs and pprof's default show")
      ->check(CLI::IsMember({"page_fault_space", "page_faults", "brk_space", "mmap_space"}))
      ->default_val("page_fault_space");
  cmd->add_flag("--json", a->json, "same as --format json");
  cmd->add_option("--top", a->top, "rows in the table")->default_val(20);
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      a->hunt.common.stop = &g_stop;
      a->hunt.common.interval_s = 1;
      if (!g.quiet && isatty(STDERR_FILENO))
        a->hunt.common.on_progress = [](const HuntProgress& p) {
          std::fprintf(stderr, "\r%5.1f/%.0fs  %s   ", p.elapsed_s, p.duration_s, p.line.c_str());
          std::fflush(stderr);
        };
      if (!g.quiet)
        a->hunt.on_started = [a] { std::fprintf(stderr, "tickprobe growth: tracing pid %u\n", a->hunt.common.pid); };
      auto r = run_growth_hunt(a->hunt);
      if (!g.quiet && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
      if (!r) return r.error();
      return write_growth(*r, *a);
    };
  });
}

TP_CLI_COMMAND(register_growth, 66);

}  // namespace tickprobe::cli
