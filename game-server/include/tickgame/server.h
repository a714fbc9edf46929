// tickgame's server: listeners, sessions, the fixed-rate tick, the GC task,
// fault injection and the admin HTTP endpoint.
//
// Threads: run() is the "tick-main" thread (reactor + scheduler + tick); the
// admin endpoint runs on "admin-http" threads (tinyhttp's event thread and
// its two workers). Only FaultSettings and StatsBoard are shared.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tickgame/arena.h"
#include "tickgame/entity_heap.h"
#include "tickgame/faults.h"
#include "tickgame/protocol.h"
#include "tickgame/scheduler.h"
#include "tickgame/stats.h"
#include "tickgame/tls.h"
#include "tickgame/world.h"

namespace tickgame {

struct ServerConfig {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 7777;
  std::uint16_t tls_port = 0;     // 0 = no TLS listener
  std::uint16_t admin_port = 9100;  // 0 = no admin endpoint; always 127.0.0.1
  std::uint32_t tick_hz = 20;
  double duration_s = 0;          // 0 = until SIGINT/SIGTERM
  std::uint64_t seed = 1;
  std::uint32_t gc_every_ticks = 20;
  std::uint64_t gc_garbage_threshold = 20000;  // collect early once this many entities were allocated
  int npcs = 1000;
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::size_t max_outbound_bytes = 32 * 1024;  // per-session queue cap: beyond it the client is a slow reader
  int sndbuf_bytes = 16 * 1024;                // SO_SNDBUF of sessions (0 = kernel autotuning)
  std::size_t max_sessions = 4096;
  double login_timeout_s = 10;
  int blocking_write_timeout_ms = 30;
  std::string tls_cert, tls_key;
  bool print_stats_on_exit = false;
  // initial fault settings
  std::uint64_t inject_leak_bytes_per_tick = 0;
  double inject_coroutine_leak_per_sec = 0;
  std::uint64_t inject_gc_garbage_per_tick = 0;
  bool inject_blocking_writes = false;
  std::uint64_t inject_cpu_hog_us = 0;
};

class GameServer;

class Session final : public IoHandler {
 public:
  Session(GameServer& srv, std::uint64_t id, int fd, SSL* ssl, std::size_t max_frame);
  ~Session();
  void on_io(std::uint32_t events) override;

  GameServer& srv;
  const std::uint64_t id;
  int fd;
  SSL* ssl;  // null for plain TCP
  std::uint64_t opened_ns;
  bool closed = false;
  bool coroutine_done = false;
  bool want_write = false;  // EPOLLOUT registered
  bool counted_slow = false;
  IoWaiter waiter;
  FrameDecoder decoder;
  // outbound queue: out[out_off..] is pending; frame_ends are cumulative byte
  // offsets of queued frames (to count frames fully written)
  std::vector<std::uint8_t> out;
  std::size_t out_off = 0;
  std::uint64_t enqueued_total = 0, written_total = 0;
  std::deque<std::uint64_t> frame_ends;
  // game state
  bool logged_in = false;
  Entity* player = nullptr;
  Input last_input;
  bool has_input = false;
  std::vector<std::uint32_t> known;  // entity ids the client was told about (sorted)
  std::size_t pending() const { return out.size() - out_off; }
};

class GameServer {
 public:
  explicit GameServer(ServerConfig cfg);
  ~GameServer();
  // Binds the listeners and admin endpoint; false with `error` set on failure.
  bool start(std::string& error);
  // Runs the main loop on the calling thread until stop() or --duration.
  void run();
  void request_stop() { stop_requested_.store(true); }

  FaultSettings& faults() { return faults_; }
  StatsBoard& board() { return board_; }
  const ServerConfig& config() const { return cfg_; }
  nlohmann::json stats_json() const { return stats_to_json(board_.read(), faults_); }

 private:
  friend class Session;
  struct Listener final : IoHandler {
    int fd = -1;
    bool tls = false;
    IoWaiter waiter;
    Scheduler* sched = nullptr;
    void on_io(std::uint32_t) override { sched->wake_reader(waiter); }
  };
  struct SignalSource final : IoHandler {
    int fd = -1;
    GameServer* srv = nullptr;
    void on_io(std::uint32_t) override;
  };

  // coroutines
  Task acceptor_task(Listener* l);
  Task session_task(Session* s);
  Task world_task();
  Task npc_ai_task(std::size_t group, std::size_t groups);
  Task gc_task();
  Task stats_task();

  bool open_listener(Listener& l, std::uint16_t port, bool tls, std::string& error);
  void open_session(int fd, bool tls);
  void close_session(Session& s, CloseReason why);
  void reap_sessions();
  enum class ReadOutcome { kDrained, kBudgetSpent, kClosed };
  // Reads and handles what is available, at most kReadBudgetPerWake bytes.
  ReadOutcome read_available(Session& s);
  void handle_frame(Session& s, const FrameView& f);
  void frame_error(Session& s, FrameError e);
  bool enqueue(Session& s, std::span<const std::uint8_t> frame);
  void flush(Session& s);
  void account_written(Session& s, std::size_t n);
  void broadcast_chat(Session& from, const std::string& text);

  void run_tick();
  void tick_body(std::uint64_t tick);
  void send_deltas(std::uint64_t tick);
  void reset_arena();
  void run_gc();
  void publish_stats();
  void start_admin();
  void stop_admin();

  ServerConfig cfg_;
  FaultSettings faults_;
  StatsBoard board_;
  ServerCounters counters_;
  Scheduler sched_;
  EntityHeap heap_;
  World world_;
  TickArena arena_;
  std::mt19937_64 rng_;
  SslCtxPtr tls_ctx_;
  Listener tcp_listener_, tls_listener_;
  SignalSource signals_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
  std::vector<Session*> closed_sessions_;
  std::uint64_t next_session_id_ = 1;
  std::uint64_t tick_ = 0;
  std::uint64_t ticks_since_gc_ = 0;
  double coroutine_leak_credit_ = 0;
  std::vector<std::uint8_t> scratch_;
  std::vector<std::uint8_t> read_buf_;
  std::atomic<bool> stop_requested_{false};
  struct AdminState;  // the tinyhttp server, kept out of this header
  struct AdminStateDeleter { void operator()(AdminState* a) const; };
  std::unique_ptr<AdminState, AdminStateDeleter> admin_;
};

}  // namespace tickgame
