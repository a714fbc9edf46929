// A server started through a symlink (NAME -> other-binary, as
// /usr/bin/NAME -> /usr/lib/.../real often is): `--exe` given the link's
// path or its basename finds the process, frames are named by the path the
// process ran (not the file the link resolves to), the JSON keeps the
// resolved file, and pprof's File: line is the link's name. The fixture is
// cpu_fixture (burn_hot/burn_cold), started through a link in a temporary
// directory. Needs root and BPF (label: bpf).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

class SymlinkExe : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/tickprobe-symlink-" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    real_ = std::filesystem::canonical(tt::bin_path("cpu_fixture")).string();
    link_ = dir_ + "/worldd";
    std::filesystem::remove(link_);
    std::filesystem::create_symlink(real_, link_);
    // argv[0] is the link, as a shell or init starting /usr/bin/NAME sets it.
    fx_ = std::make_unique<tt::Subprocess>(std::vector<std::string>{link_, "60"});
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(fx_->running()) << fx_->stderr_text();
  }
  void TearDown() override {
    fx_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  int tickprobe(const std::vector<std::string>& args, std::string* err) {
    std::vector<std::string> argv = {tt::bin_path("tickprobe")};
    argv.insert(argv.end(), args.begin(), args.end());
    tt::Subprocess p(argv);
    auto st = p.wait_for(60s);
    *err = p.stderr_text();
    if (!st) p.kill_now();
    return st.value_or(-1);
  }
  std::string dir_, real_, link_;
  std::unique_ptr<tt::Subprocess> fx_;
};

TEST_F(SymlinkExe, ExeMatchesThroughTheLinkAndFramesNameIt) {
  std::string err;
  std::string out = dir_ + "/cpu.json";
  ASSERT_EQ(tickprobe({"profile", "--exe", link_, "-d", "2", "-q", "--json", "-o", out}, &err), 0) << err;
  json j = json::parse(tt::read_file(out), nullptr, false);
  ASSERT_TRUE(j.is_object());
  size_t hot = 0;
  for (const auto& s : j["samples"])
    for (const auto& f : s["stack"])
      if (f["function"] == "burn_hot") {
        EXPECT_EQ(f["module"], link_) << "frames are named by the resolved file";
        hot++;
      }
  EXPECT_GT(hot, 0u) << "no burn_hot frame";
  bool main_seen = false;
  for (const auto& m : j["mappings"])
    if (m["main_executable"].get<bool>()) {
      main_seen = true;
      EXPECT_EQ(m["path"], link_);
      EXPECT_EQ(m.value("resolved_path", ""), real_);
      EXPECT_FALSE(m["build_id"].get<std::string>().empty());
    }
  EXPECT_TRUE(main_seen) << j["mappings"].dump();

  // The basename form matches too, and pprof names the program by the link.
  std::string pb = dir_ + "/cpu.pb.gz";
  ASSERT_EQ(tickprobe({"profile", "--exe", "worldd", "-d", "2", "-q", "-o", pb}, &err), 0) << err;
  std::string cmd = "cd '" + dir_ + "' && HOME='" + dir_ + "' GOCACHE='" + dir_ + "/gocache' PPROF_TMPDIR='" + dir_ +
                    "' PPROF_BINARY_PATH=/nonexistent go tool pprof -top '" + pb + "' 2>/dev/null";
  std::string top;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) top.append(buf, n);
    pclose(p);
  }
  EXPECT_NE(top.find("File: worldd\n"), std::string::npos) << top;
  EXPECT_NE(top.find("burn_hot"), std::string::npos) << top;
}

TEST_F(SymlinkExe, ANameThatRunsNothingSaysWhatWasCompared) {
  std::string err;
  // A file that exists but that no process runs: not "is it running?".
  std::string none = dir_ + "/nothing-runs-this";
  std::filesystem::copy_file(real_, none);
  int rc = tickprobe({"profile", "--exe", none, "-d", "1", "-q"}, &err);
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("no running process matches exe " + none), std::string::npos) << err;
  EXPECT_NE(err.find("hint: no process runs " + none), std::string::npos) << err;
  EXPECT_EQ(err.find("is the process still running?"), std::string::npos) << err;
}

}  // namespace
