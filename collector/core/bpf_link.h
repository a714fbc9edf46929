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
  ~BpfLink() { reset(); }
  BpfLink(BpfLink&& o) noexcept : link_(std::exchange(o.link_, nullptr)) {}
  BpfLink& operator=(BpfLink&& o) noexcept {
    if (this != &o) {
      reset();
      link_ = std::exchange(o.link_, nullptr);
    }
    return *this;
  }
  BpfLink(const BpfLink&) = delete;
  BpfLink& operator=(const BpfLink&) = delete;

  void reset() {
    if (link_) bpf_link__destroy(link_);
    link_ = nullptr;
  }
  bpf_link* get() const { return link_; }
  explicit operator bool() const { return link_ != nullptr; }

 private:
  bpf_link* link_ = nullptr;
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
