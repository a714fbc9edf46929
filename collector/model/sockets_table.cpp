#include "model/sockets_table.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace tickprobe {

std::string format_endpoint(uint16_t family, const uint8_t addr[16], uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_UNIX) return "unix";
  if (family != AF_INET && family != AF_INET6) return "af" + std::to_string(family);
  size_t len = family == AF_INET ? 4 : 16;
  bool any = std::all_of(addr, addr + len, [](uint8_t b) { return b == 0; });
  std::string host;
  if (any)
    host = "*";
  else if (inet_ntop(family, addr, buf, sizeof buf))
    host = family == AF_INET6 ? "[" + std::string(buf) + "]" : std::string(buf);
  else
    host = "?";
  if (any && port == 0) return "*";
  return host + ":" + std::to_string(port);
}

const char* sock_op_name(uint32_t op) {
  static const char* const kNames[SOCK_OP_MAX] = {"send", "sendmsg", "write",   "writev",  "recv",
                                                  "recvmsg", "read", "readv", "connect", "accept"};
  return op < SOCK_OP_MAX ? kNames[op] : "?";
}

const char* tcp_state_name(uint32_t state) {
  static const char* const kNames[] = {"?",          "ESTABLISHED", "SYN_SENT", "SYN_RECV",   "FIN_WAIT1",
                                       "FIN_WAIT2",  "TIME_WAIT",   "CLOSE",    "CLOSE_WAIT", "LAST_ACK",
                                       "LISTEN",     "CLOSING",     "NEW_SYN_RECV"};
  return state < sizeof(kNames) / sizeof(kNames[0]) ? kNames[state] : "?";
}

std::string sock_protocol_name(const sock_tuple& t) {
  if (t.family == AF_UNIX) return t.type == SOCK_DGRAM ? "unix-dgram" : "unix";
  if (t.family == AF_INET || t.family == AF_INET6) {
    std::string v6 = t.family == AF_INET6 ? "6" : "";
    if (t.protocol == IPPROTO_TCP) return "tcp" + v6;
    if (t.protocol == IPPROTO_UDP) return "udp" + v6;
    return "ip" + v6 + "/" + std::to_string(t.protocol);
  }
  return "af" + std::to_string(t.family);
}

std::string SocketBlockedPeer::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, " %.1f ms", static_cast<double>(blocked_ns) / 1e6);
  std::string s = "blocked in " + op + (op.starts_with("recv") || op.starts_with("read") || op == "accept" ? " from " : " to ") + peer;
  if (fd >= 0) s += " (fd " + std::to_string(fd) + ")";
  return s + buf;
}

bool SocketTable::ConnId::operator<(const ConnId& o) const {
  if (tgid != o.tgid) return tgid < o.tgid;
  if (sk != o.sk) return sk < o.sk;
  return std::memcmp(&tuple, &o.tuple, sizeof tuple) < 0;
}

void SocketTable::add_op(SocketOpStats& s, const sock_agg_value& v) {
  s.calls += v.calls;
  s.blocked_calls += v.blocked_calls;
  s.blocked_ns += v.blocked_ns;
  s.max_blocked_ns = std::max<uint64_t>(s.max_blocked_ns, v.max_blocked_ns);
  s.wall_ns += v.wall_ns;
  s.bytes += v.bytes;
  s.errors += v.errors;
  s.eagain += v.eagain;
  s.partial += v.partial;
}

namespace {
uint64_t backpressure_of(const SocketOpStats& s, uint32_t op) {
  return SOCK_OP_IS_SEND(op) ? s.eagain + s.partial : 0;
}
}  // namespace

