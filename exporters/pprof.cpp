#include "exporters/pprof.h"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "exporters/gzip.h"
#include "exporters/protobuf_writer.h"

namespace tickprobe {

namespace {

// Field numbers of profile.proto.
namespace field {
constexpr uint32_t kProfileSampleType = 1, kProfileSample = 2, kProfileMapping = 3, kProfileLocation = 4,
                   kProfileFunction = 5, kProfileStringTable = 6, kProfileTimeNanos = 9,
                   kProfileDurationNanos = 10, kProfilePeriodType = 11, kProfilePeriod = 12,
                   kProfileComment = 13, kProfileDefaultSampleType = 14;
constexpr uint32_t kValueTypeType = 1, kValueTypeUnit = 2;
constexpr uint32_t kSampleLocationId = 1, kSampleValue = 2, kSampleLabel = 3;
constexpr uint32_t kLabelKey = 1, kLabelStr = 2, kLabelNum = 3;
constexpr uint32_t kMappingId = 1, kMappingMemoryStart = 2, kMappingMemoryLimit = 3, kMappingFileOffset = 4,
                   kMappingFilename = 5, kMappingBuildId = 6, kMappingHasFunctions = 7, kMappingHasFilenames = 8,
                   kMappingHasLineNumbers = 9, kMappingHasInlineFrames = 10;
constexpr uint32_t kLocationId = 1, kLocationMappingId = 2, kLocationAddress = 3, kLocationLine = 4;
constexpr uint32_t kLineFunctionId = 1, kLineLine = 2;
constexpr uint32_t kFunctionId = 1, kFunctionName = 2, kFunctionSystemName = 3, kFunctionFilename = 4;
}  // namespace field

class StringTable {
 public:
  StringTable() { intern(""); }  // index 0 must be ""
  int64_t intern(const std::string& s) {
    auto [it, inserted] = index_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (inserted) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, int64_t> index_;
  std::vector<std::string> strings_;
};

struct MappingInfo {
  uint64_t id = 0;
  std::string module;
  uint64_t file_offset = 0;
  std::string build_id;
  bool from_profile = false;  // ranges come from Profile::mappings, not from the frames
  uint64_t memory_start = std::numeric_limits<uint64_t>::max();
  uint64_t memory_limit = 0;
  bool all_functions = true;
  bool any_filenames = false;
  bool any_lines = false;
  bool any_inline = false;
};

struct LineInfo {
  uint64_t function_id;
  int64_t line;
  auto operator<=>(const LineInfo&) const = default;
};

struct LocationInfo {
  uint64_t id;
  uint64_t mapping_id;
  uint64_t address;
  std::vector<LineInfo> lines;
};

struct FunctionInfo {
  uint64_t id;
  int64_t name;
  int64_t filename;
};

class PprofBuilder {
 public:
  explicit PprofBuilder(const Profile& profile, const PprofOptions& options)
      : profile_(profile), options_(options) {}

