// tickbots: an epoll load generator for tickgame. Each thread drives its
// share of the clients with non-blocking sockets (TCP or TLS): connect, log
// in, send one input per tick, ping periodically (RTT), chat now and then,
// and read world deltas. Slow readers stop reading after login so the
// server's send buffers fill up. At the end every client half-closes and
// reads until the server closes, so the summary is exact client-side ground
// truth that can be compared with the server's /stats.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tickgame {

struct BotsConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7777;
  std::uint16_t tls_port = 0;
  int clients = 10;
  double tls_fraction = 0;   // share of clients that use TLS (needs tls_port)
  int slow_readers = 0;      // the last K clients stop reading after login
  double duration_s = 10;    // sending phase; then drain
  std::uint32_t tick_hz = 20;
  int threads = 1;
  double ping_interval_s = 1.0;
  double chat_interval_s = 10.0;  // mean seconds between chats per client (0 = never)
  double connect_timeout_s = 5.0;
  double drain_timeout_s = 3.0;
  int connects_per_ms = 2;         // connection ramp, so the listen backlog is never flooded
  int slow_reader_rcvbuf = 4096;   // SO_RCVBUF of slow readers
  std::uint64_t seed = 1;
};

struct BotsSummary {
  std::uint64_t attempted = 0, established = 0, failed = 0;
  std::uint64_t tls_attempted = 0, tls_ok = 0, tls_failed = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0, frames_sent = 0, frames_received = 0;
  std::uint64_t welcomes = 0, deltas = 0, pongs = 0, chats_received = 0, chats_sent = 0, pings_sent = 0, inputs_sent = 0;
  std::uint64_t slow_readers = 0, closed_cleanly = 0;
  // Local ports of the slow readers' connections (ground truth for tools
  // that attribute blocking to peers).
  std::vector<std::uint16_t> slow_reader_ports;
  std::vector<std::uint64_t> connect_us, handshake_us, rtt_us;
  std::map<std::string, std::uint64_t> errors;
  double elapsed_s = 0;

  void merge(const BotsSummary& o);
};

BotsSummary run_bots(const BotsConfig& cfg);
nlohmann::json bots_summary_to_json(const BotsConfig& cfg, const BotsSummary& s);

}  // namespace tickgame
