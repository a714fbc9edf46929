// Test-only decoder for perftools.profiles.Profile, written independently of
// the encoder (it reads the wire format field by field and accepts both
// packed and unpacked repeated fields). pprof_to_text() prints a stable,
// human-readable form with string indices resolved, used as golden text.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tickprobe::testing {

struct PbValueType { int64_t type = 0, unit = 0; };
struct PbLabel { int64_t key = 0, str = 0, num = 0, num_unit = 0; };
struct PbSample { std::vector<uint64_t> location_ids; std::vector<int64_t> values; std::vector<PbLabel> labels; };
struct PbMapping {
  uint64_t id = 0, memory_start = 0, memory_limit = 0, file_offset = 0;
  int64_t filename = 0, build_id = 0;
  bool has_functions = false, has_filenames = false, has_line_numbers = false, has_inline_frames = false;
};
struct PbLine { uint64_t function_id = 0; int64_t line = 0; };
struct PbLocation { uint64_t id = 0, mapping_id = 0, address = 0; std::vector<PbLine> lines; bool is_folded = false; };
struct PbFunction { uint64_t id = 0; int64_t name = 0, system_name = 0, filename = 0, start_line = 0; };

struct PbProfile {
  std::vector<PbValueType> sample_types;
  std::vector<PbSample> samples;
  std::vector<PbMapping> mappings;
  std::vector<PbLocation> locations;
  std::vector<PbFunction> functions;
  std::vector<std::string> strings;
  int64_t time_nanos = 0, duration_nanos = 0, period = 0, default_sample_type = 0;
  PbValueType period_type;
  std::vector<int64_t> comments;
};

// Throws std::runtime_error on malformed input.
PbProfile decode_pprof(std::string_view raw);

// Checks the invariants pprof relies on (string 0 is "", ids non-zero and
// unique, references resolve, values match sample types); "" if all hold.
std::string check_pprof(const PbProfile& p);

std::string pprof_to_text(const PbProfile& p);

}  // namespace tickprobe::testing