  std::string build() {
    collect_mappings();
    ProtobufWriter out;
    for (const ValueType& vt : profile_.sample_types) out.add_message(field::kProfileSampleType, value_type(vt));
    for (const Sample& sample : profile_.samples) out.add_message(field::kProfileSample, encode_sample(sample));
    for (const MappingInfo& m : mappings_) out.add_message(field::kProfileMapping, encode_mapping(m));
    for (const LocationInfo& loc : locations_) out.add_message(field::kProfileLocation, encode_location(loc));
    for (const FunctionInfo& fn : functions_) out.add_message(field::kProfileFunction, encode_function(fn));

    // Everything below interns strings too, so compute it before the table
    // is written out.
    ProtobufWriter tail;
    tail.add_varint_nonzero(field::kProfileTimeNanos, static_cast<uint64_t>(profile_.time_nanos));
    tail.add_varint_nonzero(field::kProfileDurationNanos, static_cast<uint64_t>(profile_.duration_nanos));
    if (!profile_.period_type.type.empty() || !profile_.period_type.unit.empty()) {
      tail.add_message(field::kProfilePeriodType, value_type(profile_.period_type));
    }
    tail.add_varint_nonzero(field::kProfilePeriod, static_cast<uint64_t>(profile_.period));
    std::vector<int64_t> comments;
    for (const std::string& c : profile_.comments) comments.push_back(strings_.intern(c));
    if (options_.counters_as_comments) {
      for (const auto& [name, value] : profile_.counters) {
        comments.push_back(strings_.intern("counter " + name + "=" + std::to_string(value)));
      }
    }
    // Repeated int64 in proto3 is packed; pprof's decoder takes both forms.
    tail.add_packed_int64(field::kProfileComment, comments);
    if (profile_.default_value_index < profile_.sample_types.size()) {
      tail.add_varint_nonzero(field::kProfileDefaultSampleType,
                              static_cast<uint64_t>(strings_.intern(
                                  profile_.sample_types[profile_.default_value_index].type)));
    }

    for (const std::string& s : strings_.strings()) out.add_bytes(field::kProfileStringTable, s);
    std::string bytes = out.take();
    bytes += tail.data();
    return bytes;
  }

 private:
  ProtobufWriter value_type(const ValueType& vt) {
    ProtobufWriter w;
    w.add_varint_nonzero(field::kValueTypeType, static_cast<uint64_t>(strings_.intern(vt.type)));
    w.add_varint_nonzero(field::kValueTypeUnit, static_cast<uint64_t>(strings_.intern(vt.unit)));
    return w;
  }

  // Profile::mappings that a frame falls into: same module, address inside.
  const ProfileMapping* profile_mapping(const Frame& frame) const {
    if (frame.module.empty() || frame.kernel) return nullptr;
    auto it = profile_mappings_by_module_.find(frame.module);
    if (it == profile_mappings_by_module_.end()) return nullptr;
    for (size_t idx : it->second) {
      const ProfileMapping& m = profile_.mappings[idx];
      if (frame.address >= m.start && frame.address < m.limit) return &m;
    }
    return nullptr;
  }

  size_t add_profile_mapping(const ProfileMapping& pm) {
    auto [it, inserted] = profile_mapping_slots_.try_emplace(&pm, mappings_.size());
    if (inserted) {
      MappingInfo m;
      m.id = mappings_.size() + 1;
      m.module = pm.path;
      m.memory_start = pm.start;
      m.memory_limit = pm.limit;
      m.file_offset = pm.file_offset;
      m.build_id = pm.build_id;
      m.from_profile = true;
      mappings_.push_back(std::move(m));
    }
    return it->second;
  }

  // First pass: mapping ranges must be known before any Location refers to
  // them. The main executables come first: pprof names the program after
  // the first mapping ("File: ..."), and symbolizers take it as the binary.
  void collect_mappings() {
    for (size_t i = 0; i < profile_.mappings.size(); ++i)
      profile_mappings_by_module_[profile_.mappings[i].path].push_back(i);
    for (const ProfileMapping& pm : profile_.mappings)
      if (pm.main_executable) add_profile_mapping(pm);
    for (const Sample& sample : profile_.samples) {
      for (const Frame& frame : sample.frames) {
        if (frame.module.empty()) continue;
        size_t slot;
        if (const ProfileMapping* pm = profile_mapping(frame)) {
          slot = add_profile_mapping(*pm);
        } else {
          auto [it, inserted] = mapping_ids_.try_emplace(frame.module, mappings_.size());
          if (inserted) {
            MappingInfo m;
            m.id = mappings_.size() + 1;
            m.module = frame.module;
            mappings_.push_back(std::move(m));
          }
          slot = it->second;
        }
        MappingInfo& m = mappings_[slot];
        if (!m.from_profile) {
          uint64_t base = frame.address >= frame.module_offset ? frame.address - frame.module_offset : frame.address;
          m.memory_start = std::min(m.memory_start, base);
          if (frame.address != std::numeric_limits<uint64_t>::max()) {
            m.memory_limit = std::max(m.memory_limit, frame.address + 1);
          }
        }
        if (frame.function.empty()) m.all_functions = false;
        if (!frame.file.empty()) m.any_filenames = true;
        if (frame.line != 0) m.any_lines = true;
        if (frame.inlined) m.any_inline = true;
      }
    }
  }

