#include "sockets_report.h"

#include <cstdio>

namespace tickprobe {

namespace {

using nlohmann::json;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string cut(const std::string& s, size_t width) {
  return s.size() > width ? s.substr(0, width - 3) + "..." : s;
}

std::string dur(double ns) {
  if (ns >= 1e9) return fmt("%.2f s", ns / 1e9);
  if (ns >= 1e6) return fmt("%.2f ms", ns / 1e6);
  if (ns >= 1e3) return fmt("%.1f us", ns / 1e3);
  return fmt("%.0f ns", ns);
}

json op_json(const SocketOpStats& s) {
  return {{"op", s.op},
          {"calls", s.calls},
          {"blocked_calls", s.blocked_calls},
          {"blocked_ns", s.blocked_ns},
          {"max_blocked_ns", s.max_blocked_ns},
          {"wall_ns", s.wall_ns},
          {"bytes", s.bytes},
          {"errors", s.errors},
          {"eagain", s.eagain},
          {"partial", s.partial}};
}

json tcp_json(const TcpFacts& t) {
  return {{"state", t.state},
          {"srtt_us", t.srtt_us},
          {"snd_cwnd", t.snd_cwnd},
          {"snd_wnd", t.snd_wnd},
          {"rcv_wnd", t.rcv_wnd},
          {"send_queue_bytes", t.send_queue},
          {"unacked_bytes", t.unacked},
          {"max_send_queue_bytes", t.max_send_queue},
          {"retransmits", t.retransmits},
          {"resets_sent", t.resets_sent},
          {"resets_received", t.resets_received},
          {"zero_window_events", t.zero_window_events},
          {"rcvqueue_full", t.rcvqueue_full},
          {"probes", t.probes},
          {"opened_seen", t.opened_seen},
          {"closed", t.closed},
          {"lifetime_s", t.lifetime_s}};
}

json conn_json(const SocketConnReport& c) {
  json j = {{"pid", c.pid},
            {"protocol", c.protocol},
            {"local", c.local},
            {"peer", c.peer},
            {"fd", c.fd},
            {"tids", c.tids},
            {"top_op", c.top_op},
            {"calls", c.calls},
            {"blocked_ns", c.blocked_ns},
            {"max_blocked_ns", c.max_blocked_ns},
            {"blocked_calls", c.blocked_calls},
            {"wall_ns", c.wall_ns},
            {"send_eagain", c.send_eagain},
            {"partial_writes", c.partial_writes},
            {"recv_eagain", c.recv_eagain},
            {"bytes_sent", c.bytes_sent},
            {"bytes_received", c.bytes_received},
            {"errors", c.errors}};
  json ops = json::array();
  for (const auto& o : c.ops) ops.push_back(op_json(o));
  j["ops"] = ops;
  json stacks = json::array();
  for (const auto& s : c.stacks)
    stacks.push_back({{"op", s.op},
                      {"tid", s.tid},
                      {"blocked_ns", s.blocked_ns},
                      {"blocked_calls", s.blocked_calls},
                      {"frames", s.frames}});
  j["stacks"] = stacks;
  j["tcp"] = c.tcp ? tcp_json(*c.tcp) : json(nullptr);
  return j;
}

std::string tcp_line(const TcpFacts& t) {
  std::string s = "tcp " + t.state + "  srtt " + dur(t.srtt_us * 1e3) + "  send-q " + std::to_string(t.send_queue) +
                  " B (max " + std::to_string(t.max_send_queue) + ")  unacked " + std::to_string(t.unacked) +
                  " B  peer wnd " + std::to_string(t.snd_wnd) + "  our wnd " + std::to_string(t.rcv_wnd);
  if (t.zero_window_events) s += "  zero-window x" + std::to_string(t.zero_window_events);
  if (t.retransmits) s += "  retrans " + std::to_string(t.retransmits);
  if (t.resets_sent || t.resets_received)
    s += "  resets " + std::to_string(t.resets_sent) + " sent/" + std::to_string(t.resets_received) + " recv";
  if (t.rcvqueue_full) s += "  rcvq-full " + std::to_string(t.rcvqueue_full);
  s += "  up " + fmt("%.1f s", t.lifetime_s) + (t.closed ? " (closed)" : "");
  return s;
}

}  // namespace

json sockets_report_json(const SocketsReport& r) {
  json j;
  j["pid"] = r.pid;
  j["comm"] = r.comm;
  j["duration_s"] = r.duration_s;
  j["window"] = {{"start_ns", r.window_start_ns}, {"end_ns", r.window_end_ns}};
  const auto& t = r.totals;
  j["totals"] = {{"calls", t.calls},
                 {"blocked_calls", t.blocked_calls},
                 {"blocked_ns", t.blocked_ns},
                 {"send_eagain", t.send_eagain},
                 {"partial_writes", t.partial_writes},
                 {"connections_seen", t.connections_seen},
                 {"tcp_opened", t.tcp_opened},
                 {"tcp_closed", t.tcp_closed},
                 {"tcp_resets_sent", t.tcp_resets_sent},
                 {"tcp_resets_received", t.tcp_resets_received},
                 {"tcp_retransmits", t.tcp_retransmits},
                 {"tcp_zero_window_events", t.tcp_zero_window_events},
                 {"listen_full_at_accept", t.listen_full_at_accept},
                 {"untracked_connections", t.untracked_connections},
                 {"evicted_connections", t.evicted_connections}};
  json ops = json::array();
  for (const auto& o : r.ops) {
    json oj = op_json(o.stats);
    oj["p50_ns"] = o.p50_ns;
    oj["p90_ns"] = o.p90_ns;
    oj["p99_ns"] = o.p99_ns;
    json h = json::array();
    for (const auto& b : o.histogram) h.push_back({{"ge_ns", b.lower_ns}, {"lt_ns", b.upper_ns}, {"count", b.count}});
    oj["blocked_histogram"] = h;
    ops.push_back(oj);
  }
  j["ops"] = ops;
  json by_blocked = json::array(), by_bp = json::array();
  for (const auto& c : r.by_blocked) by_blocked.push_back(conn_json(c));
  for (const auto& c : r.by_backpressure) by_bp.push_back(conn_json(c));
  j["connections_by_blocked"] = by_blocked;
  j["connections_by_backpressure"] = by_bp;
  json counters = json::object();
  for (const auto& [k, v] : r.counters) counters[k] = v;
  j["counters"] = counters;
  j["warnings"] = r.warnings;
  return j;
}

std::string sockets_report_text(const SocketsReport& r, size_t width) {
  std::string out;
  const auto& t = r.totals;
  out += "sockets of pid " + std::to_string(r.pid) + " (" + r.comm + ") over " + fmt("%.1f s", r.duration_s) + ": " +
         std::to_string(t.calls) + " calls, " + std::to_string(t.blocked_calls) + " blocked for " +
         dur(static_cast<double>(t.blocked_ns)) + "; backpressure: " + std::to_string(t.send_eagain) + " EAGAIN, " +
         std::to_string(t.partial_writes) + " partial writes\n";
  out += "tcp: " + std::to_string(t.tcp_opened) + " opened, " + std::to_string(t.tcp_closed) + " closed, " +
         std::to_string(t.tcp_resets_sent + t.tcp_resets_received) + " resets, " + std::to_string(t.tcp_retransmits) +
         " retransmits, " + std::to_string(t.tcp_zero_window_events) + " zero windows";
  if (t.listen_full_at_accept) out += ", listen queue full at " + std::to_string(t.listen_full_at_accept) + " accepts";
  out += "\n";

  if (!r.ops.empty()) {
    out += "\nby operation:\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-8s %10s %10s %12s %10s %10s %10s %8s %8s\n", "op", "calls", "blocked",
                  "blocked time", "p50", "p99", "max", "eagain", "partial");
    out += line;
    for (const auto& o : r.ops) {
      std::snprintf(line, sizeof line, "  %-8s %10llu %10llu %12s %10s %10s %10s %8llu %8llu\n", o.stats.op.c_str(),
                    static_cast<unsigned long long>(o.stats.calls),
                    static_cast<unsigned long long>(o.stats.blocked_calls),
                    dur(static_cast<double>(o.stats.blocked_ns)).c_str(), dur(o.p50_ns).c_str(), dur(o.p99_ns).c_str(),
                    dur(static_cast<double>(o.stats.max_blocked_ns)).c_str(),
                    static_cast<unsigned long long>(o.stats.eagain), static_cast<unsigned long long>(o.stats.partial));
      out += line;
    }
  }