void SocketTable::evict_one() {
  auto victim = conns_.end();
  auto score = [](const Conn& c) {
    uint64_t s = 0;
    for (const auto& [op, st] : c.ops) s += st.blocked_ns + backpressure_of(st, op) * 1000;
    return s;
  };
  bool victim_closed = false;
  uint64_t victim_score = 0;
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    bool closed = it->second.tcp && (it->second.tcp->flags & SOCK_CONN_CLOSED);
    uint64_t s = score(it->second);
    if (victim == conns_.end() || (closed && !victim_closed) || (closed == victim_closed && s < victim_score)) {
      victim = it;
      victim_closed = closed;
      victim_score = s;
    }
  }
  if (victim == conns_.end()) return;
  for (const auto& [op, st] : victim->second.ops) {
    SocketOpStats& e = evicted_ops_[{victim->first.tgid, op}];
    e.op = sock_op_name(op);
    sock_agg_value v{};
    v.calls = st.calls;
    v.blocked_calls = st.blocked_calls;
    v.blocked_ns = st.blocked_ns;
    v.max_blocked_ns = st.max_blocked_ns;
    v.wall_ns = st.wall_ns;
    v.bytes = st.bytes;
    v.errors = st.errors;
    v.eagain = st.eagain;
    v.partial = st.partial;
    add_op(e, v);
  }
  evicted_conns_by_tgid_[victim->first.tgid]++;
  auto bs = by_sk_.find(victim->first.sk);
  if (bs != by_sk_.end() && !(bs->second < victim->first) && !(victim->first < bs->second)) by_sk_.erase(bs);
  conns_.erase(victim);
  evicted_++;
}

SocketTable::Conn& SocketTable::conn_for(const ConnId& id) {
  auto it = conns_.find(id);
  if (it != conns_.end()) return it->second;
  if (max_conns_ && conns_.size() >= max_conns_) evict_one();
  by_sk_[id.sk] = id;
  return conns_[id];
}

void SocketTable::add_calls(const sock_agg_key& k, const sock_agg_value& v) {
  ConnId id{k.tgid, k.sk, k.tuple};
  Conn& c = conn_for(id);
  SocketOpStats& s = c.ops[k.op];
  s.op = sock_op_name(k.op);
  add_op(s, v);
  c.tids[k.tid] = true;
  if (v.last_ns >= c.last_ns) {
    c.last_ns = v.last_ns;
    c.fd = k.fd;
  }
  if (v.blocked_ns) {
    StackId sid{k.op, k.tid, k.user_stack};
    auto st = c.stacks.find(sid);
    if (st == c.stacks.end() && c.stacks.size() >= max_stacks_per_conn_) sid.stack = 0;  // overflow: unknown stack
    StackAcc& a = c.stacks[sid];
    a.blocked_ns += v.blocked_ns;
    a.blocked_calls += v.blocked_calls;

    // Hitch hook: blocked time per (thread, op, peer, fd) in this interval.
    std::string peer = format_endpoint(k.tuple.family, k.tuple.daddr, k.tuple.dport);
    SocketBlockedPeer& p = interval_[{k.tgid, k.tid}][s.op + " " + peer + " " + std::to_string(k.fd)];
    if (p.op.empty()) {
      p.op = s.op;
      p.peer = peer;
      p.local = format_endpoint(k.tuple.family, k.tuple.saddr, k.tuple.sport);
      p.fd = k.fd;
    }
    p.blocked_ns += v.blocked_ns;
    p.blocked_calls += v.blocked_calls;
  }
}

void SocketTable::update_tcp(uint64_t sk, const sock_conn& c) {
  ConnId id{c.tgid, sk, c.tuple};
  auto it = conns_.find(id);
  if (it == conns_.end()) {
    // Learned before its endpoints were final (connect): the latest
    // connection of that process at this address is the one.
    auto bs = by_sk_.find(sk);
    if (bs != by_sk_.end() && bs->second.tgid == c.tgid) it = conns_.find(bs->second);
  }
  if (it == conns_.end()) {
    conn_for(id).tcp = c;
    return;
  }
  it->second.tcp = c;
}

std::optional<SocketBlockedPeer> SocketTable::interval_top_peer(uint32_t tgid, uint32_t tid) const {
  auto it = interval_.find({tgid, tid});
  if (it == interval_.end()) return std::nullopt;
  const SocketBlockedPeer* best = nullptr;
  for (const auto& [k, p] : it->second)
    if (!best || p.blocked_ns > best->blocked_ns) best = &p;
  if (!best) return std::nullopt;
  return *best;
}

