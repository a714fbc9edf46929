// pprof export: a gzipped perftools.profiles.Profile protobuf
// (github.com/google/pprof/proto/profile.proto), encoded by hand, readable by
// `go tool pprof`.
//
// Mapping from tickprobe::Profile:
//  - sample_type / period_type / period / time_nanos / duration_nanos /
//    comments are copied; default_sample_type names
//    sample_types[default_value_index]. Each Profile::counters entry becomes
//    one more comment, "counter <name>=<value>", so self-accounting (lost
//    samples, stack errors) travels with the profile.
//  - Mappings: first every Profile::mappings entry marked main_executable
//    (pprof prints the first mapping as "File:", so the program, not a
//    library, comes first), then, in order of first use by a frame, the
//    Profile::mappings entry a frame falls into (same module, address in
//    [start, limit)), with its file_offset and build_id. Frames outside
//    every Profile::mappings entry (kernel "[kernel]", "[vdso]", synthetic
//    profiles) get one Mapping per distinct Frame::module: memory_start is
//    the lowest (address - module_offset) seen, memory_limit the highest
//    address + 1, file_offset 0, no build id. has_functions/filenames/
//    line_numbers/inline_frames say what the frames carried. Frames with no
//    module have mapping_id 0.
//  - One Location per distinct (mapping, address, lines). A run of frames
//    marked Frame::inlined that share the address of the next frame collapses
//    into one Location whose Line list is leaf first (line[i] is inlined into
//    line[i+1]), as pprof requires. Unknown frames (no function) get a
//    Location with an address and no Line, so pprof can symbolize it later.
//  - One Function per distinct (name, file); system_name = name (the
//    collector only keeps the demangled name). With name == system_name,
//    pprof treats the name as possibly mangled and, by default, shortens
//    C++ names (drops template arguments and parameters: "std::vector::
//    push_back"), as it does for perf data; `-symbolize=demangle=full`
//    shows them whole.
//  - Sample: location_id leaf first, values parallel to sample_type; labels
//    "comm" and "thread" (str), "pid" and "tid" (num), then Sample::labels
//    (str) in key order. Empty / zero fields are omitted.
// Output is deterministic: ids follow first appearance in Profile::samples,
// and no clock is read.
#pragma once

#include <string>

#include "core/result.h"
#include "exporters/sink.h"
#include "model/profile.h"

namespace tickprobe {

struct PprofOptions {
  // -1 = zlib default. Level changes only the gzip bytes, never the content.
  int gzip_level = -1;
  bool counters_as_comments = true;
};

// The raw (uncompressed) protobuf bytes.
Result<std::string> encode_pprof_proto(const Profile& profile, const PprofOptions& options = {});

// The gzipped protobuf, as `go tool pprof` and the /debug/pprof convention
// expect.
Result<std::string> render_pprof(const Profile& profile, const PprofOptions& options = {});

Status write_pprof(const Profile& profile, const PprofOptions& options, Sink& sink);

}  // namespace tickprobe
