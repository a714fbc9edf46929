// `tickprobe sockets`: where a process blocks in socket calls (by peer, op
// and stack), which peers push back on its non-blocking sends, and the TCP
// facts of those connections; -o writes socket-blocked time as a flame
// graph or pprof.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "exporters/flamegraph_svg.h"
#include "exporters/folded.h"
#include "exporters/pprof.h"
#include "exporters/sink.h"
#include "exporters/sockets_report.h"
#include "probes/sockets.h"

namespace tickprobe::cli {
namespace {

struct SocketsArgs {
  SocketsRecordOptions rec;
  std::string output;  // flame graph / pprof / folded of blocked time
  std::string report;  // the report (default: stdout)
  bool json = false;
};

Status write_profile(const Profile& p, const std::string& path) {
  auto ends = [&](const char* s) { return path.size() >= std::strlen(s) && path.ends_with(s); };
  auto sink = open_sink(path);
  if (!sink) return sink.error();
  if (ends(".svg")) {
    FlameGraphOptions o;
    o.title = "Socket-blocked time";
    return write_flamegraph_svg(p, o, **sink);
  }
  if (ends(".pb.gz") || ends(".pprof") || ends(".pb")) return write_pprof(p, {}, **sink);
  return write_folded(p, {}, **sink);
}

}  // namespace

void register_sockets(CLI::App& app, GlobalOptions& g, Action& run) {
  auto a = std::make_shared<SocketsArgs>();
  auto* cmd = app.add_subcommand(
      "sockets",
      "socket blocking by peer, op and stack; send backpressure (EAGAIN, partial writes); TCP facts per connection");
  cmd->add_option("-p,--pid", a->rec.pid, "process to watch")->required()->group("Target");
  cmd->add_option("-d,--duration", a->rec.duration_s, "seconds to watch (0 = until Ctrl-C)")
      ->default_val(10)
      ->check(Seconds(86400, true, "until Ctrl-C"));
  cmd->add_option("--top", a->rec.top, "connections per list")->default_val(10);
  cmd->add_flag("--json", a->json, "JSON report instead of text");
  cmd->add_option("-o,--output", a->output,
                  "also write socket-blocked time as a flame graph (.svg), pprof (.pb.gz) or folded stacks (other)");
  cmd->add_option("--report", a->report, "write the report here instead of stdout");
  cmd->add_option("--max-conns", a->rec.sockets.max_conns, "TCP connections tracked in the kernel")
      ->default_val(8192);
  cmd->add_option("--stack-min-block-us", a->rec.sockets.stack_min_block_us,
                  "take the user stack of calls that blocked at least this long (shorter blocks are counted "
                  "per peer, without a stack)")
      ->default_val(100);
  cmd->add_option("--tcp-probe-gap-us", a->rec.sockets.tcp_probe_gap_us,
                  "read a connection's TCP facts from tcp_probe at most this often")
      ->default_val(1000);
  cmd->add_option("--max-stacks", a->rec.session.map_sizes.max_stacks, "distinct stacks kept in the kernel")
      ->default_val(16384);
  cmd->callback([a, &g, &run] {
    run = [a, &g]() -> Status {
      if (a->rec.top == 0) return usage_error("--top must be at least 1");
      a->rec.stop = &g_stop;
      bool tty = !g.quiet && isatty(STDERR_FILENO);
      if (tty)
        a->rec.on_progress = [](double elapsed, double duration, const std::string& line) {
          if (duration > 0)
            std::fprintf(stderr, "\r%5.1f/%.0fs  %s   ", elapsed, duration, line.c_str());
          else
            std::fprintf(stderr, "\r%5.1fs  %s   ", elapsed, line.c_str());
          std::fflush(stderr);
        };
      auto rec = record_sockets(a->rec);
      if (tty) std::fputc('\n', stderr);
      if (!rec) {
        if (rec.error().message.rfind("usage: ", 0) == 0) return usage_error(rec.error().message.substr(7), rec.error().hint);
        return rec.error();
      }
      for (const auto& w : rec->report.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      if (!a->output.empty())
        if (auto st = write_profile(rec->blocked_profile, a->output); !st) return st;
      auto sink = open_sink(a->report.empty() ? "-" : a->report);
      if (!sink) return sink.error();
      return write_and_commit(**sink, a->json ? sockets_report_json(rec->report).dump(2) + "\n"
                                              : sockets_report_text(rec->report, 150));
    };
  });
}

TP_CLI_COMMAND(register_sockets, 70);

}  // namespace tickprobe::cli
