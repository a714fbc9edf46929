// `tickprobe agent`: the sidecar. Prometheus metrics and pprof endpoints.
#include <cstdio>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "agent_metrics.h"
#include "cli/commands.h"
#include "http_server.h"
#include "pprof.h"

namespace tickprobe::cli {
namespace {

struct AgentArgs {
  AgentOptions opts;
  std::string listen = "127.0.0.1:9464";
  bool no_offcpu = false;
  bool no_runtime = false;
  std::string runtime = "tickgame";
  double budget_ms = 0;
};

HttpResponse profile_endpoint(Agent& agent, ProfileKind kind, const HttpRequest& req) {
  HttpResponse r;
  double seconds = 30;
  try {
    seconds = std::stod(req.param("seconds", "30"));
  } catch (...) {
    r.status = 400;
    r.body = "seconds must be a number\n";
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

}  // namespace

void register_agent(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<AgentArgs>();
  auto* cmd = app.add_subcommand("agent",
                                 "run continuously beside the server: Prometheus /metrics and pprof endpoints");
  add_target_options(cmd, a->opts.targets);
  cmd->add_option("--listen", a->listen, "address to serve HTTP on (host:port)")->default_val("127.0.0.1:9464");
  cmd->add_option("-F,--frequency", a->opts.cpu.frequency, "CPU samples per second per CPU")->default_val(99);
  cmd->add_option("--min-block-us", a->opts.offcpu.min_block_us, "off-CPU: ignore shorter blocks")->default_val(1);
  cmd->add_flag("--no-offcpu", a->no_offcpu, "do not trace off-CPU time");
  cmd->add_flag("--no-runtime", a->no_runtime,
                "do not trace the game runtime's USDT probes (coroutines, pauses, ticks, hitches)");
  cmd->add_option("--runtime", a->runtime, "runtime description: 'tickgame' (built in) or a JSON file (docs/runtimes.md)")
      ->default_val("tickgame");
  cmd->add_flag("--trace-resume", a->opts.runtime.trace_resume,
                "also trace coroutine resume/suspend (run and suspended times; a probe hit per resume)");
  cmd->add_option("--budget-ms", a->budget_ms, "tick budget for hitches (default: inferred from the tick rate)");
  cmd->add_flag("--leaks", a->opts.enable_leaks,
                "trace the allocator and export leak-suspect gauges (a uprobe hit per malloc/free: see docs/overhead.md)");
  cmd->add_option("--sample-bytes", a->opts.alloc.sample_bytes, "with --leaks: sample one allocation per N bytes")
      ->default_val(0);
  cmd->add_option("--allocator-prefix", a->opts.alloc.allocator_prefix, "with --leaks: e.g. je_ for jemalloc");
  cmd->add_option("--max-stacks", a->opts.session.map_sizes.max_stacks, "distinct stacks kept in the kernel")
      ->default_val(16384);
  cmd->add_option("--unwind-rows", a->opts.session.map_sizes.unwind_rows, "capacity of the CFI unwind table (rows)")
      ->default_val(1u << 20);
  cmd->add_option("--max-targets", a->opts.session.map_sizes.max_targets, "processes traced at once")
      ->default_val(1024);
  cmd->add_option("--interval", a->opts.drain_interval_s, "seconds between reads of the kernel maps")
      ->default_val(1.0);
  cmd->footer(
      "Endpoints:\n"
      "  GET /metrics                          Prometheus text format\n"
      "  GET /debug/pprof/profile?seconds=N     CPU profile (pprof, gzipped protobuf)\n"
      "  GET /debug/pprof/offcpu?seconds=N      off-CPU profile (pprof)\n"
      "  GET /healthz                           liveness");
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      if (a->opts.targets.empty()) return usage_error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
      auto bind = parse_bind_address(a->listen);
      if (!bind) return usage_error(bind.error().message, bind.error().hint);
      a->opts.enable_offcpu = !a->no_offcpu;
      a->opts.enable_runtime = !a->no_runtime;
      a->opts.hitch.budget_ns = static_cast<uint64_t>(a->budget_ms * 1e6);
      if (a->opts.enable_runtime) {
        auto rt = runtime_description_from_arg(a->runtime);
        if (!rt) return rt.error();
        a->opts.runtime.description = rt.take();
      }
      auto agent = Agent::create(a->opts);
      if (!agent) return agent.error();
      Agent& ag = **agent;

      HttpServer server;
      server.handle_get("/metrics", [&ag](const HttpRequest&) {
        HttpResponse r;
        r.content_type = kPrometheusContentType;
        r.body = render_prometheus_text(agent_metrics(ag.stats()));
        return r;
      });
      server.handle_get("/debug/pprof/profile",
                        [&ag](const HttpRequest& req) { return profile_endpoint(ag, ProfileKind::kCpu, req); });
      server.handle_get("/debug/pprof/offcpu",
                        [&ag](const HttpRequest& req) { return profile_endpoint(ag, ProfileKind::kOffCpu, req); });
      server.handle_get("/healthz", [](const HttpRequest&) {
        HttpResponse r;
        r.body = "ok\n";
        return r;
      });
      if (auto st = server.start(*bind); !st) return st;
      if (!g.quiet)
        std::fprintf(stderr, "tickprobe agent: tracing %s; serving http://%s:%u/metrics\n",
                     a->opts.targets.describe().c_str(), bind->host.c_str(), server.port());
      ag.run(g_stop);
      server.stop();
      return {};
    };
  });
}

}  // namespace tickprobe::cli