  uint64_t mapping_id(const Frame& frame) const {
    if (frame.module.empty()) return 0;
    if (const ProfileMapping* pm = profile_mapping(frame)) return mappings_[profile_mapping_slots_.at(pm)].id;
    return mappings_[mapping_ids_.at(frame.module)].id;
  }

  uint64_t function_id(const Frame& frame) {
    auto key = std::make_pair(frame.function, frame.file);
    auto it = function_ids_.find(key);
    if (it != function_ids_.end()) return it->second;
    FunctionInfo fn{functions_.size() + 1, strings_.intern(frame.function), strings_.intern(frame.file)};
    functions_.push_back(fn);
    function_ids_.emplace(std::move(key), fn.id);
    return fn.id;
  }

  uint64_t location_id(const Frame* group, size_t count) {
    const Frame& first = group[0];
    uint64_t mapping_id = this->mapping_id(first);
    std::vector<LineInfo> lines;
    for (size_t i = 0; i < count; ++i) {
      if (group[i].function.empty()) continue;
      lines.push_back({function_id(group[i]), static_cast<int64_t>(group[i].line)});
    }
    auto key = std::make_tuple(mapping_id, first.address, lines);
    auto it = location_ids_.find(key);
    if (it != location_ids_.end()) return it->second;
    LocationInfo loc{locations_.size() + 1, mapping_id, first.address, lines};
    locations_.push_back(loc);
    location_ids_.emplace(std::move(key), loc.id);
    return loc.id;
  }

  ProtobufWriter encode_sample(const Sample& sample) {
    std::vector<uint64_t> ids;
    const auto& frames = sample.frames;
    for (size_t i = 0; i < frames.size();) {
      // Inlined frames (leaf side) share the address of the frame they were
      // inlined into; they end at the first non-inlined frame.
      size_t end = i;
      while (end + 1 < frames.size() && frames[end].inlined && frames[end + 1].address == frames[i].address &&
             frames[end + 1].module == frames[i].module) {
        ++end;
      }
      ids.push_back(location_id(&frames[i], end - i + 1));
      i = end + 1;
    }
    ProtobufWriter w;
    w.add_packed_varints(field::kSampleLocationId, ids);
    w.add_packed_int64(field::kSampleValue, sample.values);
    auto str_label = [&](const std::string& key, const std::string& value) {
      ProtobufWriter l;
      l.add_varint(field::kLabelKey, static_cast<uint64_t>(strings_.intern(key)));
      l.add_varint(field::kLabelStr, static_cast<uint64_t>(strings_.intern(value)));
      w.add_message(field::kSampleLabel, l);
    };
    auto num_label = [&](const std::string& key, int64_t value) {
      ProtobufWriter l;
      l.add_varint(field::kLabelKey, static_cast<uint64_t>(strings_.intern(key)));
      l.add_int64(field::kLabelNum, value);
      w.add_message(field::kSampleLabel, l);
    };
    if (!sample.comm.empty()) str_label("comm", sample.comm);
    if (!sample.thread.empty()) str_label("thread", sample.thread);
    if (sample.pid != 0) num_label("pid", sample.pid);
    if (sample.tid != 0) num_label("tid", sample.tid);
    for (const auto& [key, value] : sample.labels) str_label(key, value);
    return w;
  }

