// tickbots: load generator and client-side ground truth for tickgame.
#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <cstdio>

#include "tickgame/bots.h"

int main(int argc, char** argv) {
  tickgame::BotsConfig cfg;
  bool all_tls = false;
  CLI::App app{"tickbots: drives N game clients (TCP/TLS) against tickgame and prints a JSON summary"};
  app.add_option("--host", cfg.host, "server address")->capture_default_str();
  app.add_option("--port", cfg.port, "TCP game port")->capture_default_str();
  app.add_option("--tls-port", cfg.tls_port, "TLS game port")->capture_default_str();
  app.add_option("--clients", cfg.clients, "number of clients")->capture_default_str()->check(CLI::Range(0, 100000));
  auto* frac = app.add_option("--tls-fraction", cfg.tls_fraction, "share of clients using TLS (0..1)")->check(CLI::Range(0.0, 1.0));
  app.add_flag("--tls", all_tls, "all clients use TLS")->excludes(frac);
  app.add_option("--slow-readers", cfg.slow_readers, "clients that stop reading after login")->capture_default_str();
  app.add_option("--duration", cfg.duration_s, "seconds of play before draining")->capture_default_str();
  app.add_option("--tick-hz", cfg.tick_hz, "inputs per second per client")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--threads", cfg.threads, "event-loop threads")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--ping-interval", cfg.ping_interval_s, "seconds between pings per client")->capture_default_str();
  app.add_option("--chat-interval", cfg.chat_interval_s, "mean seconds between chats per client (0 = never)")->capture_default_str();
  app.add_option("--drain-timeout", cfg.drain_timeout_s, "seconds to wait for the server to close after half-close")->capture_default_str();
  app.add_option("--connects-per-ms", cfg.connects_per_ms, "connection ramp")->capture_default_str();
  app.add_option("--seed", cfg.seed, "RNG seed")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (all_tls) cfg.tls_fraction = 1.0;
  if (cfg.tls_fraction > 0 && cfg.tls_port == 0) {
    std::fprintf(stderr, "tickbots: TLS clients requested but --tls-port is not set\nhint: pass the server's --tls-port\n");
    return 2;
  }
  // One fd per connection: use the whole hard limit, not the 1024 soft default.
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  tickgame::BotsSummary s = tickgame::run_bots(cfg);
  std::printf("%s\n", tickgame::bots_summary_to_json(cfg, s).dump(2).c_str());
  return s.established == 0 && cfg.clients > 0 ? 1 : 0;
}
