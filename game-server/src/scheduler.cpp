#include "tickgame/scheduler.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "tickgame/clock.h"
#include "tickgame/usdt.h"

namespace tickgame {

Scheduler::Scheduler() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1 failed: ") + std::strerror(errno));
}

Scheduler::~Scheduler() {
  destroy_all();
  if (epfd_ >= 0) close(epfd_);
}

CoroId Scheduler::spawn(Task task, const char* name) {
  Task::Handle h = task.release();
  if (!h) return 0;
  CoroId id = next_id_++;
  h.promise().id = id;
  auto [it, _] = records_.emplace(id, Record{h, name ? name : "?"});
  ++created_;
  TICKGAME_PROBE2(coro__create, id, it->second.name.c_str());
  asm volatile("" ::: "memory");  // keep the probe inside this frame
  schedule(h);
  return id;
}

bool Scheduler::watch(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Scheduler::rewatch(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Scheduler::unwatch(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

int Scheduler::poll(std::uint64_t timeout_ns) {
  epoll_event events[256];
  // epoll_pwait2 takes a timespec, so ticks are not rounded to milliseconds.
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull), static_cast<long>(timeout_ns % 1000000000ull)};
  int n = epoll_pwait2(epfd_, events, 256, &ts, nullptr);
  if (n < 0 && errno == ENOSYS) {
    n = epoll_wait(epfd_, events, 256, static_cast<int>((timeout_ns + 999999) / 1000000));
  }
  if (n < 0) return errno == EINTR ? 0 : -1;
  for (int i = 0; i < n; ++i) static_cast<IoHandler*>(events[i].data.ptr)->on_io(events[i].events);
  return n;
}

void Scheduler::wake_reader(IoWaiter& w) {
  if (w.reader) schedule(std::exchange(w.reader, {}));
}
void Scheduler::wake_writer(IoWaiter& w) {
  if (w.writer) schedule(std::exchange(w.writer, {}));
}
void Scheduler::cancel(IoWaiter& w) {
  w.cancelled = true;
  wake_reader(w);
  wake_writer(w);
}

Scheduler::SleepAwaiter Scheduler::sleep_for(std::uint64_t ns) { return {this, mono_ns() + ns}; }

void Scheduler::SleepAwaiter::await_suspend(Task::Handle h) {
  s->timers_.push(Timer{deadline, s->timer_seq_++, h});
}

void Scheduler::fire_timers(std::uint64_t now_ns) {
  while (!timers_.empty() && timers_.top().deadline <= now_ns) {
    schedule(timers_.top().handle);
    timers_.pop();
  }
}

std::uint64_t Scheduler::next_timer_deadline() const {
  return timers_.empty() ? UINT64_MAX : timers_.top().deadline;
}

void Scheduler::wake_tick_waiters() {
  swap_.clear();
  swap_.swap(tick_waiters_);
  for (auto h : swap_) schedule(h);
}

void Scheduler::wake_between_ticks_waiters() {
  swap_.clear();
  swap_.swap(between_waiters_);
  for (auto h : swap_) schedule(h);
}

void Scheduler::run_ready() {
  while (!ready_.empty()) {
    Task::Handle h = ready_.front();
    ready_.pop_front();
    resume(h);
  }
}

void Scheduler::resume(Task::Handle h) {
  CoroId id = h.promise().id;
  TICKGAME_PROBE1(coro__resume, id);
  CoroId prev = std::exchange(current_, id);
  h.resume();
  current_ = prev;
  if (h.done()) {
    finish(h);
  } else {
    TICKGAME_PROBE1(coro__suspend, id);
  }
}

void Scheduler::finish(Task::Handle h) {
  CoroId id = h.promise().id;
  if (h.promise().failed) ++failed_;
  TICKGAME_PROBE1(coro__destroy, id);
  records_.erase(id);
  h.destroy();
  ++destroyed_;
}

void Scheduler::destroy_all() {
  ready_.clear();
  tick_waiters_.clear();
  between_waiters_.clear();
  while (!timers_.empty()) timers_.pop();
  // Destroying a frame runs its locals' destructors, which must not spawn.
  std::vector<Task::Handle> all;
  all.reserve(records_.size());
  for (auto& [id, r] : records_) all.push_back(r.handle);
  for (auto h : all) finish(h);
}

const char* Scheduler::name_of(CoroId id) const {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : it->second.name.c_str();
}

std::size_t Scheduler::count_named(const std::string& name) const {
  std::size_t n = 0;
  for (auto& [id, r] : records_) n += r.name == name;
  return n;
}

}  // namespace tickgame
