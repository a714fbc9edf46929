// One ring-buffer manager for every family: each family adds its ringbuf
// map with a handler, and the run loop (agent, recorder, hunts) polls them
// all with one epoll wait instead of splitting its time between families.
#pragma once

#include <bpf/libbpf.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

class RingBuffers {
 public:
  using Handler = std::function<void(const void* data, size_t size)>;
  RingBuffers() = default;
  ~RingBuffers();
  RingBuffers(const RingBuffers&) = delete;
  RingBuffers& operator=(const RingBuffers&) = delete;

  // Adds a ringbuf map; `handler` runs on the polling thread. Returns a
  // token for disable(). libbpf cannot remove a buffer from a ring_buffer,
  // so a family that goes away disables its handler (its events are then
  // consumed and ignored; the map lives on through the manager's mmap).
  Result<size_t> add(int map_fd, Handler handler);
  void disable(size_t token);
  // Waits up to timeout_ms for events on any buffer; returns events handled.
  int poll(int timeout_ms);
  bool empty() const { return handlers_.empty(); }

 private:
  static int dispatch(void* ctx, void* data, size_t size);
  ring_buffer* rb_ = nullptr;
  std::vector<std::unique_ptr<Handler>> handlers_;
  std::mutex mu_;  // add() vs poll()
};

}  // namespace tickprobe
