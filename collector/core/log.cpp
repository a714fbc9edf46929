#include "core/log.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tickprobe {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
std::mutex g_mu;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (log_level() < LogLevel::kDebug) return 0;
  std::lock_guard<std::mutex> lock(g_mu);
  std::fputs("libbpf: ", stderr);
  return std::vfprintf(stderr, fmt, args);
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log_msg(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) > g_level.load()) return;
  static const char* kPrefix[] = {"error: ", "warning: ", "", "debug: "};
  std::lock_guard<std::mutex> lock(g_mu);
  std::fputs(kPrefix[static_cast<int>(level)], stderr);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
}

void route_libbpf_logs() { libbpf_set_print(libbpf_print); }

}  // namespace tickprobe
