// Which processes to trace: explicit pids, process names (comm), executable
// paths. Resolution scans /proc; following new processes is done by the
// TargetWatcher family (exec/exit tracepoints).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tickprobe {

struct TargetSpec {
  std::vector<uint32_t> pids;
  std::vector<std::string> comms;  // /proc/PID/comm (15 chars max) or the executable's basename
  // Match on /proc/PID/exe (absolute path, or basename), on the path the
  // process ran (a symlink: process_invoked_path()), or, for a path, on the
  // file it resolves to.
  std::vector<std::string> exes;

  bool empty() const { return pids.empty() && comms.empty() && exes.empty(); }
  // True when the spec can match processes that start later.
  bool follows_new_processes() const { return !comms.empty() || !exes.empty(); }
  std::string describe() const;
  bool matches(uint32_t pid, const std::string& comm, const std::string& exe) const;
};

// Processes alive now that match (only tgids; threads are covered by tgid).
std::vector<uint32_t> resolve_targets(const TargetSpec& spec);

std::string process_comm(uint32_t pid);  // "" if gone
std::string process_exe(uint32_t pid);   // readlink of /proc/PID/exe, "" if gone
bool process_alive(uint32_t pid);
// realpath(3) of `path`, or `path` unchanged when it does not resolve.
std::string resolve_exe_path(const std::string& path);

}  // namespace tickprobe
