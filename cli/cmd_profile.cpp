// `tickprobe profile` (CPU) and `tickprobe offcpu`: record, then write the
// profile in the chosen format.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "core/recorder.h"
#include "flamegraph_svg.h"
#include "folded.h"
#include "json_profile.h"
#include "pprof.h"
#include "sink.h"
#include "top_table.h"

namespace tickprobe::cli {
namespace {

struct ProfileArgs {
  RecordOptions rec;
  std::string format = "auto";
  std::string output;
  bool json = false;
  size_t top = 20;
  bool per_thread = false;
  bool no_kernel = false;
  bool no_runnable = false;
};

std::string infer_format(const std::string& output) {
  auto ends = [&](const char* s) { return output.size() >= std::strlen(s) && output.ends_with(s); };
  if (output.empty() || output == "-") return "top";
  if (ends(".svg")) return "svg";
  if (ends(".pb.gz") || ends(".pprof") || ends(".pb")) return "pprof";
  if (ends(".json")) return "json";
  return "folded";
}

// C++ template names run to hundreds of characters; a human table cuts them.
std::string truncate_lines(const std::string& text, size_t width) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.size() > width) line = line.substr(0, width - 3) + "...";
    out += line + "\n";
    start = end + 1;
  }
  return out;
}

void print_progress(const RecordProgress& p, ProfileKind kind) {
  if (!isatty(STDERR_FILENO)) return;
  if (kind == ProfileKind::kCpu)
    std::fprintf(stderr, "\rrecording %5.1f/%.0fs  %lld samples  %zu stacks  %zu targets  %llu dropped   ",
                 p.elapsed_s, p.duration_s, static_cast<long long>(p.primary_total), p.distinct_stacks, p.targets,
                 static_cast<unsigned long long>(p.dropped));
  else
    std::fprintf(stderr, "\rrecording %5.1f/%.0fs  %.3fs off-CPU  %zu stacks  %zu targets  %llu dropped   ",
                 p.elapsed_s, p.duration_s, static_cast<double>(p.primary_total) / 1e9, p.distinct_stacks,
                 p.targets, static_cast<unsigned long long>(p.dropped));
  std::fflush(stderr);
}

Status write_output(const Profile& profile, const ProfileArgs& a, const char* title) {
  std::string format = a.json ? "json" : a.format == "auto" ? infer_format(a.output) : a.format;
  auto opened = open_sink(a.output.empty() ? "-" : a.output);
  if (!opened) return opened.error();
  std::unique_ptr<Sink> sink = opened.take();
  FoldedOptions folded;
  // Prefork workers share a thread name: group by process and thread (the
  // ids keep same-named ones apart).
  folded.include_process = a.per_thread;
  folded.include_thread = a.per_thread;
  folded.include_pid = a.per_thread;
  folded.line_info = a.rec.session.symbolizer.line_info;
  if (format == "folded") return write_folded(profile, folded, *sink);
  if (format == "pprof") return write_pprof(profile, {}, *sink);
  if (format == "json") {
    JsonProfileOptions o;
    o.top_limit = a.top;
    o.indent = 2;
    o.line_info = a.rec.session.symbolizer.line_info;
    return write_json_profile(profile, o, *sink);
  }
  if (format == "svg") {
    FlameGraphOptions o;
    o.title = title;
    o.folded = folded;
    return write_flamegraph_svg(profile, o, *sink);
  }
  if (format == "top") {
    TopTableOptions o;
    o.limit = a.top;
    o.line_info = a.rec.session.symbolizer.line_info;
    auto t = compute_top_table(profile, o);
    if (!t) return t.error();
    std::string text = truncate_lines(render_top_table(*t), 150);
    for (const auto& c : profile.comments) text += "# " + c + "\n";
    std::string counters;
    for (const auto& [k, v] : profile.counters)
      if (v) counters += " " + k + "=" + std::to_string(v);
    if (!counters.empty()) text += "# self-accounting:" + counters + "\n";
    if (auto st = sink->write(text); !st) return st;
    return sink->commit();
  }
  return usage_error("unknown --format " + format, "use folded, svg, pprof, json or top");
}

