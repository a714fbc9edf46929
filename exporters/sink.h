// Sinks: where exporter bytes go. Every writer (folded, SVG, pprof, JSON,
// Prometheus text) renders into a Sink, so the CLI picks the destination
// (file, stdout, memory) without the writer knowing.
//
// Contract:
//  - write() appends bytes; it may buffer. commit() makes everything written
//    visible at the destination and must be called once at the end; a sink
//    destroyed without commit() leaves the destination untouched (FileSink)
//    or simply drops the bytes.
//  - After a failure, every later call fails with the first error.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace tickprobe {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(std::string_view bytes) = 0;
  virtual Status commit() = 0;
  // Where the bytes go, for messages ("/tmp/x.svg", "<stdout>", "<memory>").
  virtual std::string describe() const = 0;
};

// Collects everything in memory; commit() is a no-op. Used by tests and by the
// HTTP handlers that serve a rendered body.
class StringSink final : public Sink {
 public:
  Status write(std::string_view bytes) override;
  Status commit() override;
  std::string describe() const override { return "<memory>"; }
  const std::string& str() const { return data_; }
  std::string take() { return std::move(data_); }

 private:
  std::string data_;
};

// Writes to a stdio stream it does not own (stdout by default); commit()
// flushes.
class StreamSink final : public Sink {
 public:
  explicit StreamSink(std::FILE* stream = stdout, std::string name = "<stdout>");
  Status write(std::string_view bytes) override;
  Status commit() override;
  std::string describe() const override { return name_; }

 private:
  std::FILE* stream_;
  std::string name_;
  std::optional<Error> failed_;
};

// Writes a file atomically: bytes go to "<path>.tmp.<pid>" in the same
// directory, and commit() fsyncs and renames it over <path>. Readers never
// see a half-written file; without commit() the temp file is removed.
class FileSink final : public Sink {
 public:
  // Creates the temp file (mode 0644 before umask). Fails with the OS error.
  static Result<std::unique_ptr<FileSink>> open(const std::string& path);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  Status write(std::string_view bytes) override;
  Status commit() override;
  std::string describe() const override { return path_; }

 private:
  FileSink(std::string path, std::string tmp_path, int fd);
  void discard();

  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
  std::optional<Error> failed_;
};

// "-" means stdout; anything else is a FileSink on that path.
Result<std::unique_ptr<Sink>> open_sink(const std::string& path);

// Writes all of `bytes` to the sink and commits it.
Status write_and_commit(Sink& sink, std::string_view bytes);

}  // namespace tickprobe
