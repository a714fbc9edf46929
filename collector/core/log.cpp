#include "core/log.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace tickprobe {
namespace {

using Clock = std::chrono::steady_clock;

struct SiteState {
  LogLevel level = LogLevel::kWarn;
  Clock::time_point window_start;
  unsigned printed = 0;
  uint64_t suppressed = 0;
};

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
std::mutex g_mu;
FILE* g_stream = nullptr;  // nullptr: stderr
unsigned g_burst = 5;
double g_window_s = 10;
// Keyed by format string: call sites are string literals, so the map is
// bounded by the number of log statements in the program.
std::map<const char*, SiteState> g_sites;
LogStats g_stats;

const char* const kPrefix[] = {"error: ", "warning: ", "", "debug: "};

FILE* out() {
  return g_stream ? g_stream : stderr;
}

std::string with_thousands(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); i++) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// With g_mu held.
void print_summary(const char* fmt, SiteState& s) {
  if (!s.suppressed) return;
  std::string f = fmt;
  std::fprintf(out(), "%s... and %s more like this in the last %g s: %s\n", kPrefix[static_cast<int>(s.level)],
               with_thousands(s.suppressed).c_str(), g_window_s, f.c_str());
  std::fflush(out());
  g_stats.printed++;
  s.suppressed = 0;
}

void flush_locked(Clock::time_point now, bool force) {
  auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(g_window_s));
  for (auto& [fmt, s] : g_sites) {
    if (!force && now - s.window_start < window) continue;
    print_summary(fmt, s);
    s.printed = 0;
    s.window_start = now;
  }
}

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (log_level() < LogLevel::kDebug) return 0;
  std::lock_guard<std::mutex> lock(g_mu);
  std::fputs("libbpf: ", out());
  return std::vfprintf(out(), fmt, args);
}
}  // namespace

void set_log_level(LogLevel level) {
  g_level = static_cast<int>(level);
}
LogLevel log_level() {
  return static_cast<LogLevel>(g_level.load());
}

void log_msg(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) > g_level.load()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (level != LogLevel::kDebug) {
    auto now = Clock::now();
    auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(g_window_s));
    auto [it, fresh] = g_sites.try_emplace(fmt);
    SiteState& s = it->second;
    if (fresh) {
      s.level = level;
      s.window_start = now;
    } else if (now - s.window_start >= window) {
      print_summary(fmt, s);
      s.printed = 0;
      s.window_start = now;
    }
    if (s.printed >= g_burst) {
      s.suppressed++;
      g_stats.suppressed++;
      return;
    }
    s.printed++;
  }
  std::fputs(kPrefix[static_cast<int>(level)], out());
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(out(), fmt, ap);
  va_end(ap);
  std::fputc('\n', out());
  g_stats.printed++;
}

void set_log_rate_limit(unsigned burst, double window_s) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_burst = burst;
  g_window_s = window_s;
}

void flush_log_summaries(bool force) {
  std::lock_guard<std::mutex> lock(g_mu);
  flush_locked(Clock::now(), force);
}

void set_log_stream(FILE* stream) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_stream = stream;
}

LogStats log_stats() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_stats;
}

void route_libbpf_logs() {
  libbpf_set_print(libbpf_print);
}

}  // namespace tickprobe
