#include "tickgame/faults.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tickgame/clock.h"
#include "tickgame/entity_heap.h"
#include "tickgame/scheduler.h"

namespace tickgame {

// Where leaked pointers are stored (and overwritten), so the compiler cannot
// prove the allocation dead and drop the malloc.
void* volatile g_leak_sink = nullptr;

int inject_leak_bytes(std::size_t bytes) {
  asm volatile("");
  if (bytes == 0) return 0;
  void* p = std::malloc(bytes);
  if (!p) return 0;
  std::memset(p, 0xAB, bytes);  // make it resident, not just reserved
  g_leak_sink = p;
  return 1;
}

namespace {
Task leaked_task(Scheduler& sched) {
  co_await sched.suspend_forever();
}
}  // namespace

void inject_coroutine_leak(Scheduler& sched) {
  asm volatile("");
  sched.spawn(leaked_task(sched), "leaked_task");
  asm volatile("");
}

void inject_gc_garbage(EntityHeap& heap, std::size_t n, std::mt19937_64& rng) {
  asm volatile("");
  Entity* first = nullptr;
  Entity* prev = nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    Entity* e = heap.create(EntityKind::kDebris);
    e->x = static_cast<float>(rng() % 1000);
    if (prev) e->add_ref(prev);
    if (!first) first = e;
    prev = e;
  }
  if (first && prev && first != prev) first->add_ref(prev);  // close the ring: a cycle
}

void inject_cpu_hog(std::uint64_t us) {
  asm volatile("");
  const std::uint64_t until = mono_ns() + us * 1000;
  volatile std::uint64_t x = 1;
  while (mono_ns() < until) {
    for (int i = 0; i < 200; ++i) x = x * 2862933555777941757ull + 3037000493ull;
  }
}

long blocking_write_to_slow_client(int fd, SSL* ssl, const std::uint8_t* data, std::size_t len, int timeout_ms) {
  asm volatile("");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  long written = 0;
  bool hard_error = false;
  while (static_cast<std::size_t>(written) < len) {
    if (ssl) {
      int n = SSL_write(ssl, data + written, static_cast<int>(len - written));
      if (n > 0) { written += n; continue; }
      int e = SSL_get_error(ssl, n);
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) hard_error = true;
      break;
    }
    ssize_t n = ::send(fd, data + written, len - written, MSG_NOSIGNAL);
    if (n > 0) { written += n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) hard_error = true;
    break;  // SO_SNDTIMEO expired: the reader is still not reading
  }
  fcntl(fd, F_SETFL, flags);
  timeval zero{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
  asm volatile("");
  return hard_error && written == 0 ? -1 : written;
}

}  // namespace tickgame
