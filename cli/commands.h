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

void register_doctor(CLI::App& app, GlobalOptions& g, Action& run);
void register_profile(CLI::App& app, GlobalOptions& g, Action& run);
void register_offcpu(CLI::App& app, GlobalOptions& g, Action& run);
void register_agent(CLI::App& app, GlobalOptions& g, Action& run);
void register_coro(CLI::App& app, GlobalOptions& g, Action& run);
void register_pauses(CLI::App& app, GlobalOptions& g, Action& run);
void register_leaks(CLI::App& app, GlobalOptions& g, Action& run);
void register_sockets(CLI::App& app, GlobalOptions& g, Action& run);
void register_tls(CLI::App& app, GlobalOptions& g, Action& run);

// --pid/--comm/--exe on a subcommand.
void add_target_options(CLI::App* cmd, TargetSpec& spec);

// A usage error discovered after parsing (exit code 2).
struct UsageError : Error {
  using Error::Error;
};
Status usage_error(std::string msg, std::string hint = {});
bool is_usage_error(const Error& e);

}  // namespace tickprobe::cli
