#include "exporters/folded.h"

#include <algorithm>
#include <map>

namespace tickprobe {

namespace {

std::string sanitize(std::string name) {
  for (char& c : name) {
    if (c == ';') c = ':';
    else if (c == '\n' || c == '\r') c = ' ';
  }
  return name;
}

std::string with_id(const std::string& name, uint32_t id, bool include_id, const char* fallback) {
  std::string base = name.empty() ? std::string(fallback) : name;
  if (include_id) base += "-" + std::to_string(id);
  return sanitize(std::move(base));
}

std::string join(const std::vector<FoldedFrame>& frames) {
  std::string out;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i) out += ';';
    out += frames[i].name;
  }
  return out;
}

}  // namespace

FrameKind frame_kind(const Frame& frame) {
  if (frame.kernel) return FrameKind::kKernel;
  if (frame.function.empty()) return FrameKind::kUnknown;
  return FrameKind::kUser;
}

Result<size_t> resolve_value_index(const Profile& profile, std::optional<size_t> value_index) {
  if (profile.sample_types.empty()) {
    return Error("profile has no sample types", "the collector must fill Profile::sample_types");
  }
  size_t index = value_index.value_or(profile.default_value_index);
  if (index >= profile.sample_types.size()) {
    return Error("value index " + std::to_string(index) + " is out of range: the profile has " +
                     std::to_string(profile.sample_types.size()) + " sample types",
                 "pick one of the profile's sample types");
  }
  return index;
}

Result<std::vector<FoldedStack>> fold_stacks(const Profile& profile, const FoldedOptions& options) {
  auto index = resolve_value_index(profile, options.value_index);
  if (!index) return index.error();

  // Keyed by the rendered line so that the sort order is exactly the text
  // order a user would get from `sort`.
  std::map<std::string, FoldedStack> merged;
  for (const Sample& sample : profile.samples) {
    int64_t value = *index < sample.values.size() ? sample.values[*index] : 0;
    if (value == 0) continue;
    std::vector<FoldedFrame> frames;
    frames.reserve(sample.frames.size() + 2);
    if (options.include_process) {
      frames.push_back({with_id(sample.comm, sample.pid, options.include_pid, "[unknown process]"),
                        FrameKind::kProcess});
    }
    if (options.include_thread) {
      frames.push_back({with_id(sample.thread, sample.tid, options.include_pid, "[unknown thread]"),
                        FrameKind::kProcess});
    }
    for (auto it = sample.frames.rbegin(); it != sample.frames.rend(); ++it) {
      std::string name = sanitize(options.line_info ? it->display_name_with_line() : it->display_name());
      if (options.annotate_kernel && it->kernel) name += "_[k]";
      frames.push_back({std::move(name), frame_kind(*it)});
    }
    if (frames.empty()) frames.push_back({"[no stack]", FrameKind::kUnknown});
    std::string key = join(frames);
    auto [slot, inserted] = merged.try_emplace(std::move(key));
    if (inserted) slot->second.frames = std::move(frames);
    slot->second.value += value;
  }

  std::vector<FoldedStack> out;
  out.reserve(merged.size());
  for (auto& [key, stack] : merged) {
    if (stack.value != 0) out.push_back(std::move(stack));
  }
  return out;
}

Result<std::string> render_folded(const Profile& profile, const FoldedOptions& options) {
  auto stacks = fold_stacks(profile, options);
  if (!stacks) return stacks.error();
  std::string out;
  for (const FoldedStack& stack : *stacks) {
    out += join(stack.frames);
    out += ' ';
    out += std::to_string(stack.value);
    out += '\n';
  }
  return out;
}

Status write_folded(const Profile& profile, const FoldedOptions& options, Sink& sink) {
  auto text = render_folded(profile, options);
  if (!text) return text.error();
  return write_and_commit(sink, *text);
}

}  // namespace tickprobe
