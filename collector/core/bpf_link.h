// RAII owner of one libbpf attachment (bpf_link). Move-only: destroying it
// detaches the probe.
#pragma once

#include <bpf/libbpf.h>

#include <utility>

namespace tickprobe {

class BpfLink {
 public:
  BpfLink() = default;
  explicit BpfLink(bpf_link* link) : link_(link) {}
  // A link made by a raw BPF_LINK_CREATE that libbpf 1.1 has no API for
  // (uprobe_multi): owned as its fd.
  static BpfLink from_fd(int fd) {
    BpfLink l;
    l.fd_ = fd;
    return l;
  }
  ~BpfLink() { reset(); }
  BpfLink(BpfLink&& o) noexcept : link_(std::exchange(o.link_, nullptr)), fd_(std::exchange(o.fd_, -1)) {}
  BpfLink& operator=(BpfLink&& o) noexcept {
    if (this != &o) {
      reset();
      link_ = std::exchange(o.link_, nullptr);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  BpfLink(const BpfLink&) = delete;
  BpfLink& operator=(const BpfLink&) = delete;

  void reset() {
    if (link_) bpf_link__destroy(link_);
    link_ = nullptr;
    if (fd_ >= 0) close_fd(fd_);
    fd_ = -1;
  }
  bpf_link* get() const { return link_; }
  explicit operator bool() const { return link_ != nullptr || fd_ >= 0; }

 private:
  static void close_fd(int fd);
  bpf_link* link_ = nullptr;
  int fd_ = -1;
};

// RAII file descriptor (perf events, map fds we created).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  void reset();
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

}  // namespace tickprobe
