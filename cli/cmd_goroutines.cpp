// `tickprobe goroutines`: a Go program's goroutines read from its memory
// (collector/runtime/go_goroutines.h), no probes:
//   tickprobe goroutines -p PID            live goroutines by start function
//                                          and creation site (--dump: every
//                                          goroutine, as debug=2 prints them)
//   tickprobe goroutines -p PID --leaks    groups whose count grows steadily
//   tickprobe goroutines -p PID --waits    where goroutines wait: wait time by
//                                          state and parked stack (profile)
//   -o goroutines.pb.gz                    the goroutine profile, for go tool pprof
// `tickprobe coro` is the other view of goroutines: probes on creation and
// exit (rates, lifetimes, creation stacks), at a probe hit per goroutine.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "flamegraph_svg.h"
#include "folded.h"
#include "goroutine_report.h"
#include "json_profile.h"
#include "pprof.h"
#include "runtime/go_goroutines.h"
#include "sink.h"
#include "top_table.h"

namespace tickprobe::cli {
namespace {

struct GoroutinesArgs {
  GoroutineHuntOptions hunt;
  double duration_s = -1;  // -1: the mode's default
  bool leaks = false, waits = false, dump = false, json = false;
  std::string output, format = "auto";
};

std::string infer_format(const std::string& output) {
  auto ends = [&](const char* s) { return output.ends_with(s); };
  if (output.empty() || output == "-") return "text";
  if (ends(".svg")) return "svg";
  if (ends(".pb.gz") || ends(".pprof") || ends(".pb")) return "pprof";
  if (ends(".json")) return "json";
  if (ends(".folded") || ends(".txt")) return "folded";
  return "text";
}

Status write_profile(const Profile& profile, const std::string& format, size_t top, const std::string& title,
                     Sink& sink) {
  if (format == "folded") return write_folded(profile, {}, sink);
  if (format == "pprof") return write_pprof(profile, {}, sink);
  if (format == "json") {
    JsonProfileOptions o;
    o.top_limit = top;
    o.indent = 2;
    return write_json_profile(profile, o, sink);
  }
  if (format == "svg") {
    FlameGraphOptions o;
    o.title = title;
    return write_flamegraph_svg(profile, o, sink);
  }
  TopTableOptions o;
  o.limit = top;
  auto t = compute_top_table(profile, o);
  if (!t) return t.error();
  std::string text = render_top_table(*t);
  for (const auto& c : profile.comments) text += "# " + c + "\n";
  if (auto st = sink.write(text); !st) return st;
  return sink.commit();
}

}  // namespace

void register_goroutines(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<GoroutinesArgs>();
  auto* cmd = app.add_subcommand(
      "goroutines",
      "a Go program's goroutines read from its memory (no probes): live groups with parked stacks, leaks (groups "
      "that grow), where goroutines wait");
  cmd->add_option("-p,--pid", a->hunt.pid, "Go process to read")->required()->group("Target");
  cmd->add_option("-d,--duration", a->duration_s,
                  "seconds to watch, one snapshot per interval (default: 0 = one snapshot; 20 with --leaks, 10 with "
                  "--waits)")
      ->check(Seconds(86400, true));
  cmd->add_option("-i,--interval", a->hunt.interval_s, "seconds between snapshots")
      ->default_val(1)
      ->check(Seconds(3600, false));
  cmd->add_flag("--leaks", a->leaks, "report goroutine groups (start function + creation site) that grow steadily");
  cmd->add_flag("--waits", a->waits,
                "write where goroutines wait: each snapshot charges every waiting goroutine the interval, by wait "
                "reason and parked stack (a profile: top table, folded, svg, pprof, json)");
  cmd->add_flag("--dump", a->dump, "also print every goroutine of the last snapshot, as debug=2 does");
  cmd->add_flag("--system", a->hunt.include_system, "include the runtime's own goroutines (NumGoroutine does not)");
  cmd->add_option("-o,--output", a->output,
                  "output file: .pb.gz (pprof: the goroutine profile, or the wait profile with --waits), .svg, "
                  ".folded, .json (default: text on stdout)");
  cmd->add_option("-f,--format", a->format, "output format: text, json, pprof, folded, svg (default: from --output)")
      ->check(CLI::IsMember({"auto", "text", "json", "pprof", "folded", "svg"}));
  cmd->add_flag("--json", a->json, "same as --format json");
  cmd->add_option("--top", a->hunt.top, "entries per list")->default_val(10);
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      GoroutineHuntOptions& h = a->hunt;
      h.duration_s = a->duration_s >= 0 ? a->duration_s : a->leaks ? 20 : a->waits ? 10 : 0;
      if (a->leaks && h.duration_s < 4 * h.interval_s)
        return usage_error("--leaks needs --duration to cover at least 4 intervals to judge growth",
                           "raise --duration or lower --interval");
      if (a->waits && h.duration_s < h.interval_s)
        return usage_error("--waits needs --duration of at least one interval", "raise --duration");
      h.stop = &g_stop;
      if (!g.quiet && isatty(STDERR_FILENO))
        h.on_progress = [d = h.duration_s](double elapsed, const std::string& line) {
          if (d > 0) std::fprintf(stderr, "\r%5.1f/%.0fs  %s   ", elapsed, d, line.c_str());
        };
      auto r = run_goroutine_hunt(h);
      if (!g.quiet && isatty(STDERR_FILENO) && h.duration_s > 0) std::fputc('\n', stderr);
      if (!r) return r.error();
      std::string format = a->json ? "json" : a->format == "auto" ? infer_format(a->output) : a->format;
      auto opened = open_sink(a->output.empty() ? "-" : a->output);
      if (!opened) return opened.error();
      Sink& sink = **opened;
      if (a->waits) {
        if (r->waits.samples.empty() && !g.quiet)
          std::fprintf(stderr, "warning: no goroutine was seen waiting in %zu snapshots\n", r->snapshots);
        return write_profile(r->waits, format == "text" ? "top" : format, h.top, "Goroutine Wait Time", sink);
      }
      if (format == "pprof" || format == "folded" || format == "svg")
        return write_profile(r->goroutine_profile, format, h.top, "Goroutines", sink);
      std::string text;
      if (format == "json") {
        auto j = goroutine_report_json(*r);
        if (a->dump) j["dump"] = r->dump;
        text = j.dump(2) + "\n";
      } else {
        text = goroutine_report_text(*r, a->leaks);
        if (a->dump) text += "\n" + r->dump;
      }
      if (auto st = sink.write(text); !st) return st;
      return sink.commit();
    };
  });
}

TP_CLI_COMMAND(register_goroutines, 45);

}  // namespace tickprobe::cli
