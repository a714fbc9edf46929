// Subcommand registration. Each cmd_*.cpp adds one subcommand to the app and
// sets `run` to its action; main() calls it after parsing and maps the
// result to an exit code (0 ok, 1 runtime failure, 2 usage).
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <string>

#include "core/result.h"
#include "targets/target_spec.h"

namespace tickprobe::cli {

struct GlobalOptions {
  bool verbose = false;
  bool quiet = false;
};

using Action = std::function<Status()>;

// Set by SIGINT/SIGTERM; long-running commands finish and write what they have.
extern std::atomic<bool> g_stop;

// Each cmd_*.cpp registers its subcommands with TP_CLI_COMMAND(fn, order):
// the order is the order in `tickprobe --help`. Adding a subcommand is then
// its file alone (the CLI sources are linked into the executable, so the
// registrars' static initializers always run).
using RegisterFn = void (*)(CLI::App& app, GlobalOptions& g, Action& run);
struct CommandRegistrar {
  CommandRegistrar(int order, RegisterFn fn);
};
void register_all_commands(CLI::App& app, GlobalOptions& g, Action& run);
#define TP_CLI_COMMAND(fn, order) \
  static const ::tickprobe::cli::CommandRegistrar fn##_registrar_{order, &fn}

// --pid/--comm/--exe on a subcommand.
void add_target_options(CLI::App* cmd, TargetSpec& spec);

// A usage error discovered after parsing (exit code 2).
struct UsageError : Error {
  using Error::Error;
};
Status usage_error(std::string msg, std::string hint = {});
bool is_usage_error(const Error& e);

}  // namespace tickprobe::cli
