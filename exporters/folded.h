// Folded stacks (Brendan Gregg's format, as read by flamegraph.pl, inferno,
// speedscope):
//
//   root;caller;leaf 1234\n
//
// One line per unique stack, root first, with the summed value of the chosen
// sample type. Identical stacks are merged, zero-valued stacks are dropped,
// and lines are sorted by their stack text (byte order), so the output is a
// pure function of the Profile's contents and independent of sample order.
//
// Frame names are Frame::display_name(); ';' inside a name becomes ':' and
// line breaks become spaces, so every line parses. Kernel frames get a "_[k]"
// suffix when annotate_kernel is set (the flamegraph.pl --color=java idiom).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "exporters/sink.h"
#include "model/profile.h"

namespace tickprobe {

enum class FrameKind {
  kUser,
  kKernel,
  kUnknown,  // no symbol: "[unknown] in libfoo.so+0x10"
  kProcess,  // synthetic root frame naming the process or thread
};

FrameKind frame_kind(const Frame& frame);

struct FoldedOptions {
  // Which Profile::sample_types entry to sum; nullopt = default_value_index.
  std::optional<size_t> value_index;
  // Prefix each stack with the process name ("comm"), and with the pid when
  // include_pid is set ("tickgame-4242").
  bool include_process = false;
  bool include_pid = false;
  // Prefix each stack (after the process) with the thread name, plus the tid
  // when include_pid is set ("net-io-4250").
  bool include_thread = false;
  bool annotate_kernel = false;
  // Frames as "func (file.cpp:42)" when the profile carries line info
  // (--line-info): each source line its own frame, as pprof -lines shows.
  bool line_info = false;
};

struct FoldedFrame {
  std::string name;  // already sanitized for the folded format
  FrameKind kind = FrameKind::kUser;
};

struct FoldedStack {
  std::vector<FoldedFrame> frames;  // root first
  int64_t value = 0;
};

// Resolves FoldedOptions::value_index against the profile; an error when the
// profile has no sample types or the index is out of range.
Result<size_t> resolve_value_index(const Profile& profile, std::optional<size_t> value_index);

// Merged, sorted stacks (see file comment). Samples whose values vector is too
// short for the index count as 0.
Result<std::vector<FoldedStack>> fold_stacks(const Profile& profile, const FoldedOptions& options = {});

// "a;b;c 12\n" lines.
Result<std::string> render_folded(const Profile& profile, const FoldedOptions& options = {});

// render_folded + write + commit.
Status write_folded(const Profile& profile, const FoldedOptions& options, Sink& sink);

}  // namespace tickprobe
