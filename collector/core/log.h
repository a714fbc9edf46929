// Minimal leveled logger on stderr. libbpf's own log is routed here and shown
// only at debug level (-v).
#pragma once

#include <cstdarg>

namespace tickprobe {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Installs a libbpf print callback that forwards to log_msg(kDebug, ...).
void route_libbpf_logs();

}  // namespace tickprobe

#define TP_LOG_ERROR(...) ::tickprobe::log_msg(::tickprobe::LogLevel::kError, __VA_ARGS__)
#define TP_LOG_WARN(...) ::tickprobe::log_msg(::tickprobe::LogLevel::kWarn, __VA_ARGS__)
#define TP_LOG_INFO(...) ::tickprobe::log_msg(::tickprobe::LogLevel::kInfo, __VA_ARGS__)
#define TP_LOG_DEBUG(...)                                                        \
  do {                                                                           \
    if (::tickprobe::log_level() >= ::tickprobe::LogLevel::kDebug)               \
      ::tickprobe::log_msg(::tickprobe::LogLevel::kDebug, __VA_ARGS__);          \
  } while (0)
