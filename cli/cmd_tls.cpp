// `tickprobe tls`: OpenSSL handshakes of one process - outcomes and rate,
// latency end to end, CPU per handshake, the slowest handshakes with their
// peer, and where handshake CPU goes (-o writes it as a flame graph/pprof).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/commands.h"
#include "exporters/flamegraph_svg.h"
#include "exporters/folded.h"
#include "exporters/json_profile.h"
#include "exporters/pprof.h"
#include "exporters/sink.h"
#include "exporters/tls_report.h"
#include "runtime/tls_hunt.h"

namespace tickprobe::cli {
namespace {

struct TlsArgs {
  TlsHuntOptions hunt;
  std::string output;
  bool json = false;
  bool no_kernel = false;
};

Status write_cpu_profile(const Profile& p, const std::string& output) {
  auto ends = [&](const char* s) { return output.ends_with(s); };
  auto opened = open_sink(output);
  if (!opened) return opened.error();
  std::unique_ptr<Sink> sink = opened.take();
  if (ends(".svg")) {
    FlameGraphOptions o;
    o.title = "TLS handshake CPU";
    return write_flamegraph_svg(p, o, *sink);
  }
  if (ends(".pb.gz") || ends(".pprof") || ends(".pb")) return write_pprof(p, {}, *sink);
  if (ends(".json")) return write_json_profile(p, {}, *sink);
  return write_folded(p, {}, *sink);
}

void progress(const HuntProgress& p) {
  if (!isatty(STDERR_FILENO)) return;
  if (p.duration_s > 0)
    std::fprintf(stderr, "\r%5.1f/%.0fs  %s   ", p.elapsed_s, p.duration_s, p.line.c_str());
  else
    std::fprintf(stderr, "\r%5.1fs  %s   ", p.elapsed_s, p.line.c_str());
  std::fflush(stderr);
}

}  // namespace

void register_tls(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<TlsArgs>();
  auto* cmd = app.add_subcommand(
      "tls", "OpenSSL handshakes: outcomes, latency end to end, CPU per handshake, slowest peers, handshake CPU profile");
  cmd->add_option("-p,--pid", a->hunt.common.pid, "process to watch")->required()->group("Target");
  cmd->add_option("-d,--duration", a->hunt.common.duration_s, "seconds to watch (0 = until Ctrl-C)")
      ->default_val(10)
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "JSON report instead of text");
  cmd->add_option("-o,--output", a->output,
                  "write the handshake-CPU profile here: .svg flame graph, .pb.gz pprof, .json, else folded");
  cmd->add_option("--top", a->hunt.top, "slowest handshakes and top stacks shown")->default_val(10);
  cmd->add_option("-F,--frequency", a->hunt.tls.frequency, "handshake-CPU samples per second per CPU (0 = none)")
      ->default_val(999)
      ->check(CLI::Range(0, 10000));
  cmd->add_flag("--no-kernel", a->no_kernel, "leave kernel frames out of the handshake-CPU profile");
  cmd->add_option("--max-inflight", a->hunt.tls.max_inflight, "SSL objects tracked at once")->default_val(65536);
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      a->hunt.common.stop = &g_stop;
      a->hunt.tls.kernel_stacks = !a->no_kernel;
      if (!g.quiet) a->hunt.common.on_progress = progress;
      if (!a->output.empty() && a->hunt.tls.frequency == 0)
        return usage_error("-o needs the handshake-CPU profile", "drop -F 0");
      auto r = run_tls_hunt(a->hunt);
      if (!g.quiet && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
      if (!r) return r.error();
      if (!a->output.empty())
        if (auto st = write_cpu_profile(r->cpu_profile, a->output); !st) return st;
      auto sink = open_sink("-");
      if (!sink) return sink.error();
      return write_and_commit(**sink, a->json ? tls_report_json(r->report).dump(2) + "\n"
                                              : tls_report_text(r->report, 150));
    };
  });
}

TP_CLI_COMMAND(register_tls, 80);

}  // namespace tickprobe::cli
