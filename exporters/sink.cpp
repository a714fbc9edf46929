#include "exporters/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tickprobe {

Status StringSink::write(std::string_view bytes) {
  data_.append(bytes);
  return {};
}

Status StringSink::commit() { return {}; }

StreamSink::StreamSink(std::FILE* stream, std::string name) : stream_(stream), name_(std::move(name)) {}

Status StreamSink::write(std::string_view bytes) {
  if (failed_) return *failed_;
  if (bytes.empty()) return {};
  if (std::fwrite(bytes.data(), 1, bytes.size(), stream_) != bytes.size()) {
    int err = errno ? errno : EIO;
    failed_ = Error::from_errno("failed to write to " + name_, err,
                                "is the pipe closed or the disk full?");
    return *failed_;
  }
  return {};
}

Status StreamSink::commit() {
  if (failed_) return *failed_;
  if (std::fflush(stream_) != 0) {
    int err = errno ? errno : EIO;
    failed_ = Error::from_errno("failed to flush " + name_, err);
    return *failed_;
  }
  return {};
}

Result<std::unique_ptr<FileSink>> FileSink::open(const std::string& path) {
  if (path.empty()) return Error("failed to open output file: empty path", "pass a file name, or - for stdout");
  // Same directory as the target, so rename() stays on one filesystem and is
  // atomic.
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    return Error::from_errno("failed to create " + tmp, err, "does the output directory exist and is it writable?");
  }
  return std::unique_ptr<FileSink>(new FileSink(path, std::move(tmp), fd));
}

FileSink::FileSink(std::string path, std::string tmp_path, int fd)
    : path_(std::move(path)), tmp_path_(std::move(tmp_path)), fd_(fd) {}

FileSink::~FileSink() {
  if (!committed_) discard();
}

void FileSink::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
  }
}

Status FileSink::write(std::string_view bytes) {
  if (failed_) return *failed_;
  if (committed_ || fd_ < 0) return Error("failed to write " + path_ + ": sink already committed");
  while (!bytes.empty()) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      failed_ = Error::from_errno("failed to write " + tmp_path_, err, "is the disk full?");
      discard();
      return *failed_;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status FileSink::commit() {
  if (failed_) return *failed_;
  if (committed_) return {};
  // fsync before rename: otherwise a crash can leave the new name pointing at
  // an empty file on ext4 with delayed allocation.
  if (::fsync(fd_) != 0) {
    int err = errno;
    failed_ = Error::from_errno("failed to sync " + tmp_path_, err);
    discard();
    return *failed_;
  }
  if (::close(fd_) != 0) {
    int err = errno;
    fd_ = -1;
    failed_ = Error::from_errno("failed to close " + tmp_path_, err);
    ::unlink(tmp_path_.c_str());
    return *failed_;
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    failed_ = Error::from_errno("failed to rename " + tmp_path_ + " to " + path_, err);
    ::unlink(tmp_path_.c_str());
    return *failed_;
  }
  committed_ = true;
  return {};
}

Result<std::unique_ptr<Sink>> open_sink(const std::string& path) {
  if (path == "-") return std::unique_ptr<Sink>(std::make_unique<StreamSink>());
  auto file = FileSink::open(path);
  if (!file) return file.error();
  return std::unique_ptr<Sink>(file.take());
}

Status write_and_commit(Sink& sink, std::string_view bytes) {
  if (auto st = sink.write(bytes); !st) return st;
  return sink.commit();
}

}  // namespace tickprobe
