// Strict parsing of command-line values that CLI11's typed options accept
// too generously (durations with units; "nan", "-1" into an unsigned).
#pragma once

#include <string_view>

#include "core/result.h"

namespace tickprobe {

// "300s", "5m", "1.5h", "250ms", or a bare number of seconds ("300").
// Finite, >= 0 and at most a year; no sign, exponent, hex or trailing text.
Result<double> parse_duration_seconds(std::string_view text);

}  // namespace tickprobe
