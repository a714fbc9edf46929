#include "core/ring_buffers.h"

#include <chrono>
#include <thread>

namespace tickprobe {

RingBuffers::~RingBuffers() {
  if (rb_) ring_buffer__free(rb_);
}

int RingBuffers::dispatch(void* ctx, void* data, size_t size) {
  (*static_cast<Handler*>(ctx))(data, size);
  return 0;
}

Result<size_t> RingBuffers::add(int map_fd, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  auto h = std::make_unique<Handler>(std::move(handler));
  if (!rb_) {
    rb_ = ring_buffer__new(map_fd, dispatch, h.get(), nullptr);
    if (!rb_) return Error::from_errno("failed to set up a ring buffer", errno);
  } else if (int err = ring_buffer__add(rb_, map_fd, dispatch, h.get())) {
    return Error::from_errno("failed to add a ring buffer", err);
  }
  handlers_.push_back(std::move(h));
  return handlers_.size() - 1;
}

void RingBuffers::disable(size_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  if (token < handlers_.size()) *handlers_[token] = [](const void*, size_t) {};
}

int RingBuffers::poll(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!rb_) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return 0;
  }
  int n = ring_buffer__poll(rb_, timeout_ms);
  return n < 0 ? 0 : n;
}

}  // namespace tickprobe
