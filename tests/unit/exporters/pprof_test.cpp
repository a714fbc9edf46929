#include "exporters/pprof.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "exporters/gzip.h"
#include "exporters/protobuf_writer.h"
#include "exporters/top_table.h"
#include "golden.h"
#include "pprof_decoder.h"
#include "sample_profile.h"

namespace tickprobe {
namespace {

using testing::decode_pprof;
using testing::make_sample_profile;

testing::PbProfile decode_gz(const std::string& gz) {
  auto raw = gzip_decompress(gz);
  EXPECT_TRUE(raw) << raw.error().message;
  return decode_pprof(raw ? *raw : std::string());
}

std::string str(const testing::PbProfile& p, int64_t i) { return p.strings.at(static_cast<size_t>(i)); }

TEST(ProtobufWriter, EncodesWireFormat) {
  ProtobufWriter w;
  w.add_varint(1, 150);  // the protobuf docs' example: 08 96 01
  EXPECT_EQ(w.data(), std::string("\x08\x96\x01", 3));
  ProtobufWriter s;
  s.add_bytes(2, "testing");
  EXPECT_EQ(s.data(), std::string("\x12\x07testing", 9));
  ProtobufWriter neg;
  neg.add_int64(1, -1);  // int64 -1: ten bytes
  EXPECT_EQ(neg.data().size(), 11u);
  ProtobufWriter packed;
  std::vector<uint64_t> v = {3, 270, 86942};
  packed.add_packed_varints(4, v);  // docs: 22 06 03 8E 02 9E A7 05
  EXPECT_EQ(packed.data(), std::string("\x22\x06\x03\x8e\x02\x9e\xa7\x05", 8));
  ProtobufWriter empty;
  empty.add_packed_varints(4, {});
  EXPECT_TRUE(empty.empty());
}

TEST(Gzip, RoundTripsAndIsGzip) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>(i);
  auto gz = gzip_compress(data);
  ASSERT_TRUE(gz);
  ASSERT_GE(gz->size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  auto back = gzip_decompress(*gz);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, data);
  EXPECT_FALSE(gzip_decompress(gz->substr(0, gz->size() / 2)));
  EXPECT_FALSE(gzip_decompress("not gzip at all"));
}

TEST(Pprof, GoldenDecodedText) {
  auto gz = render_pprof(make_sample_profile());
  ASSERT_TRUE(gz) << gz.error().message;
  auto p = decode_gz(*gz);
  EXPECT_EQ(testing::check_pprof(p), "");
  testing::expect_matches_golden("sample.pprof.txt", testing::pprof_to_text(p));
  // Same input, same bytes (no clock, no hash-order dependence).
  EXPECT_EQ(*gz, *render_pprof(make_sample_profile()));
}

TEST(Pprof, ContentMatchesProfile) {
  auto p = decode_gz(*render_pprof(make_sample_profile()));
  ASSERT_EQ(p.sample_types.size(), 2u);
  EXPECT_EQ(str(p, p.sample_types[1].type), "cpu");
  EXPECT_EQ(str(p, p.sample_types[1].unit), "nanoseconds");
  EXPECT_EQ(str(p, p.default_sample_type), "cpu");
  EXPECT_EQ(str(p, p.period_type.type), "cpu");
  EXPECT_EQ(p.period, 10000000);
  EXPECT_EQ(p.time_nanos, 1700000000000000000);
  EXPECT_EQ(p.duration_nanos, 5000000000);
  std::vector<std::string> comments;
  for (int64_t c : p.comments) comments.push_back(str(p, c));
  EXPECT_EQ(comments, (std::vector<std::string>{"tickprobe test profile", "counter lost_samples=3",
                                                "counter stack_errors=1"}));
  ASSERT_EQ(p.samples.size(), 9u);

  // Sample 0: push_back inlined into tick_physics -> ONE location with two
  // lines (leaf first), then tick_loop, main.
  const auto& s0 = p.samples[0];
  ASSERT_EQ(s0.location_ids.size(), 3u);
  EXPECT_EQ(s0.values, (std::vector<int64_t>{3, 30000000}));
  const auto& loc = p.locations[s0.location_ids[0] - 1];
  EXPECT_EQ(loc.address, 0x555555554000u + 0x1310);
  ASSERT_EQ(loc.lines.size(), 2u);
  EXPECT_EQ(str(p, p.functions[loc.lines[0].function_id - 1].name), "std::vector<int>::push_back");
  EXPECT_EQ(loc.lines[0].line, 1287);
  EXPECT_EQ(str(p, p.functions[loc.lines[1].function_id - 1].name), "tick_physics");
  EXPECT_EQ(loc.lines[1].line, 23);
  // The second sample has the same stack: locations are shared.
  EXPECT_EQ(p.samples[1].location_ids, s0.location_ids);

  // Labels: comm/thread strings, pid/tid numbers, extra labels.
  std::map<std::string, std::string> labels;
  for (const auto& l : p.samples[4].labels) {
    labels[str(p, l.key)] = l.str ? str(p, l.str) : "#" + std::to_string(l.num);
  }
  EXPECT_EQ(labels, (std::map<std::string, std::string>{
                        {"comm", "tickgame"}, {"thread", "net-io"}, {"pid", "#4242"}, {"tid", "#4250"}, {"state", "R"}}));

  // Mappings: one per module, with ranges covering their locations.
  std::map<std::string, testing::PbMapping> by_file;
  for (const auto& m : p.mappings) by_file[str(p, m.filename)] = m;
  ASSERT_EQ(by_file.size(), 4u);
  EXPECT_EQ(by_file["/opt/tickgame/bin/tickgame"].memory_start, 0x555555554000u);
  EXPECT_TRUE(by_file["/opt/tickgame/bin/tickgame"].has_functions);
  EXPECT_TRUE(by_file["/opt/tickgame/bin/tickgame"].has_inline_frames);
  EXPECT_FALSE(by_file["/opt/tickgame/lib/libgameplugin.so"].has_functions);
  EXPECT_EQ(by_file["/opt/tickgame/lib/libgameplugin.so"].memory_start, 0x7f0000000000u);
  EXPECT_TRUE(by_file.count("[kernel]"));

  // The unknown frame has an address but no line, so pprof can symbolize it.
  const auto& unknown = p.locations[p.samples[5].location_ids[0] - 1];
  EXPECT_EQ(unknown.address, 0x7f0000001234u);
  EXPECT_TRUE(unknown.lines.empty());
}

TEST(Pprof, RejectsInconsistentProfiles) {
  EXPECT_FALSE(render_pprof(Profile{}));
  Profile p = make_sample_profile();
  p.samples[2].values.pop_back();
  auto r = render_pprof(p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("values"), std::string::npos);
}

// --- go tool pprof reads what we write (golang-go is installed by bootstrap;
// a missing go is a failure).

class GoPprof : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("pprof");
    ASSERT_FALSE(dir_.empty());
    std::string out;
    ASSERT_EQ(testing::run_command("command -v go", &out), 0)
        << "go not found\nhint: run scripts/bootstrap.sh (installs golang-go)";
    file_ = dir_ + "/sample.pb.gz";
    StringSink sink;
    ASSERT_TRUE(write_pprof(make_sample_profile(), {}, sink));
    testing::write_file(file_, sink.str());
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  // go needs a writable HOME/GOCACHE under ctest; TZ pins "Time:" lines.
  std::string pprof(const std::string& args) {
    std::string cmd = "cd '" + dir_ + "' && HOME='" + dir_ + "' GOCACHE='" + dir_ + "/gocache' GOPATH='" + dir_ +
                      "/gopath' PPROF_TMPDIR='" + dir_ + "' PPROF_BINARY_PATH='" + dir_ +
                      "' TZ=UTC go tool pprof " + args + " '" + file_ + "' 2>'" + dir_ + "/stderr'";
    std::string out;
    int rc = testing::run_command(cmd, &out);
    EXPECT_EQ(rc, 0) << cmd << "\nstderr:\n" << testing::read_file(dir_ + "/stderr");
    return out;
  }
  std::string dir_;
  std::string file_;
};

