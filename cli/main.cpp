// tickprobe: eBPF observability and profiling for game servers.
#include <csignal>
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "core/log.h"
#include "core/version.h"

namespace tickprobe::cli {

std::atomic<bool> g_stop{false};

static const char kUsagePrefix[] = "usage: ";

Status usage_error(std::string msg, std::string hint) { return Error(kUsagePrefix + msg, std::move(hint)); }
bool is_usage_error(const Error& e) { return e.message.rfind(kUsagePrefix, 0) == 0; }

namespace {
std::vector<std::pair<int, RegisterFn>>& command_list() {
  static std::vector<std::pair<int, RegisterFn>> list;
  return list;
}
}  // namespace

CommandRegistrar::CommandRegistrar(int order, RegisterFn fn) { command_list().emplace_back(order, fn); }

void register_all_commands(CLI::App& app, GlobalOptions& g, Action& run) {
  auto list = command_list();
  std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, fn] : list) fn(app, g, run);
}

void add_target_options(CLI::App* cmd, TargetSpec& spec) {
  cmd->add_option("-p,--pid", spec.pids, "process id to trace (repeatable)")->group("Target");
  cmd->add_option("--comm", spec.comms, "trace processes with this name (repeatable)")->group("Target");
  cmd->add_option("--exe", spec.exes, "trace processes running this executable (path or basename)")
      ->group("Target");
}

}  // namespace tickprobe::cli

namespace {
void on_signal(int) { tickprobe::cli::g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace tickprobe;
  CLI::App app{"tickprobe: eBPF observability and profiling for game servers\n"
               "Finds what made a tick late: CPU, off-CPU blocking, pauses, leaks, sockets."};
  app.set_version_flag("--version", std::string("tickprobe ") + kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q work after the subcommand too
  cli::GlobalOptions g;
  app.add_flag("-v,--verbose", g.verbose, "debug logging, including libbpf's log");
  app.add_flag("-q,--quiet", g.quiet, "no progress output");

  cli::Action run;
  cli::register_all_commands(app, g, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0 through CLI11; a usage error is one line
    // in our format plus a hint, exit 2.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string what = e.what();
    std::fprintf(stderr, "error: %s\nhint: run `tickprobe%s --help`\n", what.c_str(),
                 [&] {
                   for (const auto* sub : app.get_subcommands()) return std::string(" ") + sub->get_name();
                   return std::string();
                 }().c_str());
    return 2;
  }

  set_log_level(g.verbose ? LogLevel::kDebug : g.quiet ? LogLevel::kError : LogLevel::kWarn);
  route_libbpf_logs();
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (!run) return 2;
  Status st = run();
  flush_log_summaries(true);
  if (!st) {
    const Error& e = st.error();
    bool usage = cli::is_usage_error(e);
    std::fprintf(stderr, "error: %s\n", usage ? e.message.c_str() + 7 : e.message.c_str());
    if (!e.hint.empty()) std::fprintf(stderr, "hint: %s\n", e.hint.c_str());
    return usage ? 2 : 1;
  }
  return 0;
}
