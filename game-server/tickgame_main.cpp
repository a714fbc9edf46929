// tickgame: the reference game server that tickprobe is demonstrated and
// tested against. See docs/game-server.md.
#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <cstdio>

#include "tickgame/server.h"

int main(int argc, char** argv) {
  tickgame::ServerConfig cfg;
  CLI::App app{"tickgame: reference game server for tickprobe (fixed-rate tick, coroutines, GC, USDT probes)"};
  app.add_option("--port", cfg.port, "TCP game port")->capture_default_str();
  app.add_option("--tls-port", cfg.tls_port, "TLS game port (0 = off)")->capture_default_str();
  app.add_option("--admin-port", cfg.admin_port, "admin HTTP port on 127.0.0.1 (0 = off)")->capture_default_str();
  app.add_option("--bind", cfg.bind_address, "address of the game listeners")->capture_default_str();
  app.add_option("--tick-hz", cfg.tick_hz, "simulation rate")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--duration", cfg.duration_s, "run this many seconds, then exit cleanly (0 = forever)")->capture_default_str();
  app.add_option("--seed", cfg.seed, "world RNG seed")->capture_default_str();
  app.add_option("--npcs", cfg.npcs, "NPC population")->capture_default_str()->check(CLI::Range(0, 1000000));
  app.add_option("--gc-every-ticks", cfg.gc_every_ticks, "run the entity GC every N ticks")->capture_default_str()->check(CLI::Range(1u, 1000000u));
  app.add_option("--gc-garbage-threshold", cfg.gc_garbage_threshold, "also run the GC once this many entities were allocated since the last cycle")->capture_default_str();
  app.add_option("--max-frame-bytes", cfg.max_frame_bytes, "largest accepted frame (length field)")->capture_default_str()->check(CLI::Range(16ul, 16ul << 20));
  std::size_t max_outbound_kb = cfg.max_outbound_bytes / 1024;
  app.add_option("--max-outbound-kb", max_outbound_kb, "per-session outbound queue cap; beyond it a client is a slow reader")->capture_default_str()->check(CLI::Range(1ul, 1ul << 20));
  int sndbuf_kb = cfg.sndbuf_bytes / 1024;
  app.add_option("--sndbuf-kb", sndbuf_kb, "SO_SNDBUF of sessions (0 = kernel autotuning)")->capture_default_str();
  app.add_option("--max-sessions", cfg.max_sessions, "connections beyond this are refused")->capture_default_str();
  app.add_option("--login-timeout", cfg.login_timeout_s, "seconds a connection may stay without logging in")->capture_default_str();
  app.add_option("--tls-cert", cfg.tls_cert, "PEM certificate (default: self-signed, generated at start-up)");
  app.add_option("--tls-key", cfg.tls_key, "PEM private key for --tls-cert");
  app.add_flag("--print-stats-on-exit", cfg.print_stats_on_exit, "print the final /stats JSON to stdout on exit");
  app.add_option("--inject-leak-bytes-per-tick", cfg.inject_leak_bytes_per_tick, "fault: malloc N bytes per tick and never free them");
  app.add_option("--inject-coroutine-leak-per-sec", cfg.inject_coroutine_leak_per_sec, "fault: spawn R coroutines per second that never finish");
  app.add_option("--inject-gc-garbage-per-tick", cfg.inject_gc_garbage_per_tick, "fault: create N garbage entities per tick (longer GC pauses)");
  app.add_flag("--inject-blocking-writes", cfg.inject_blocking_writes, "fault: write to slow readers with blocking sends on the tick thread");
  app.add_option("--blocking-write-timeout-ms", cfg.blocking_write_timeout_ms, "SO_SNDTIMEO of one blocking write")->capture_default_str();
  app.add_option("--inject-cpu-hog-us", cfg.inject_cpu_hog_us, "fault: burn N microseconds of CPU in every tick");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? 0 : (rc == 0 ? 0 : 2);
  }
  cfg.max_outbound_bytes = max_outbound_kb * 1024;
  cfg.sndbuf_bytes = sndbuf_kb * 1024;

  // One fd per connection: use the whole hard limit, not the 1024 soft default.
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  tickgame::GameServer server(cfg);
  std::string error;
  if (!server.start(error)) {
    std::fprintf(stderr, "tickgame: %s\n", error.c_str());
    const bool tls_problem = error.find("tls") != std::string::npos || error.find("certificate") != std::string::npos ||
                             error.find("key") != std::string::npos;
    std::fprintf(stderr, "hint: %s\n",
                 tls_problem ? "pass both --tls-cert and --tls-key (PEM), or neither for a generated self-signed identity"
                             : "is another process using the port? pick others with --port/--tls-port/--admin-port");
    return 1;
  }
  std::fprintf(stderr, "tickgame: listening tcp=%u tls=%u admin=127.0.0.1:%u tick=%u Hz\n", cfg.port, cfg.tls_port, cfg.admin_port, cfg.tick_hz);
  server.run();
  return 0;
}
