// Renders `tickprobe goroutines` reports (model/goroutine_report.h): JSON
// and text (the live groups, the growing ones with their parked stacks).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/goroutine_report.h"

namespace tickprobe {

nlohmann::json goroutine_report_json(const GoroutineReport& r);
// `leaks`: also the growth verdicts (the --leaks hunt).
std::string goroutine_report_text(const GoroutineReport& r, bool leaks);

}  // namespace tickprobe
