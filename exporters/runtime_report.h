// Rendering of the runtime reports (coroutines, pauses and hitches, leaks)
// as human text or JSON. The JSON field names are a stable interface
// (docs/cli.md): tests and scripts read them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/runtime_reports.h"

namespace tickprobe {

nlohmann::json coro_report_json(const CoroReport& r);
nlohmann::json pause_report_json(const PauseReport& r);
nlohmann::json leak_report_json(const LeakReport& r);

std::string coro_report_text(const CoroReport& r, size_t width = 150);
std::string pause_report_text(const PauseReport& r, size_t width = 150);
std::string leak_report_text(const LeakReport& r, size_t width = 150);

// "1.5 KiB", "12.0 MiB"
std::string format_bytes(double bytes);

}  // namespace tickprobe
