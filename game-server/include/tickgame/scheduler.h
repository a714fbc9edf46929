// The server's single-threaded coroutine scheduler and epoll reactor.
//
// Every coroutine is a Task started with Scheduler::spawn(), which gives it a
// process-unique, monotonic u64 id and a name ("session", "world", ...), and
// fires the coro__create probe. The scheduler resumes tasks from its ready
// queue (coro__resume / coro__suspend around each resume) and destroys them
// when they finish (coro__destroy). A task waits with one of the awaitables:
//   co_await sched.readable(waiter)   fd readable (false if cancelled)
//   co_await sched.writable(waiter)   fd writable (false if cancelled)
//   co_await sched.sleep_for(ns)      timer
//   co_await sched.next_tick()        resumed inside the next tick
//   co_await sched.between_ticks()    resumed after the current/next tick ends
//   co_await sched.suspend_forever()  never resumed (destroyed at shutdown)
// Everything here runs on the thread that calls poll()/run_ready().
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tickgame {

using CoroId = std::uint64_t;
class Scheduler;

class Task {
 public:
  struct promise_type {
    CoroId id = 0;
    bool failed = false;  // ended by an exception (counted, never rethrown)
    Task get_return_object() noexcept { return Task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { failed = true; }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept { if (this != &o) { reset(); h_ = std::exchange(o.h_, {}); } return *this; }
  ~Task() { reset(); }
  Handle release() { return std::exchange(h_, {}); }

 private:
  void reset() { if (h_) h_.destroy(); h_ = {}; }
  Handle h_{};
};

// Receives epoll events for one registered fd.
class IoHandler {
 public:
  virtual void on_io(std::uint32_t events) = 0;
 protected:
  ~IoHandler() = default;
};

// The coroutines waiting on one fd: at most one reader and one writer.
struct IoWaiter {
  Task::Handle reader{};
  Task::Handle writer{};
  bool cancelled = false;
};

class Scheduler {
 public:
  Scheduler();
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Takes ownership of a freshly created task, assigns its id, fires
  // coro__create and queues it to run. Never inlined, so a stack taken at
  // coro__create shows the code that created the coroutine.
  __attribute__((noinline)) CoroId spawn(Task task, const char* name);

  // --- reactor ---
  bool watch(int fd, std::uint32_t events, IoHandler* handler);
  bool rewatch(int fd, std::uint32_t events, IoHandler* handler);
  void unwatch(int fd);
  // Waits up to timeout_ns for fd events and dispatches them to handlers.
  int poll(std::uint64_t timeout_ns);

  // --- waking ---
  void wake_reader(IoWaiter& w);
  void wake_writer(IoWaiter& w);
  void cancel(IoWaiter& w);  // wakes both waiters; later waits return false at once
  void fire_timers(std::uint64_t now_ns);
  std::uint64_t next_timer_deadline() const;  // UINT64_MAX if none
  void wake_tick_waiters();
  void wake_between_ticks_waiters();
  // Resumes queued tasks until the queue is empty.
  void run_ready();
  // Destroys every live task (shutdown), firing coro__destroy for each.
  void destroy_all();

  // --- awaitables ---
  struct IoAwaiter {
    Scheduler* s; IoWaiter* w; bool write;
    bool await_ready() const noexcept { return w->cancelled; }
    void await_suspend(Task::Handle h) noexcept { (write ? w->writer : w->reader) = h; }
    bool await_resume() const noexcept { return !w->cancelled; }
  };
  struct SleepAwaiter {
    Scheduler* s; std::uint64_t deadline;
    bool await_ready() const noexcept { return false; }
    void await_suspend(Task::Handle h);
    void await_resume() const noexcept {}
  };
  struct ListAwaiter {
    std::vector<Task::Handle>* list;
    bool await_ready() const noexcept { return false; }
    void await_suspend(Task::Handle h) { list->push_back(h); }
    void await_resume() const noexcept {}
  };
  IoAwaiter readable(IoWaiter& w) { return {this, &w, false}; }
  IoAwaiter writable(IoWaiter& w) { return {this, &w, true}; }
  SleepAwaiter sleep_for(std::uint64_t ns);
  SleepAwaiter sleep_until(std::uint64_t deadline_ns) { return {this, deadline_ns}; }
  ListAwaiter next_tick() { return {&tick_waiters_}; }
  ListAwaiter between_ticks() { return {&between_waiters_}; }
  std::suspend_always suspend_forever() { return {}; }

  // --- introspection ---
  std::uint64_t live() const { return records_.size(); }
  std::uint64_t created() const { return created_; }
  std::uint64_t destroyed() const { return destroyed_; }
  std::uint64_t failed() const { return failed_; }
  std::size_t ready_count() const { return ready_.size(); }
  CoroId current() const { return current_; }
  const char* name_of(CoroId id) const;
  std::size_t count_named(const std::string& name) const;

 private:
  struct Record { Task::Handle handle; std::string name; };
  struct Timer {
    std::uint64_t deadline; std::uint64_t seq; Task::Handle handle;
    bool operator>(const Timer& o) const { return deadline != o.deadline ? deadline > o.deadline : seq > o.seq; }
  };
  void schedule(Task::Handle h) { ready_.push_back(h); }
  void resume(Task::Handle h);
  void finish(Task::Handle h);

  int epfd_ = -1;
  CoroId next_id_ = 1;
  CoroId current_ = 0;
  std::uint64_t created_ = 0, destroyed_ = 0, failed_ = 0;
  std::uint64_t timer_seq_ = 0;
  std::unordered_map<CoroId, Record> records_;
  std::deque<Task::Handle> ready_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::vector<Task::Handle> tick_waiters_, between_waiters_, swap_;
};

}  // namespace tickgame