  ProtobufWriter encode_mapping(const MappingInfo& m) {
    ProtobufWriter w;
    w.add_varint(field::kMappingId, m.id);
    w.add_varint_nonzero(field::kMappingMemoryStart, m.memory_start);
    w.add_varint_nonzero(field::kMappingMemoryLimit, m.memory_limit);
    w.add_varint_nonzero(field::kMappingFileOffset, m.file_offset);
    w.add_varint_nonzero(field::kMappingFilename, static_cast<uint64_t>(strings_.intern(m.module)));
    if (!m.build_id.empty())
      w.add_varint(field::kMappingBuildId, static_cast<uint64_t>(strings_.intern(m.build_id)));
    if (m.all_functions) w.add_bool(field::kMappingHasFunctions, true);
    if (m.any_filenames) w.add_bool(field::kMappingHasFilenames, true);
    if (m.any_lines) w.add_bool(field::kMappingHasLineNumbers, true);
    if (m.any_inline) w.add_bool(field::kMappingHasInlineFrames, true);
    return w;
  }

  ProtobufWriter encode_location(const LocationInfo& loc) {
    ProtobufWriter w;
    w.add_varint(field::kLocationId, loc.id);
    w.add_varint_nonzero(field::kLocationMappingId, loc.mapping_id);
    w.add_varint_nonzero(field::kLocationAddress, loc.address);
    for (const LineInfo& line : loc.lines) {
      ProtobufWriter l;
      l.add_varint(field::kLineFunctionId, line.function_id);
      l.add_varint_nonzero(field::kLineLine, static_cast<uint64_t>(line.line));
      w.add_message(field::kLocationLine, l);
    }
    return w;
  }

  ProtobufWriter encode_function(const FunctionInfo& fn) {
    ProtobufWriter w;
    w.add_varint(field::kFunctionId, fn.id);
    w.add_varint_nonzero(field::kFunctionName, static_cast<uint64_t>(fn.name));
    w.add_varint_nonzero(field::kFunctionSystemName, static_cast<uint64_t>(fn.name));
    w.add_varint_nonzero(field::kFunctionFilename, static_cast<uint64_t>(fn.filename));
    return w;
  }

  const Profile& profile_;
  const PprofOptions& options_;
  StringTable strings_;
  std::vector<MappingInfo> mappings_;
  std::unordered_map<std::string, size_t> mapping_ids_;  // frame-derived mappings by module
  std::unordered_map<std::string, std::vector<size_t>> profile_mappings_by_module_;
  std::unordered_map<const ProfileMapping*, size_t> profile_mapping_slots_;
  std::vector<LocationInfo> locations_;
  std::map<std::tuple<uint64_t, uint64_t, std::vector<LineInfo>>, uint64_t> location_ids_;
  std::vector<FunctionInfo> functions_;
  std::map<std::pair<std::string, std::string>, uint64_t> function_ids_;
};

}  // namespace

Result<std::string> encode_pprof_proto(const Profile& profile, const PprofOptions& options) {
  if (profile.sample_types.empty()) {
    return Error("cannot write pprof: profile has no sample types", "the collector must fill Profile::sample_types");
  }
  for (const Sample& sample : profile.samples) {
    if (sample.values.size() != profile.sample_types.size()) {
      return Error("cannot write pprof: a sample has " + std::to_string(sample.values.size()) +
                   " values but the profile has " + std::to_string(profile.sample_types.size()) +
                   " sample types");
    }
  }
  return PprofBuilder(profile, options).build();
}

Result<std::string> render_pprof(const Profile& profile, const PprofOptions& options) {
  auto raw = encode_pprof_proto(profile, options);
  if (!raw) return raw.error();
  return gzip_compress(*raw, options.gzip_level);
}

Status write_pprof(const Profile& profile, const PprofOptions& options, Sink& sink) {
  auto bytes = render_pprof(profile, options);
  if (!bytes) return bytes.error();
  return write_and_commit(sink, *bytes);
}

}  // namespace tickprobe