std::map<std::pair<uint32_t, uint32_t>, SocketOpStats> SocketTable::op_totals() const {
  std::map<std::pair<uint32_t, uint32_t>, SocketOpStats> out = evicted_ops_;
  for (const auto& [id, c] : conns_)
    for (const auto& [op, st] : c.ops) {
      SocketOpStats& o = out[{id.tgid, op}];
      o.op = st.op;
      o.calls += st.calls;
      o.blocked_calls += st.blocked_calls;
      o.blocked_ns += st.blocked_ns;
      o.max_blocked_ns = std::max(o.max_blocked_ns, st.max_blocked_ns);
      o.wall_ns += st.wall_ns;
      o.bytes += st.bytes;
      o.errors += st.errors;
      o.eagain += st.eagain;
      o.partial += st.partial;
    }
  return out;
}

uint64_t SocketTable::calls_of(uint32_t tgid) const {
  uint64_t n = 0;
  for (const auto& [key, st] : op_totals())
    if (key.first == tgid) n += st.calls;
  return n;
}

SocketConnReport SocketTable::conn_report(const ConnId& id, const Conn& c, const StackNamer& namer,
                                          uint64_t now_ns) const {
  SocketConnReport r;
  r.pid = id.tgid;
  r.protocol = sock_protocol_name(id.tuple);
  r.local = format_endpoint(id.tuple.family, id.tuple.saddr, id.tuple.sport);
  r.peer = format_endpoint(id.tuple.family, id.tuple.daddr, id.tuple.dport);
  r.fd = c.fd;
  for (const auto& [tid, unused] : c.tids) r.tids.push_back(tid);
  uint64_t top_blocked = 0, top_calls = 0;
  for (const auto& [op, st] : c.ops) {
    r.calls += st.calls;
    r.blocked_ns += st.blocked_ns;
    r.max_blocked_ns = std::max(r.max_blocked_ns, st.max_blocked_ns);
    r.blocked_calls += st.blocked_calls;
    r.wall_ns += st.wall_ns;
    r.errors += st.errors;
    if (SOCK_OP_IS_SEND(op)) {
      r.send_eagain += st.eagain;
      r.partial_writes += st.partial;
      r.bytes_sent += st.bytes;
    } else {
      r.recv_eagain += st.eagain;
      r.bytes_received += st.bytes;
    }
    if (st.blocked_ns > top_blocked || (top_blocked == 0 && st.calls > top_calls)) {
      r.top_op = st.op;
      top_blocked = st.blocked_ns;
      top_calls = st.calls;
    }
    r.ops.push_back(st);
  }
  std::sort(r.ops.begin(), r.ops.end(), [](const SocketOpStats& a, const SocketOpStats& b) {
    return std::tie(a.blocked_ns, a.calls) > std::tie(b.blocked_ns, b.calls);
  });
  // Merge per-thread entries of one stack: the report is per connection.
  std::map<std::pair<uint32_t, uint64_t>, SocketBlockingStack> merged;
  for (const auto& [sid, acc] : c.stacks) {
    SocketBlockingStack& s = merged[{sid.op, sid.stack}];
    s.op = sock_op_name(sid.op);
    if (acc.blocked_ns > s.blocked_ns) s.tid = sid.tid;
    s.blocked_ns += acc.blocked_ns;
    s.blocked_calls += acc.blocked_calls;
  }
  std::vector<std::pair<uint64_t, SocketBlockingStack>> stacks;
  for (auto& [k, s] : merged) stacks.emplace_back(k.second, std::move(s));
  std::sort(stacks.begin(), stacks.end(),
            [](const auto& a, const auto& b) { return a.second.blocked_ns > b.second.blocked_ns; });
  for (size_t i = 0; i < stacks.size() && i < 3; i++) {
    if (namer && stacks[i].first) stacks[i].second.frames = namer(id.tgid, stacks[i].first);
    r.stacks.push_back(std::move(stacks[i].second));
  }
  if (c.tcp) {
    const sock_conn& k = *c.tcp;
    TcpFacts t;
    t.state = tcp_state_name(k.state);
    t.srtt_us = k.srtt_us;
    t.snd_cwnd = k.snd_cwnd;
    t.snd_wnd = k.snd_wnd;
    t.rcv_wnd = k.rcv_wnd;
    t.send_queue = k.send_queue;
    t.unacked = k.unacked;
    t.max_send_queue = k.max_send_queue;
    t.retransmits = k.retransmits;
    t.resets_sent = k.resets_sent;
    t.resets_received = k.resets_received;
    t.zero_window_events = k.zero_window_events;
    t.rcvqueue_full = k.rcvqueue_full;
    t.probes = k.probes;
    t.opened_seen = k.flags & SOCK_CONN_OPENED;
    t.closed = k.flags & SOCK_CONN_CLOSED;
    uint64_t from = k.opened_ns ? k.opened_ns : k.first_seen_ns;
    uint64_t to = t.closed && k.closed_ns ? k.closed_ns : now_ns;
    t.lifetime_s = to > from ? static_cast<double>(to - from) / 1e9 : 0;
    r.tcp = t;
  }
  return r;
}

