// Profile model: the symbolized, aggregated stack profile that the collector
// hands to exporters (folded, SVG flame graph, pprof, JSON).
//
// Contract:
//  - Sample::frames is ordered leaf first (frames[0] is where the sample was
//    taken), root last; kernel frames (if any) come before user frames.
//  - Sample::values has one entry per Profile::sample_types, same order.
//  - Unknown frames are kept: function is empty and module/address say where.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tickprobe {

struct Frame {
  std::string function;  // demangled name; empty if unknown
  std::string module;    // path or basename of the ELF (or "[kernel]")
  uint64_t address = 0;  // runtime address (absolute virtual address)
  uint64_t module_offset = 0;  // address relative to the module's file (for [unknown] display)
  std::string file;      // source file, when line info was asked for and found
  uint32_t line = 0;
  bool kernel = false;
  bool inlined = false;  // an inlined frame synthesized from DWARF

  // "func" or "[unknown] in libfoo.so+0x1234"; used by folded/SVG/JSON.
  std::string display_name() const;
  // display_name() plus " (file.cpp:42)" when line info was recorded
  // (--line-info): what folded, SVG, top and JSON show, so each source line
  // of a function is its own frame there, as in pprof's -lines view.
  std::string display_name_with_line() const;
};

struct ValueType {
  std::string type;  // e.g. "samples", "cpu", "offcpu", "alloc_space"
  std::string unit;  // e.g. "count", "nanoseconds", "bytes"
};

struct Sample {
  std::vector<Frame> frames;    // leaf first
  std::vector<int64_t> values;  // parallel to Profile::sample_types
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string comm;    // process name
  std::string thread;  // thread name
  std::map<std::string, std::string> labels;  // extra labels (e.g. "state" => "S")
};

// One executable mapping of a profiled process, for exporters that carry
// mappings (pprof). Frames refer to it by module == path and an address in
// [start, limit).
struct ProfileMapping {
  uint32_t pid = 0;
  uint64_t start = 0;
  uint64_t limit = 0;        // end, exclusive
  uint64_t file_offset = 0;  // offset in the file of `start`
  std::string path;          // as frames name it: for the executable, the path the process ran
  std::string resolved_path; // the file actually mapped, when it differs from `path` (a symlink)
  std::string build_id;      // hex, "" when the file has none
  bool main_executable = false;
};

struct Profile {
  std::vector<ValueType> sample_types;  // at least one
  ValueType period_type;                // e.g. {"cpu","nanoseconds"}
  int64_t period = 0;                   // e.g. 1e9/frequency for CPU
  int64_t time_nanos = 0;               // wall-clock start (unix ns)
  int64_t duration_nanos = 0;
  std::vector<Sample> samples;
  // Self-accounting: e.g. "lost_samples" => 3, "stack_errors" => 1.
  std::map<std::string, uint64_t> counters;
  std::vector<std::string> comments;
  // Executable mappings of the sampled processes, main executables first
  // (pprof's first mapping names the program). May be empty (synthetic
  // profiles): exporters then derive mappings from the frames.
  std::vector<ProfileMapping> mappings;

  // Index into sample_types of the value that flame graphs draw (default 0).
  size_t default_value_index = 0;
};

}  // namespace tickprobe