using Pair = std::pair<int64_t, int64_t>;

TEST_F(GoPprof, TopMatchesOurTopTable) {
  // demangle=full: keep C++ names whole (pprof simplifies them by default,
  // see pprof.h), so they compare with ours.
  std::string out = pprof("-top -nodecount=100 -sample_index=samples -symbolize=demangle=full");
  // Lines: flat flat% sum% cum cum% name
  std::regex row(R"(^\s*(\d+)\s+[\d.]+%\s+[\d.]+%\s+(\d+)\s+[\d.]+%\s+(.+?)\s*$)");
  std::map<std::string, std::pair<int64_t, int64_t>> pprof_rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, row)) continue;
    std::string name = m[3];
    if (name.ends_with(" (inline)")) name.resize(name.size() - 9);  // pprof marks inlined frames
    pprof_rows[name] = {std::stoll(m[1]), std::stoll(m[2])};
  }
  TopTableOptions opts;
  opts.value_index = 0;
  auto table = compute_top_table(make_sample_profile(), opts);
  ASSERT_TRUE(table);
  size_t checked = 0;
  for (const FunctionTotals& f : table->rows) {
    if (f.name.starts_with("[unknown]")) continue;  // pprof prints the address instead
    auto it = pprof_rows.find(f.name);
    ASSERT_NE(it, pprof_rows.end()) << "pprof -top lacks " << f.name << "\n" << out;
    EXPECT_EQ(it->second.first, f.self) << f.name;
    EXPECT_EQ(it->second.second, f.total) << f.name;
    ++checked;
  }
  EXPECT_EQ(checked, 14u);
  // Ground truth stated in sample_profile.h, independent of top_table.
  EXPECT_EQ(pprof_rows["tick_physics"], Pair(6, 11));
  EXPECT_EQ(pprof_rows["tick_loop"], Pair(0, 14));
  EXPECT_EQ(pprof_rows["std::vector<int>::push_back"], Pair(5, 5));
  EXPECT_EQ(pprof_rows["main"], Pair(0, 18));
}

