// Rendering of the sockets report (collector/model/sockets_report.h) as
// human text or JSON. The JSON field names are a stable interface (tests and
// scripts read them); times in JSON are nanoseconds (`*_ns`).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/sockets_report.h"

namespace tickprobe {

nlohmann::json sockets_report_json(const SocketsReport& r);
std::string sockets_report_text(const SocketsReport& r, size_t width = 150);

}  // namespace tickprobe
