// Rendering of the `tickprobe tls` report (model/tls_report.h) as human text
// or JSON. The JSON field names are a stable interface: tests and scripts
// read them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/tls_report.h"

namespace tickprobe {

nlohmann::json tls_report_json(const TlsReport& r);
std::string tls_report_text(const TlsReport& r, size_t width = 150);

}  // namespace tickprobe
