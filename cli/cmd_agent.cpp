// `tickprobe agent`: the sidecar. Prometheus metrics and pprof endpoints.
#include <cstdio>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "agent_metrics.h"
#include "cli/checks.h"
#include "cli/commands.h"
#include "core/parse.h"
#include "http_server.h"
#include "goroutine_report.h"
#include "pprof.h"
#include "runtime/go_goroutines.h"
#include "unwind/go_layout.h"

namespace tickprobe::cli {
namespace {

struct AgentArgs {
  AgentOptions opts;
  std::string listen = "127.0.0.1:9464";
  bool no_offcpu = false;
  bool no_runtime = false;
  bool leaks = false;
  bool trace_resume = false;
  std::string runtime = "tickgame";
  std::string allocator_prefix;
  uint32_t frequency = 99;
  uint64_t min_block_us = 1;
  uint64_t sample_bytes = 0;
  double budget_ms = 0;
  std::vector<std::string> enable, disable, family_opts;
  size_t max_concurrent_profiles = 4;
  std::string forget_exited_after = "180s";
};

// The family flags become registry choices and settings.
Status apply_family_flags(AgentArgs& a, const CLI::App& cmd) {
  auto& o = a.opts;
  for (const auto& n : a.enable) o.enable.insert(n);
  for (const auto& n : a.disable) o.disable.insert(n);
  if (a.no_offcpu) o.disable.insert("offcpu");
  if (a.no_runtime) o.disable.insert("runtime");
  if (a.leaks) o.enable.insert("alloc");
  o.settings["profile"]["frequency"] = std::to_string(a.frequency);
  o.settings["offcpu"]["min_block_us"] = std::to_string(a.min_block_us);
  o.settings["runtime"]["description"] = a.runtime;
  if (a.trace_resume) o.settings["runtime"]["trace_resume"] = "true";
  if (cmd.count("--sample-bytes")) o.settings["alloc"]["sample_bytes"] = std::to_string(a.sample_bytes);
  if (!a.allocator_prefix.empty()) o.settings["alloc"]["allocator_prefix"] = a.allocator_prefix;
  for (const auto& kv : a.family_opts) {
    auto dot = kv.find('.'), eq = kv.find('=');
    if (dot == std::string::npos || eq == std::string::npos || dot > eq || dot == 0 || eq == dot + 1)
      return usage_error("--family-opt " + kv + " is not NAME.KEY=VALUE", "e.g. --family-opt sockets.tcp_probe_every=8");
    o.settings[kv.substr(0, dot)][kv.substr(dot + 1, eq - dot - 1)] = kv.substr(eq + 1);
  }
  return {};
}

HttpResponse profile_endpoint(Agent& agent, ProfileKind kind, const HttpRequest& req) {
  HttpResponse r;
  double seconds = 30;
  // Strict: "nan", "0x10", "1 abc", "-1", "1e3" are all 400, not a guess.
  if (!tinyhttp::parse_decimal_seconds(req.param("seconds", "30"), 0, 1e9, seconds) || !(seconds > 0)) {
    r.status = 400;
    r.body = "seconds must be a positive decimal number, e.g. seconds=30 (got \"" + req.param("seconds") + "\")\n";
    return r;
  }
  auto prof = agent.capture(kind, seconds, g_stop);
  if (!prof) {
    r.status = 400;
    r.body = prof.error().message + "\n";
    return r;
  }
  auto bytes = render_pprof(*prof);
  if (!bytes) {
    r.status = 500;
    r.body = bytes.error().message + "\n";
    return r;
  }
  r.content_type = kPprofContentType;
  r.headers["Content-Disposition"] = kind == ProfileKind::kCpu ? "attachment; filename=\"profile.pb.gz\""
                                                                : "attachment; filename=\"offcpu.pb.gz\"";
  r.body = bytes.take();
  return r;
}

// /debug/pprof/heap (inuse_space by default) and /debug/pprof/allocs
// (alloc_space), Go-style: cumulative, or `?seconds=N` for the change over
// the next N seconds.
HttpResponse alloc_profile_endpoint(Agent& agent, bool heap, const HttpRequest& req) {
  HttpResponse r;
  double seconds = 0;
  // Strict like the other endpoints; 0 (the default) is the cumulative profile.
  if (!tinyhttp::parse_decimal_seconds(req.param("seconds", "0"), 0, 1e9, seconds)) {
    r.status = 400;
    r.body = "seconds must be a non-negative decimal number, e.g. seconds=30 (got \"" + req.param("seconds") + "\")\n";
    return r;
  }
  auto prof = agent.alloc_profile(heap, seconds, g_stop);
  if (!prof) {
    r.status = 400;
    r.body = prof.error().message + (prof.error().hint.empty() ? "" : "\nhint: " + prof.error().hint) + "\n";
    return r;
  }
  auto bytes = render_pprof(*prof);
  if (!bytes) {
    r.status = 500;
    r.body = bytes.error().message + "\n";
    return r;
  }
  r.content_type = kPprofContentType;
  r.headers["Content-Disposition"] = heap ? "attachment; filename=\"heap.pb.gz\"" : "attachment; filename=\"allocs.pb.gz\"";
  r.body = bytes.take();
  return r;
}

// /debug/pprof/growth?seconds=N (default 30): memory growth per stack.
HttpResponse growth_endpoint(Agent& agent, const HttpRequest& req) {
  HttpResponse r;
  double seconds = 30;
  if (!tinyhttp::parse_decimal_seconds(req.param("seconds", "30"), 0, 1e9, seconds) || !(seconds > 0)) {
    r.status = 400;
    r.body = "seconds must be a positive decimal number, e.g. seconds=30 (got \"" + req.param("seconds") + "\")\n";
    return r;
  }
  auto prof = agent.growth_profile(seconds, g_stop);
  if (!prof) {
    r.status = 400;
    r.body = prof.error().message + (prof.error().hint.empty() ? "" : "\nhint: " + prof.error().hint) + "\n";
    return r;
  }
  auto bytes = render_pprof(*prof);
  if (!bytes) {
    r.status = 500;
    r.body = bytes.error().message + "\n";
    return r;
  }
  r.content_type = kPprofContentType;
  r.headers["Content-Disposition"] = "attachment; filename=\"growth.pb.gz\"";
  r.body = bytes.take();
  return r;
}

// /debug/pprof/goroutine[?pid=P][&debug=1|2]: a Go target's goroutines read
// from its memory (collector/runtime/go_goroutines.h; no probes): the
// goroutine profile (pprof), or with debug=1 the grouped text, with debug=2
// every goroutine as Go prints them. `pid` picks one of the agent's
// targets (needed when it has several).
HttpResponse goroutine_endpoint(const TargetSpec& targets, const HttpRequest& req) {
  HttpResponse r;
  auto pids = resolve_targets(targets);
  uint32_t pid = 0;
  std::string want = req.param("pid");
  if (!want.empty()) {
    for (uint32_t p : pids)
      if (std::to_string(p) == want) pid = p;
    if (!pid) {
      r.status = 400;
      r.body = "pid " + want + " is not one of this agent's targets\n";
      return r;
    }
  } else {
    std::vector<uint32_t> go;
    for (uint32_t p : pids)
      if (is_go_executable("/proc/" + std::to_string(p) + "/exe")) go.push_back(p);
    if (go.size() != 1) {
      r.status = 400;
      r.body = go.empty() ? "no Go program among this agent's targets\n"
                          : "several Go targets: pick one with ?pid=PID\n";
      return r;
    }
    pid = go.front();
  }
  GoroutineHuntOptions o;
  o.pid = static_cast<pid_t>(pid);
  o.top = 50;
  auto rep = run_goroutine_hunt(o);
  if (!rep) {
    r.status = 400;
    r.body = rep.error().message + (rep.error().hint.empty() ? "" : "\nhint: " + rep.error().hint) + "\n";
    return r;
  }
  std::string debug = req.param("debug", "0");
  if (debug == "1" || debug == "2") {
    r.content_type = "text/plain; charset=utf-8";
    r.body = debug == "2" ? rep->dump : goroutine_report_text(*rep, false);
    return r;
  }
  auto bytes = render_pprof(rep->goroutine_profile);
  if (!bytes) {
    r.status = 500;
    r.body = bytes.error().message + "\n";
    return r;
  }
  r.content_type = kPprofContentType;
  r.headers["Content-Disposition"] = "attachment; filename=\"goroutine.pb.gz\"";
  r.body = bytes.take();
  return r;
}

}  // namespace

void register_agent(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<AgentArgs>();
  auto* cmd = app.add_subcommand("agent",
                                 "run continuously beside the server: Prometheus /metrics and pprof endpoints");
  add_target_options(cmd, a->opts.targets);
  cmd->add_option("--listen", a->listen, "address to serve HTTP on (host:port)")->default_val("127.0.0.1:9464");
  cmd->add_option("-F,--frequency", a->frequency, "CPU samples per second per CPU")
      ->default_val(99)
      ->check(Count(1, 10000));
  cmd->add_option("--min-block-us", a->min_block_us, "off-CPU: ignore shorter blocks")
      ->default_val(1)
      ->check(Count(0, kMaxBlockUs));
  cmd->add_flag("--no-offcpu", a->no_offcpu, "do not trace off-CPU time");
  cmd->add_flag("--no-runtime", a->no_runtime,
                "do not trace the game runtime's USDT probes (coroutines, pauses, ticks, hitches)");
  cmd->add_option("--runtime", a->runtime, "runtime description: 'tickgame' (built in) or a JSON file (docs/runtimes.md)")
      ->default_val("tickgame");
  cmd->add_flag("--trace-resume", a->trace_resume,
                "also trace coroutine resume/suspend (run and suspended times; a probe hit per resume)");
  cmd->add_option("--budget-ms", a->budget_ms, "tick budget for hitches (default: inferred from the tick rate)");
  cmd->add_flag("--leaks", a->leaks,
                "trace the allocator and export leak-suspect gauges (a uprobe hit per malloc/free: see docs/overhead.md)");
  cmd->add_option("--sample-bytes", a->sample_bytes, "with --leaks: sample one allocation per N bytes");
  cmd->add_option("--allocator-prefix", a->allocator_prefix, "with --leaks: e.g. je_ for jemalloc");
  std::string fams;
  for (const auto& f : family_registry())
    fams += std::string("\n  ") + f.name + (f.agent_default_on ? " (on)" : " (off)") + ": " + f.summary;
  cmd->add_option("--enable", a->enable, "turn on a probe family that is off by default (repeatable)")
      ->group("Families");
  cmd->add_option("--disable", a->disable, "turn off a probe family (repeatable)")->group("Families");
  cmd->add_option("--family-opt", a->family_opts, "a family setting, NAME.KEY=VALUE (repeatable)")
      ->group("Families");
  cmd->add_option("--max-stacks", a->opts.session.map_sizes.max_stacks, "distinct stacks kept in the kernel")
      ->default_val(16384)
      ->check(Count(1, kMaxStacksLimit));
  cmd->add_option("--unwind-rows", a->opts.session.map_sizes.unwind_rows,
                  "capacity of the CFI unwind table (rows; default: sized from the targets' binaries)")
      ->check(Count(1, kUnwindRowsLimit));
  cmd->add_option("--max-targets", a->opts.session.map_sizes.max_targets, "processes traced at once")
      ->default_val(1024)
      ->check(Count(1, kMaxTargetsLimit));
  cmd->add_option("--interval", a->opts.drain_interval_s, "seconds between reads of the kernel maps")
      ->default_val(1.0)
      ->check(Seconds(3600, false));
  cmd->add_option("--forget-exited-after", a->forget_exited_after,
                  "drop an exited process's series after this long (e.g. 300s, 5m; the tickprobe_targets_* totals "
                  "keep counting it)")
      ->default_val("180s");
  cmd->add_option("--max-exited", a->opts.session.retention.max_exited,
                  "exited processes whose series are kept at most (oldest dropped first)")
      ->default_val(64)
      ->check(Count(0, 100000));
  cmd->add_option("--max-concurrent-profiles", a->max_concurrent_profiles,
                  "profile requests served at once; more get 429 with Retry-After")
      ->default_val(4)
      ->check(Count(1, 64));
  cmd->footer(
      "Endpoints:\n"
      "  GET /metrics                          Prometheus text format\n"
      "  GET /debug/pprof/profile?seconds=N     CPU profile (pprof, gzipped protobuf)\n"
      "  GET /debug/pprof/offcpu?seconds=N      off-CPU profile (pprof)\n"
      "  GET /debug/pprof/heap[?seconds=N]     with --leaks: memory in use per stack (Go heap profile)\n"
      "  GET /debug/pprof/allocs[?seconds=N]   with --leaks: bytes allocated per stack (alloc_space default)\n"
      "  GET /debug/pprof/growth?seconds=N      memory growth per stack: first-touch page faults, brk, mmap\n"
      "  GET /debug/pprof/goroutine[?pid=P]    a Go target's goroutines from its memory (pprof; debug=1|2: text)\n"
      "  GET /healthz                           200 \"ok\", or \"degraded: ...\" when a family failed to attach\n"
      "Probe families:" + fams);
  const CLI::App* cmd_ptr = cmd;
  cmd->callback([a, &g, &run, cmd_ptr] {
    run = [a, &g, cmd_ptr]() -> Status {
      if (a->opts.targets.empty()) return usage_error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
      auto bind = parse_bind_address(a->listen);
      if (!bind) return usage_error(bind.error().message, bind.error().hint);
      if (auto st = apply_family_flags(*a, *cmd_ptr); !st) return st;
      a->opts.hitch.budget_ns = static_cast<uint64_t>(a->budget_ms * 1e6);
      if (a->opts.drain_interval_s < 0.05)
        return usage_error("--interval: \"" + std::to_string(a->opts.drain_interval_s) + "\" is below 0.05 s", "e.g. --interval 1");
      auto forget = parse_duration_seconds(a->forget_exited_after);
      if (!forget) return usage_error("--forget-exited-after: " + forget.error().message, "e.g. 300s, 5m or 0");
      a->opts.session.retention.forget_exited_after_s = *forget;
      auto agent = Agent::create(a->opts);
      if (!agent) return agent.error();
      Agent& ag = **agent;

      // /metrics: the library's text serializer over a Collectable that
      // reads the agent's state at scrape time (declared before the server,
      // so it outlives the handlers).
      AgentCollectable metrics([&ag] { return ag.stats(); });
      HttpLimits limits;
      limits.slow_workers = a->max_concurrent_profiles;
      HttpServer server(limits);
      server.handle_get("/metrics", [&metrics](const HttpRequest&) {
        HttpResponse r;
        r.content_type = kPrometheusContentType;
        r.body = prometheus_text(metrics);
        return r;
      });
      // Captures take seconds: their own bounded pool, so they never delay
      // /metrics or /healthz; more than --max-concurrent-profiles get 429.
      server.handle_get(
          "/debug/pprof/profile", [&ag](const HttpRequest& req) { return profile_endpoint(ag, ProfileKind::kCpu, req); },
          HandlerKind::kLongRunning);
      server.handle_get(
          "/debug/pprof/offcpu",
          [&ag](const HttpRequest& req) { return profile_endpoint(ag, ProfileKind::kOffCpu, req); },
          HandlerKind::kLongRunning);
      server.handle_get(
          "/debug/pprof/heap", [&ag](const HttpRequest& req) { return alloc_profile_endpoint(ag, true, req); },
          HandlerKind::kLongRunning);
      server.handle_get(
          "/debug/pprof/allocs", [&ag](const HttpRequest& req) { return alloc_profile_endpoint(ag, false, req); },
          HandlerKind::kLongRunning);
      server.handle_get(
          "/debug/pprof/growth", [&ag](const HttpRequest& req) { return growth_endpoint(ag, req); },
          HandlerKind::kLongRunning);
      // Reading goroutines takes ~0.1 s for the ELF and ~5 us per goroutine:
      // the slow pool too, so a large target never delays /metrics.
      server.handle_get(
          "/debug/pprof/goroutine",
          [targets = a->opts.targets](const HttpRequest& req) { return goroutine_endpoint(targets, req); },
          HandlerKind::kLongRunning);
      // 200 either way (the agent is alive and serving); the body says
      // "ok", or "degraded: ..." naming the families that failed to attach
      // to a traced process and why (docs/metrics.md).
      server.handle_get("/healthz", [&ag](const HttpRequest&) {
        HttpResponse r;
        r.body = agent_health_text(ag.stats());
        return r;
      });
      if (auto st = server.start(*bind); !st) return st;
      if (!g.quiet)
      {
        std::string fams;
        for (const auto& n : ag.family_names()) fams += (fams.empty() ? "" : ",") + n;
        std::fprintf(stderr, "tickprobe agent: tracing %s (families %s); serving http://%s:%u/metrics\n",
                     a->opts.targets.describe().c_str(), fams.c_str(), bind->host.c_str(), server.port());
      }
      ag.run(g_stop);
      server.stop();
      return {};
    };
  });
}

TP_CLI_COMMAND(register_agent, 100);

}  // namespace tickprobe::cli
