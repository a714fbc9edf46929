#include "targets/target_spec.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>

#include "symbolize/symbolizer.h"

namespace tickprobe {

std::string TargetSpec::describe() const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  for (auto p : pids) add("pid " + std::to_string(p));
  for (const auto& c : comms) add("comm " + c);
  for (const auto& e : exes) add("exe " + e);
  return out;
}

static std::string basename_of(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

bool TargetSpec::matches(uint32_t pid, const std::string& comm, const std::string& exe) const {
  if (std::find(pids.begin(), pids.end(), pid) != pids.end()) return true;
  // comm is truncated to 15 characters by the kernel, and servers often
  // rename their main thread (which renames the process's comm), so a name
  // also matches the executable's basename.
  auto name_is = [](const std::string& have, const std::string& want) {
    return !have.empty() && (have == want || (want.size() > 15 && have == want.substr(0, 15)));
  };
  std::string exe_base = basename_of(exe);
  if (exe_base.ends_with(" (deleted)")) exe_base.resize(exe_base.size() - 10);
  for (const auto& c : comms)
    if (name_is(comm, c) || exe_base == c) return true;
  std::string invoked;  // read once, only when an exe spec needs it
  bool invoked_read = false;
  for (const auto& e : exes) {
    if (exe.empty()) continue;
    std::string clean = exe;
    const std::string deleted = " (deleted)";
    if (clean.size() > deleted.size() && clean.ends_with(deleted)) clean.resize(clean.size() - deleted.size());
    if (e.find('/') != std::string::npos ? clean == e : basename_of(clean) == e) return true;
    // /proc/PID/exe is the file a symlink resolves to: `--exe /usr/bin/NAME`
    // (NAME -> other-binary) matches through the link (the spec resolved),
    // and by the path the process ran.
    if (e.find('/') != std::string::npos && clean == resolve_exe_path(e)) return true;
    if (!invoked_read) {
      invoked_read = true;
      invoked = process_invoked_path(pid);
    }
    if (!invoked.empty() && (e.find('/') != std::string::npos ? invoked == e : basename_of(invoked) == e)) return true;
  }
  return false;
}

std::string resolve_exe_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) return path;
  return buf;
}

std::string process_comm(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

std::string process_exe(uint32_t pid) {
  char buf[PATH_MAX];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

bool process_alive(uint32_t pid) { return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

std::vector<uint32_t> resolve_targets(const TargetSpec& spec) {
  std::vector<uint32_t> out;
  for (auto p : spec.pids)
    if (process_alive(p)) out.push_back(p);
  if (spec.follows_new_processes()) {
    DIR* d = opendir("/proc");
    if (d) {
      uint32_t self = static_cast<uint32_t>(getpid());
      while (dirent* e = readdir(d)) {
        char* end = nullptr;
        unsigned long pid = std::strtoul(e->d_name, &end, 10);
        if (!end || *end != '\0' || pid == 0 || pid == self) continue;
        auto p = static_cast<uint32_t>(pid);
        if (spec.matches(p, process_comm(p), process_exe(p))) out.push_back(p);
      }
      closedir(d);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace tickprobe
