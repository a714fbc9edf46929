// Minimal leveled logger on stderr. libbpf's own log is routed here and shown
// only at debug level (-v).
//
// Rate limit: each call site (its format string) prints at most `burst`
// lines per `window_s`; the rest are counted and summarized in one line,
// "warning: ... and 4,312 more like this in the last 10 s: <format>", when
// the window closes (at the next message, or flush_log_summaries(), which
// the agent's loop calls every interval and main() at exit). Debug messages
// (-v) are not limited.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>

namespace tickprobe {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Installs a libbpf print callback that forwards to log_msg(kDebug, ...).
void route_libbpf_logs();

void set_log_rate_limit(unsigned burst, double window_s);  // defaults: 5 per 10 s
// Prints the summaries of windows that are over (all of them with force).
void flush_log_summaries(bool force = false);
// Where lines go (stderr by default; tests use a temporary file).
void set_log_stream(FILE* stream);

struct LogStats {
  uint64_t printed = 0;     // lines written (summaries included)
  uint64_t suppressed = 0;  // messages counted instead of printed
};
LogStats log_stats();

}  // namespace tickprobe

#define TP_LOG_ERROR(...) ::tickprobe::log_msg(::tickprobe::LogLevel::kError, __VA_ARGS__)
#define TP_LOG_WARN(...) ::tickprobe::log_msg(::tickprobe::LogLevel::kWarn, __VA_ARGS__)
#define TP_LOG_INFO(...) ::tickprobe::log_msg(::tickprobe::LogLevel::kInfo, __VA_ARGS__)
#define TP_LOG_DEBUG(...)                                               \
  do {                                                                  \
    if (::tickprobe::log_level() >= ::tickprobe::LogLevel::kDebug)      \
      ::tickprobe::log_msg(::tickprobe::LogLevel::kDebug, __VA_ARGS__); \
  } while (0)