  auto conn_block = [&](const SocketConnReport& c, bool backpressure) {
    std::string s = "  " + c.protocol + " " + c.local + " -> " + c.peer + " (fd " + std::to_string(c.fd) + "): ";
    if (backpressure)
      s += std::to_string(c.send_eagain) + " EAGAIN, " + std::to_string(c.partial_writes) + " partial writes, " +
           std::to_string(c.bytes_sent) + " B sent";
    else
      s += dur(static_cast<double>(c.blocked_ns)) + " blocked in " + std::to_string(c.blocked_calls) + " calls (max " +
           dur(static_cast<double>(c.max_blocked_ns)) + "), mostly " + c.top_op;
    out += cut(s, width) + "\n";
    if (c.tcp) out += cut("      " + tcp_line(*c.tcp), width) + "\n";
    if (!backpressure)
      for (const auto& st : c.stacks) {
        out += "      " + st.op + " " + dur(static_cast<double>(st.blocked_ns)) + " (tid " + std::to_string(st.tid) +
               "):\n";
        if (st.frames.empty()) out += "        [unknown stack]\n";
        for (size_t i = 0; i < st.frames.size() && i < 12; i++) out += cut("        " + st.frames[i], width) + "\n";
      }
  };
  out += "\ntop connections by blocked time:\n";
  if (r.by_blocked.empty()) out += "  none blocked\n";
  for (const auto& c : r.by_blocked) conn_block(c, false);
  out += "\ntop connections by backpressure (send EAGAIN + partial writes):\n";
  if (r.by_backpressure.empty()) out += "  none\n";
  for (const auto& c : r.by_backpressure) conn_block(c, true);

  std::string counters;
  for (const auto& [k, v] : r.counters) counters += " " + k + "=" + std::to_string(v);
  if (!counters.empty()) out += "# self-accounting:" + counters + "\n";
  for (const auto& w : r.warnings) out += "# warning: " + w + "\n";
  return out;
}

}  // namespace tickprobe
