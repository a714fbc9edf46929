#include "core/parse.h"

#include <charconv>
#include <cmath>
#include <string>

namespace tickprobe {

Result<double> parse_duration_seconds(std::string_view text) {
  std::string whole(text);
  size_t digits = 0;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) digits++;
  std::string_view number = text.substr(0, digits), unit = text.substr(digits);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else
    return Error("\"" + whole + "\" is not a duration (units: ms, s, m, h)");
  double v = 0;
  auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), v, std::chars_format::fixed);
  if (number.empty() || number.front() == '.' || number.back() == '.' || ec != std::errc() ||
      p != number.data() + number.size() || !std::isfinite(v))
    return Error("\"" + whole + "\" is not a duration (units: ms, s, m, h)");
  v *= scale;
  if (v > 366.0 * 86400) return Error("\"" + whole + "\" is longer than a year");
  return v;
}

}  // namespace tickprobe
