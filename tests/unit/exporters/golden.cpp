#include "golden.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tickprobe::testing {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

void expect_matches_golden(const std::string& name, const std::string& actual) {
  const std::string golden = std::string(TICKPROBE_SOURCE_DIR) + "/tests/unit/exporters/golden/" + name;
  const char* update = std::getenv("TICKPROBE_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    write_file(golden, actual);
    std::printf("updated golden %s\n", golden.c_str());
    return;
  }
  ASSERT_TRUE(fs::exists(golden)) << "missing golden file " << golden
                                  << "\nhint: run the test with TICKPROBE_UPDATE_GOLDEN=1 to create it";
  std::string expected = read_file(golden);
  if (expected != actual) {
    std::string out = std::string(TICKPROBE_BINARY_DIR) + "/golden-actual/" + name;
    write_file(out, actual);
    ADD_FAILURE() << "output differs from golden " << golden << "\nactual output written to " << out
                  << "\nhint: diff them; if the change is intended, rerun with TICKPROBE_UPDATE_GOLDEN=1";
  }
}

std::string make_temp_dir(const std::string& tag) {
  std::string base = std::string(TICKPROBE_BINARY_DIR) + "/test-tmp";
  fs::create_directories(base);
  std::string templ = base + "/" + tag + "-XXXXXX";
  char* made = mkdtemp(templ.data());
  if (!made) return {};
  return templ;
}

int run_command(const std::string& command, std::string* output, bool merge_stderr) {
  std::string cmd = command + (merge_stderr ? " 2>&1" : "");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  std::string out;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (output) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace tickprobe::testing