TEST_F(GoPprof, DefaultSampleTypeIsCpu) {
  std::string out = pprof("-top");
  EXPECT_NE(out.find("Type: cpu"), std::string::npos) << out;
  EXPECT_NE(out.find("Duration: 5s, Total samples = 180ms"), std::string::npos) << out;
  EXPECT_NE(out.find("60ms 33.33% 33.33%      110ms 61.11%  tick_physics"), std::string::npos) << out;
  // pprof's default C++ simplification (system_name == name): templates and
  // parameters dropped, inlined frames marked.
  EXPECT_NE(out.find("50ms 27.78% 61.11%       50ms 27.78%  std::vector::push_back (inline)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("[libgameplugin.so]"), std::string::npos) << out;
}

TEST_F(GoPprof, RawAndTraces) {
  std::string raw = pprof("-raw");
  EXPECT_NE(raw.find("PeriodType: cpu nanoseconds"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Period: 10000000"), std::string::npos) << raw;
  EXPECT_NE(raw.find("samples/count cpu/nanoseconds"), std::string::npos) << raw;
  EXPECT_NE(raw.find("std::vector<int>::push_back"), std::string::npos) << raw;
  std::string traces = pprof("-traces");
  EXPECT_NE(traces.find("tcp_sendmsg"), std::string::npos) << traces;
  EXPECT_NE(traces.find("comm:  tickgame\n"), std::string::npos) << traces;
  EXPECT_NE(traces.find("thread:  net-io\n"), std::string::npos) << traces;
  EXPECT_NE(traces.find("state:  R\n"), std::string::npos) << traces;
  EXPECT_NE(traces.find("pid:  4242\n"), std::string::npos) << traces;
  EXPECT_NE(traces.find("tid:  4250\n"), std::string::npos) << traces;
  EXPECT_NE(traces.find("30ms   std::vector::push_back (inline)\n             tick_physics\n"), std::string::npos)
      << traces;
  EXPECT_NE(traces.find("20ms   tick_physics\n             tick_loop\n             tick_loop\n             main\n"),
            std::string::npos)
      << traces;
}


// A profile whose first sampled frame is in a shared library (jemalloc's
// malloc) with the collector's mappings: the main executable's Mapping
// comes first, every Mapping carries its build id and file offset, and each
// Location points at the mapping its address falls in.
Profile make_library_first_profile() {
  Profile p;
  p.sample_types = {{"alloc_space", "bytes"}};
  auto frame = [](const char* fn, const char* module, uint64_t addr, uint64_t start, uint64_t off) {
    Frame f;
    f.function = fn;
    f.module = module;
    f.address = addr;
    f.module_offset = addr - start + off;
    return f;
  };
  const char* jem = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  const char* exe = "/usr/bin/worldd";
  Sample s;
  s.frames = {frame("je_malloc_default", jem, 0x7f0000011000, 0x7f0000010000, 0x9000),
              frame("spawn_entity", exe, 0x555500001200, 0x555500001000, 0x1000),
              frame("main", exe, 0x555500001100, 0x555500001000, 0x1000)};
  s.values = {4096};
  p.samples.push_back(s);
  ProfileMapping lib{1, 0x7f0000010000, 0x7f0000090000, 0x9000, jem, "", "aabbccdd", false};
  ProfileMapping main_exe{1, 0x555500001000, 0x555500005000, 0x1000, exe, "/usr/lib/worldd-1.2/worldd",
                          "0123456789abcdef", true};
  p.mappings = {lib, main_exe};  // address order, as the symbolizer gives them
  return p;
}

TEST(Pprof, MainExecutableMappingComesFirstWithBuildIds) {
  auto raw = encode_pprof_proto(make_library_first_profile());
  ASSERT_TRUE(raw) << raw.error().message;
  testing::PbProfile p = decode_pprof(*raw);
  EXPECT_EQ(testing::check_pprof(p), "");
  ASSERT_EQ(p.mappings.size(), 2u);
  EXPECT_EQ(str(p, p.mappings[0].filename), "/usr/bin/worldd");
  EXPECT_EQ(str(p, p.mappings[0].build_id), "0123456789abcdef");
  EXPECT_EQ(p.mappings[0].file_offset, 0x1000u);
  EXPECT_EQ(p.mappings[0].memory_start, 0x555500001000u);
  EXPECT_EQ(p.mappings[0].memory_limit, 0x555500005000u);
  EXPECT_EQ(str(p, p.mappings[1].filename), "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
  EXPECT_EQ(str(p, p.mappings[1].build_id), "aabbccdd");
  EXPECT_EQ(p.mappings[1].file_offset, 0x9000u);
  for (const auto& loc : p.locations) {
    const auto& m = p.mappings.at(loc.mapping_id - 1);
    EXPECT_GE(loc.address, m.memory_start);
    EXPECT_LT(loc.address, m.memory_limit);
  }
}

TEST_F(GoPprof, FileLineNamesTheMainExecutable) {
  StringSink sink;
  ASSERT_TRUE(write_pprof(make_library_first_profile(), {}, sink));
  testing::write_file(file_, sink.str());
  std::string top = pprof("-top");
  EXPECT_NE(top.find("File: worldd\n"), std::string::npos) << top;
  std::string raw = pprof("-raw");
  // Mappings section: "1: 0x555500001000/0x555500005000/0x1000 /usr/bin/worldd 0123456789abcdef"
  EXPECT_NE(raw.find("0x555500001000/0x555500005000/0x1000 /usr/bin/worldd 0123456789abcdef"), std::string::npos)
      << raw;
  EXPECT_NE(raw.find("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 aabbccdd"), std::string::npos) << raw;
}

}  // namespace
}  // namespace tickprobe
