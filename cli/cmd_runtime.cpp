// `tickprobe coro`, `tickprobe pauses` and `tickprobe leaks`: one-off
// investigations of a game server's runtime (collector/runtime/hunts.h).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "exporters/runtime_report.h"
#include "exporters/sink.h"
#include "runtime/hunts.h"
#include "unwind/go_layout.h"

namespace tickprobe::cli {
namespace {

struct CommonArgs {
  HuntCommon hunt;
  std::string runtime = "tickgame";
  std::string output;
  bool json = false;
  size_t top = 10;
};

void add_common(CLI::App* cmd, CommonArgs& a, double default_duration, bool runtime) {
  cmd->add_option("-p,--pid", a.hunt.pid, "process to investigate")->required()->group("Target");
  cmd->add_option("-d,--duration", a.hunt.duration_s, "seconds to watch (0 = until Ctrl-C)")
      ->default_val(default_duration)
      ->check(Seconds(86400, true, "until Ctrl-C"));
  cmd->add_option("-o,--output", a.output, "write the report here (default: stdout)");
  cmd->add_flag("--json", a.json, "JSON report instead of text");
  cmd->add_option("--top", a.top, "entries per list")->default_val(10);
  if (runtime)
    cmd->add_option("--runtime", a.runtime,
                    "runtime description: 'tickgame' or 'go' (built in; 'go' is the default for Go programs) or a JSON "
                    "file naming the probes (docs/runtimes.md)")
        ->default_val("tickgame");
}

void progress(const HuntProgress& p) {
  if (!isatty(STDERR_FILENO)) return;
  if (p.duration_s > 0)
    std::fprintf(stderr, "\r%5.1f/%.0fs  %s   ", p.elapsed_s, p.duration_s, p.line.c_str());
  else
    std::fprintf(stderr, "\r%5.1fs  %s   ", p.elapsed_s, p.line.c_str());
  std::fflush(stderr);
}

void prepare(CommonArgs& a, const GlobalOptions& g) {
  a.hunt.stop = &g_stop;
  if (!g.quiet) a.hunt.on_progress = progress;
}

void end_progress(const GlobalOptions& g) {
  if (!g.quiet && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
}

// Ends the progress line and writes the report (JSON or text) to -o.
template <typename Report, typename ToJson, typename ToText>
Status finish(const CommonArgs& a, const GlobalOptions& g, const Result<Report>& r, ToJson to_json, ToText to_text) {
  end_progress(g);
  if (!r) return r.error();
  auto sink = open_sink(a.output.empty() ? "-" : a.output);
  if (!sink) return sink.error();
  return write_and_commit(**sink, a.json ? to_json(r.value()).dump(2) + "\n" : to_text(r.value(), 150));
}

// The default description is tickgame's, except for a Go program: Go's
// built-in one (goroutines and stop-the-world pauses from runtime functions).
Result<RuntimeDescription> runtime_of(const CommonArgs& a) {
  if (a.runtime == "tickgame" && a.hunt.pid && is_go_executable("/proc/" + std::to_string(a.hunt.pid) + "/exe"))
    return go_runtime();
  return runtime_description_from_arg(a.runtime);
}

}  // namespace

void register_coro(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<CommonArgs>();
  auto o = std::make_shared<CoroHuntOptions>();
  auto* cmd = app.add_subcommand(
      "coro", "coroutine lifecycles: live count, create/destroy rates, lifetimes, and leaked coroutines by creation stack");
  add_common(cmd, *a, 10, true);
  cmd->add_option("--min-age", o->min_age_s, "live coroutines at least this many seconds old are reported as leaked")
      ->default_val(10)
      ->check(Seconds(86400, true));
  cmd->add_flag("--trace-resume", o->trace_resume,
                "also trace resume/suspend: run time per resume, time suspended, and coroutines created before "
                "attach (costs a probe hit per resume)");
  cmd->callback([a, o, &g, &run] {
    run = [a, o, &g]() -> Status {
      auto rt = runtime_of(*a);
      if (!rt) return rt.error();
      prepare(*a, g);
      o->common = a->hunt;
      o->runtime = rt.take();
      o->top = a->top;
      return finish(*a, g, run_coro_hunt(*o), coro_report_json, coro_report_text);
    };
  });
}

void register_pauses(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<CommonArgs>();
  auto o = std::make_shared<PauseHuntOptions>();
  auto budget_ms = std::make_shared<double>(0);
  auto slack_ms = std::make_shared<double>(0);
  auto tick_fn = std::make_shared<std::string>();
  auto tick_id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "pauses", "GC and arena pauses, tick durations, and the worst hitches with what caused them");
  add_common(cmd, *a, 10, true);
  cmd->add_option("--budget-ms", *budget_ms, "tick budget (default: inferred from the tick rate, i.e. 1/tick-rate)")
      ->check(Seconds(86400, true));
  cmd->add_option("--slack-ms", *slack_ms, "a tick is a hitch when it runs over budget by more than this "
                                            "(default: max(1 ms, 5% of the budget))")
      ->check(Seconds(86400, true));
  cmd->add_option("--tick-function", *tick_fn,
                  "Go: the tick function (e.g. 'main.(*Server).tick'); hitches of its goroutine split into "
                  "stop-the-world, goroutine blocking (parks inside the tick), idle and CPU (probes runtime.gopark: "
                  "two probe hits per goroutine park)");
  cmd->add_option("--tick-id", *tick_id,
                  "Go: argument expression of the tick number in the tick function (e.g. rdi, *(rax+8))");
  cmd->callback([a, o, budget_ms, slack_ms, tick_fn, tick_id, &g, &run] {
    run = [a, o, budget_ms, slack_ms, tick_fn, tick_id, &g]() -> Status {
      auto rt = runtime_of(*a);
      if (!rt) return rt.error();
      if (!tick_id->empty() && tick_fn->empty())
        return Error("usage: --tick-id needs --tick-function", "name the tick function: --tick-function main.tick");
      if (!tick_fn->empty()) {
        rt = with_goroutine_tick(rt.take(), *tick_fn, *tick_id);
        if (!rt) return rt.error();
      }
      prepare(*a, g);
      o->common = a->hunt;
      o->runtime = rt.take();
      o->top = a->top;
      o->hitch.budget_ns = static_cast<uint64_t>(*budget_ms * 1e6);
      o->hitch.slack_ns = static_cast<uint64_t>(*slack_ms * 1e6);
      o->hitch.keep_worst = a->top;
      return finish(*a, g, run_pause_hunt(*o), pause_report_json, pause_report_text);
    };
  });
}

void register_leaks(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<CommonArgs>();
  auto o = std::make_shared<LeakHuntOptions>();
  auto* cmd = app.add_subcommand(
      "leaks", "memory leak hunt: allocation stacks whose outstanding bytes grow steadily (uprobes on the allocator)");
  add_common(cmd, *a, 20, true);
  cmd->add_option("-i,--interval", a->hunt.interval_s, "seconds between samples of the outstanding bytes")
      ->default_val(1)
      ->check(Seconds(3600, false));
  cmd->add_option("--sample-bytes", o->alloc.sample_bytes,
                  "sample about one allocation per N bytes allocated and scale up (0 = exact: track every allocation)")
      ->default_val(0);
  cmd->add_option("--allocator-prefix", o->alloc.allocator_prefix,
                  "prefix of the allocator's entry points, e.g. je_ for a prefixed jemalloc build");
  cmd->add_option("--max-tracked", o->alloc.max_tracked, "outstanding allocations tracked in the kernel")
      ->default_val(262144);
  auto no_mmap = std::make_shared<bool>(false);
  cmd->add_flag("--no-mmap", *no_mmap, "do not track anonymous mmap/munmap outside the allocator");
  cmd->add_option("--min-leak-bytes", o->judge.min_leak_bytes,
                  "a steadily growing stack must grow by at least this much during the hunt to count as a leak")
      ->default_val(16384);
  cmd->add_flag("--coroutines", o->coroutines, "also hunt leaked coroutines (needs the runtime's USDT probes)");
  cmd->add_option("--coro-min-age", o->coro_min_age_s, "with --coroutines: minimum age of a leaked coroutine (s)")
      ->default_val(10);
  cmd->callback([a, o, no_mmap, &g, &run] {
    run = [a, o, no_mmap, &g]() -> Status {
      prepare(*a, g);
      o->common = a->hunt;
      o->top = a->top;
      o->alloc.track_mmap = !*no_mmap;
      if (o->coroutines) {
        auto rt = runtime_of(*a);
        if (!rt) return rt.error();
        o->runtime = rt.take();
      }
      if (o->common.duration_s > 0 && o->common.duration_s < 4 * o->common.interval_s)
        return usage_error("--duration must cover at least 4 intervals to judge growth",
                           "lower --interval or raise --duration");
      auto report = run_leak_hunt(*o);
      if (auto st = finish(*a, g, report, leak_report_json, leak_report_text); !st) return st;
      // No allocator call seen: the report is written (verdict "no_verdict"),
      // and the exit code is 1, so `tickprobe leaks && echo clean` never
      // takes blindness for a clean bill.
      if (!report->warning.empty()) return Error("no verdict: " + report->warning, kNoAllocatorCallsHint);
      return {};
    };
  });
}

TP_CLI_COMMAND(register_coro, 40);
TP_CLI_COMMAND(register_pauses, 50);
TP_CLI_COMMAND(register_leaks, 60);

}  // namespace tickprobe::cli