void register_common(CLI::App* cmd, ProfileArgs& a) {
  add_target_options(cmd, a.rec.targets);
  cmd->add_option("-d,--duration", a.rec.duration_s, "seconds to record (0 = until Ctrl-C)")
      ->default_val(10)
      ->check(Seconds(86400, true, "until Ctrl-C"));
  cmd->add_option("-f,--format", a.format, "output format: folded, svg, pprof, json, top (default: from --output, else top)")
      ->check(CLI::IsMember({"auto", "folded", "svg", "pprof", "json", "top"}));
  cmd->add_option("-o,--output", a.output, "output file (default: stdout)");
  cmd->add_flag("--json", a.json, "same as --format json");
  cmd->add_option("--top", a.top, "rows in the top-functions table")->default_val(20)->check(Count(1, 100000));
  cmd->add_flag("--per-thread", a.per_thread, "put the process and thread (name-id) at the root of each stack");
  cmd->add_flag("--no-kernel", a.no_kernel, "leave out kernel frames");
  cmd->add_option("--max-stacks", a.rec.session.map_sizes.max_stacks, "distinct stacks kept in the kernel")
      ->default_val(16384)
      ->check(Count(1, kMaxStacksLimit));
  cmd->add_option("--unwind-rows", a.rec.session.map_sizes.unwind_rows,
                  "capacity of the CFI unwind table (rows; default: sized from the targets' binaries)")
      ->check(Count(1, kUnwindRowsLimit));
  cmd->add_option_function<std::vector<std::string>>(
         "--debug-dir",
         [&a](const std::vector<std::string>& dirs) {
           auto& d = a.rec.session.symbolizer.debug_dirs;
           d.insert(d.begin(), dirs.begin(), dirs.end());
         },
         "also look for separate debug files here (DIR/.build-id/xx/yyyy.debug, DIR/<debuglink>), before "
         "/usr/lib/debug; debuginfod is asked by build-id when DEBUGINFOD_URLS is set")
      ->type_name("DIR");
  cmd->add_flag("--line-info", a.rec.session.symbolizer.line_info, "add file:line and inlined frames (DWARF; .gopclntab for Go) to every output format");
}

}  // namespace

void register_profile(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand("profile", "CPU profile: where target threads spend CPU time");
  register_common(cmd, *a);
  cmd->add_option("-F,--frequency", a->rec.cpu.frequency, "samples per second per CPU")
      ->default_val(99)
      ->check(Count(1, 10000));
  cmd->add_flag("--cpu-clock", a->rec.cpu.force_cpu_clock, "use the cpu-clock event even if cycles exist");
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      a->rec.kind = ProfileKind::kCpu;
      a->rec.cpu.kernel_stacks = !a->no_kernel;
      if (a->rec.targets.empty()) return usage_error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
      a->rec.stop = &g_stop;
      if (!g.quiet) a->rec.on_progress = [](const RecordProgress& p) { print_progress(p, ProfileKind::kCpu); };
      auto prof = record_profile(a->rec);
      if (!g.quiet && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
      if (!prof) return prof.error();
      return write_output(*prof, *a, "CPU Flame Graph");
    };
  });
}

void register_offcpu(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand("offcpu", "off-CPU profile: where target threads block, and for how long");
  register_common(cmd, *a);
  cmd->add_option("--min-block-us", a->rec.offcpu.min_block_us, "ignore blocks shorter than this")
      ->default_val(1)
      ->check(Count(0, kMaxBlockUs));
  cmd->add_option("--max-block-us", a->rec.offcpu.max_block_us, "ignore blocks longer than this (0 = no limit)")
      ->default_val(0)
      ->check(Count(0, kMaxBlockUs));
  cmd->add_flag("--no-runnable", a->no_runnable, "leave out time spent preempted (waiting for a CPU)");
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      a->rec.kind = ProfileKind::kOffCpu;
      a->rec.offcpu.kernel_stacks = !a->no_kernel;
      a->rec.offcpu.include_runnable = !a->no_runnable;
      if (a->rec.targets.empty()) return usage_error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
      a->rec.stop = &g_stop;
      if (!g.quiet) a->rec.on_progress = [](const RecordProgress& p) { print_progress(p, ProfileKind::kOffCpu); };
      auto prof = record_profile(a->rec);
      if (!g.quiet && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
      if (!prof) return prof.error();
      return write_output(*prof, *a, "Off-CPU Flame Graph");
    };
  });
}

TP_CLI_COMMAND(register_profile, 20);
TP_CLI_COMMAND(register_offcpu, 30);

}  // namespace tickprobe::cli
