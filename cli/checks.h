// Strict validators for numeric options. CLI11 converts generously: "nan"
// into a double, "-1" into 18446744073709551615, and its Range prints
// bounds like 1.797e308 in full. These reject before conversion with one
// readable sentence (main() prints it as "error: --OPTION: ..." + a hint,
// exit 2).
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

namespace tickprobe::cli {

// A plain decimal number of seconds: digits with an optional fraction, in
// [0, max] (or (0, max] when zero is not allowed).
inline CLI::Validator Seconds(double max, bool allow_zero, const std::string& zero_means = {}) {
  std::string range = std::string(allow_zero ? "between 0" : "above 0 and at most") + (allow_zero ? " and " : " ") +
                      std::to_string(static_cast<long long>(max)) +
                      (zero_means.empty() ? "" : " (0 = " + zero_means + ")");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        bool digits_ok = !text.empty() && text.find_first_not_of("0123456789.") == std::string::npos &&
                         text.front() != '.' && text.back() != '.' && text.find('.') == text.rfind('.');
        double v = 0;
        if (digits_ok) {
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
          digits_ok = ec == std::errc() && p == text.data() + text.size() && std::isfinite(v);
        }
        if (!digits_ok || v > max || (!allow_zero && v <= 0))
          return "\"" + text + "\" is not a number of seconds " + range;
        return {};
      },
      "SECONDS", "Seconds");
}

// A whole number in [min, max]: digits only (no sign, no exponent).
inline CLI::Validator Count(uint64_t min, uint64_t max) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        uint64_t v = 0;
        bool ok = !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos;
        if (ok) {
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
          ok = ec == std::errc() && p == text.data() + text.size();
        }
        if (!ok || v < min || v > max)
          return "\"" + text + "\" is not a whole number between " + std::to_string(min) + " and " +
                 std::to_string(max);
        return {};
      },
      "N", "Count");
}

// Bounds shared by the subcommands (the BPF maps' sizes).
inline constexpr uint64_t kMaxStacksLimit = 1u << 22;   // 4 Mi stacks (2 GiB of frames)
inline constexpr uint64_t kUnwindRowsLimit = 1u << 26;  // 64 Mi rows (768 MiB)
inline constexpr uint64_t kMaxTargetsLimit = 1u << 16;
inline constexpr uint64_t kMaxBlockUs = 3600ull * 1000000;  // an hour

}  // namespace tickprobe::cli
