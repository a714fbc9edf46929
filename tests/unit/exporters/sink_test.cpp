#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "exporters/sink.h"
#include "golden.h"

namespace tickprobe {
namespace {

namespace fs = std::filesystem;
using testing::make_temp_dir;
using testing::read_file;
using testing::write_file;

TEST(StringSink, CollectsBytes) {
  StringSink sink;
  ASSERT_TRUE(sink.write("abc"));
  ASSERT_TRUE(sink.write(std::string_view("\0d", 2)));
  ASSERT_TRUE(sink.commit());
  EXPECT_EQ(sink.str(), std::string("abc\0d", 5));
  EXPECT_EQ(sink.describe(), "<memory>");
}

TEST(FileSink, ReplacesTargetOnlyOnCommit) {
  std::string dir = make_temp_dir("sink");
  std::string path = dir + "/out.txt";
  write_file(path, "old");
  auto sink = FileSink::open(path);
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->write("new "));
  ASSERT_TRUE((*sink)->write("content"));
  // Readers still see the old file while writing is in progress.
  EXPECT_EQ(read_file(path), "old");
  ASSERT_TRUE((*sink)->commit());
  EXPECT_EQ(read_file(path), "new content");
  // No temp file left behind.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u);
  // Writing after commit is an error, not a silent append.
  EXPECT_FALSE((*sink)->write("more"));
  fs::remove_all(dir);
}

TEST(FileSink, DestroyWithoutCommitLeavesTargetAndRemovesTemp) {
  std::string dir = make_temp_dir("sink");
  std::string path = dir + "/out.txt";
  write_file(path, "old");
  {
    auto sink = FileSink::open(path);
    ASSERT_TRUE(sink);
    ASSERT_TRUE((*sink)->write("partial"));
    EXPECT_TRUE(fs::exists(path + ".tmp." + std::to_string(getpid())));
  }
  EXPECT_EQ(read_file(path), "old");
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(getpid())));
  fs::remove_all(dir);
}

TEST(FileSink, MissingDirectoryIsAnErrorWithHint) {
  auto sink = FileSink::open("/nonexistent-tickprobe-dir/out.svg");
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("/nonexistent-tickprobe-dir/out.svg.tmp."), std::string::npos);
  EXPECT_NE(sink.error().message.find("No such file or directory"), std::string::npos);
  EXPECT_FALSE(sink.error().hint.empty());
}

TEST(OpenSink, DashMeansStdout) {
  auto sink = open_sink("-");
  ASSERT_TRUE(sink);
  EXPECT_EQ((*sink)->describe(), "<stdout>");
  std::string dir = make_temp_dir("sink");
  auto file = open_sink(dir + "/x");
  ASSERT_TRUE(file);
  ASSERT_TRUE(write_and_commit(**file, "x"));
  EXPECT_EQ(read_file(dir + "/x"), "x");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tickprobe
