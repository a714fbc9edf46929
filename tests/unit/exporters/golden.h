// Golden-file comparison for exporter formats. Goldens live in
// tests/unit/exporters/golden/; run the tests with TICKPROBE_UPDATE_GOLDEN=1
// to rewrite them from the current output (then review the diff).
#pragma once

#include <string>

namespace tickprobe::testing {

// Compares `actual` with golden/<name>. On mismatch, writes the actual
// output next to the build tree (printed in the failure) for diffing.
void expect_matches_golden(const std::string& name, const std::string& actual);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);

// A fresh directory under the build tree (removed by the caller if wanted).
std::string make_temp_dir(const std::string& tag);

// Runs a shell command; returns exit status, fills combined stdout (and
// stderr when merge_stderr).
int run_command(const std::string& command, std::string* output, bool merge_stderr = false);

}  // namespace tickprobe::testing