SocketsReport SocketTable::report(uint32_t tgid, size_t top, const StackNamer& namer, uint64_t now_ns) const {
  SocketsReport r;
  r.pid = tgid;
  SocketProcessTotals& t = r.totals;

  struct Rank {
    uint64_t blocked, backpressure;
    const ConnId* id;
    const Conn* conn;
  };
  std::vector<Rank> ranks;
  for (const auto& [id, c] : conns_) {
    if (id.tgid != tgid) continue;
    Rank k{0, 0, &id, &c};
    for (const auto& [op, st] : c.ops) {
      k.blocked += st.blocked_ns;
      k.backpressure += backpressure_of(st, op);
    }
    if (!c.ops.empty()) t.connections_seen++;
    ranks.push_back(k);
  }
  auto ev = evicted_conns_by_tgid_.find(tgid);
  if (ev != evicted_conns_by_tgid_.end()) {
    t.connections_seen += ev->second;
    t.evicted_connections = ev->second;
  }

  for (const auto& [key, st] : op_totals()) {
    if (key.first != tgid) continue;
    t.calls += st.calls;
    t.blocked_calls += st.blocked_calls;
    t.blocked_ns += st.blocked_ns;
    if (SOCK_OP_IS_SEND(key.second)) {
      t.send_eagain += st.eagain;
      t.partial_writes += st.partial;
    }
    SocketOpSummary s;
    s.stats = st;
    auto h = hists_.find(key);
    if (h != hists_.end()) {
      s.p50_ns = h->second.quantile(0.5);
      s.p90_ns = h->second.quantile(0.9);
      s.p99_ns = h->second.quantile(0.99);
      const auto& slots = h->second.slots();
      for (uint32_t i = 0; i < slots.size(); i++)
        if (slots[i])
          s.histogram.push_back({LatencyHistogram::slot_lower(i), LatencyHistogram::slot_upper(i), slots[i]});
    }
    r.ops.push_back(std::move(s));
  }
  std::sort(r.ops.begin(), r.ops.end(), [](const SocketOpSummary& a, const SocketOpSummary& b) {
    return std::tie(a.stats.blocked_ns, a.stats.calls) > std::tie(b.stats.blocked_ns, b.stats.calls);
  });

  auto kt = totals_.find(tgid);
  if (kt != totals_.end()) {
    const sock_proc_totals& k = kt->second;
    t.tcp_opened = k.opened;
    t.tcp_closed = k.closed;
    t.tcp_resets_sent = k.resets_sent;
    t.tcp_resets_received = k.resets_received;
    t.tcp_retransmits = k.retransmits;
    t.tcp_zero_window_events = k.zero_window_events;
    t.listen_full_at_accept = k.listen_full_at_accept;
    t.untracked_connections = k.untracked_conns;
  }

  std::sort(ranks.begin(), ranks.end(), [](const Rank& a, const Rank& b) { return a.blocked > b.blocked; });
  for (size_t i = 0; i < ranks.size() && r.by_blocked.size() < top && ranks[i].blocked; i++)
    r.by_blocked.push_back(conn_report(*ranks[i].id, *ranks[i].conn, namer, now_ns));
  std::stable_sort(ranks.begin(), ranks.end(),
                   [](const Rank& a, const Rank& b) { return a.backpressure > b.backpressure; });
  for (size_t i = 0; i < ranks.size() && r.by_backpressure.size() < top && ranks[i].backpressure; i++)
    r.by_backpressure.push_back(conn_report(*ranks[i].id, *ranks[i].conn, namer, now_ns));
  return r;
}

}  // namespace tickprobe
