// `tickprobe allocs`: allocation hotspots. Bytes and objects allocated per
// stack (sampled by bytes and scaled up) and what is still in use at the
// end, as a Go-style heap profile (collector/runtime/alloc_profile.h).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/commands.h"
#include "flamegraph_svg.h"
#include "folded.h"
#include "json_profile.h"
#include "pprof.h"
#include "runtime/alloc_profile.h"
#include "runtime/hunts.h"
#include "sink.h"
#include "top_table.h"

namespace tickprobe::cli {
namespace {

struct AllocsArgs {
  AllocsHuntOptions hunt;
  std::string output;
  std::string format = "auto";
  std::string value = "alloc_space";
  bool json = false;
  bool no_mmap = false;
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

Status write_allocs(Profile& profile, const AllocsArgs& a) {
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
    o.title = "Allocation Flame Graph (" + a.value + ")";
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

void register_allocs(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<AllocsArgs>();
  auto* cmd = app.add_subcommand(
      "allocs",
      "allocation hotspots: bytes and objects allocated per stack, and still in use at the end (sampled by bytes; "
      "pprof in Go's heap-profile format)");
  cmd->add_option("-p,--pid", a->hunt.common.pid, "process to profile")->required()->group("Target");
  cmd->add_option("-d,--duration", a->hunt.common.duration_s, "seconds to record (0 = until Ctrl-C)")
      ->default_val(10)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--sample-bytes", a->hunt.alloc.sample_bytes,
                  "sample about one allocation per N bytes allocated and scale up (0 = exact: every allocation, "
                  "a stack walk per call)")
      ->default_val(kDefaultAllocSampleBytes);
  cmd->add_option("--allocator-prefix", a->hunt.alloc.allocator_prefix,
                  "prefix of the allocator's entry points, e.g. je_ for a prefixed jemalloc build");
  cmd->add_flag("--no-mmap", a->no_mmap, "do not count anonymous mmaps made outside the allocator");
  cmd->add_option("-o,--output", a->output,
                  "output file: .pb.gz (pprof: alloc_objects, alloc_space, inuse_objects, inuse_space), .svg, "
                  ".json, else folded (default: a table on stdout)");
  cmd->add_option("-f,--format", a->format, "output format: folded, svg, pprof, json, top (default: from --output)")
      ->check(CLI::IsMember({"auto", "folded", "svg", "pprof", "json", "top"}));
  cmd->add_option("--value", a->value, "the value tables, flame graphs and pprof's default show")
      ->check(CLI::IsMember({"alloc_space", "alloc_objects", "inuse_space", "inuse_objects"}))
      ->default_val("alloc_space");
  cmd->add_flag("--json", a->json, "same as --format json");
  cmd->add_option("--top", a->top, "rows in the table")->default_val(20);
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      a->hunt.common.stop = &g_stop;
      a->hunt.common.interval_s = 1;
      a->hunt.alloc.track_mmap = !a->no_mmap;
      if (!g.quiet && isatty(STDERR_FILENO))
        a->hunt.common.on_progress = [](const HuntProgress& p) {
          std::fprintf(stderr, "\r%5.1f/%.0fs  %s   ", p.elapsed_s, p.duration_s, p.line.c_str());
          std::fflush(stderr);
        };
      if (!g.quiet)
        a->hunt.on_attached = [a](const AllocAttachReport& rep) {
          std::fprintf(stderr, "tickprobe allocs: tracing %zu allocator entry points of pid %u (malloc in %s)%s\n",
                       rep.attached.size(), a->hunt.common.pid, rep.allocator_object.c_str(),
                       a->hunt.alloc.sample_bytes ? "" : ", every allocation");
        };
      auto r = run_allocs_hunt(a->hunt);
      if (!g.quiet && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
      if (!r) return r.error();
      if (auto st = write_allocs(r->profile, *a); !st) return st;
      if (!r->warning.empty()) return Error("no allocations seen: " + r->warning, kNoAllocatorCallsHint);
      return {};
    };
  });
}

TP_CLI_COMMAND(register_allocs, 65);

}  // namespace tickprobe::cli
