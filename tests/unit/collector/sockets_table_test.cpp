// SocketTable (collector/model/sockets_table.*): folding drained kernel
// records into per-connection state, the bounded table, the report and the
// hitch hook, on synthetic records.
#include "model/sockets_table.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace tickprobe {
namespace {

sock_tuple tcp4(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  sock_tuple t{};
  t.family = AF_INET;
  t.protocol = IPPROTO_TCP;
  t.type = SOCK_STREAM;
  inet_pton(AF_INET, src, t.saddr);
  inet_pton(AF_INET, dst, t.daddr);
  t.sport = sport;
  t.dport = dport;
  return t;
}

sock_agg_key key(uint32_t tgid, uint32_t tid, uint64_t sk, uint32_t op, const sock_tuple& t, uint64_t stack = 0,
                 int32_t fd = 5) {
  sock_agg_key k{};
  k.tgid = tgid;
  k.tid = tid;
  k.sk = sk;
  k.op = op;
  k.fd = fd;
  k.user_stack = stack;
  k.tuple = t;
  return k;
}

sock_agg_value blocked(uint64_t calls, uint64_t ns, uint64_t last_ns = 1) {
  sock_agg_value v{};
  v.calls = calls;
  v.blocked_calls = calls;
  v.blocked_ns = ns;
  v.max_blocked_ns = ns / (calls ? calls : 1);
  v.wall_ns = ns + calls * 1000;
  v.last_ns = last_ns;
  return v;
}

TEST(SocketsFormat, Endpoints) {
  uint8_t a[16] = {};
  inet_pton(AF_INET, "127.0.0.1", a);
  EXPECT_EQ(format_endpoint(AF_INET, a, 53412), "127.0.0.1:53412");
  uint8_t any[16] = {};
  EXPECT_EQ(format_endpoint(AF_INET, any, 80), "*:80");
  EXPECT_EQ(format_endpoint(AF_INET, any, 0), "*");
  uint8_t v6[16] = {};
  inet_pton(AF_INET6, "::1", v6);
  EXPECT_EQ(format_endpoint(AF_INET6, v6, 443), "[::1]:443");
  uint8_t mapped[16] = {};
  inet_pton(AF_INET6, "::ffff:10.0.0.2", mapped);
  EXPECT_EQ(format_endpoint(AF_INET6, mapped, 7), "[::ffff:10.0.0.2]:7");
  EXPECT_EQ(format_endpoint(AF_UNIX, any, 0), "unix");
  EXPECT_EQ(format_endpoint(99, any, 0), "af99");
}

TEST(SocketsFormat, Names) {
  EXPECT_STREQ(sock_op_name(SOCK_OP_SEND), "send");
  EXPECT_STREQ(sock_op_name(SOCK_OP_ACCEPT), "accept");
  EXPECT_STREQ(sock_op_name(SOCK_OP_MAX), "?");
  EXPECT_STREQ(tcp_state_name(1), "ESTABLISHED");
  EXPECT_STREQ(tcp_state_name(8), "CLOSE_WAIT");
  EXPECT_STREQ(tcp_state_name(99), "?");
  sock_tuple t = tcp4("1.2.3.4", 1, "5.6.7.8", 2);
  EXPECT_EQ(sock_protocol_name(t), "tcp");
  t.protocol = IPPROTO_UDP;
  EXPECT_EQ(sock_protocol_name(t), "udp");
  t.family = AF_INET6;
  EXPECT_EQ(sock_protocol_name(t), "udp6");
  sock_tuple u{};
  u.family = AF_UNIX;
  u.type = SOCK_STREAM;
  EXPECT_EQ(sock_protocol_name(u), "unix");
}

TEST(SocketsFormat, BlockedPeerDescription) {
  SocketBlockedPeer p;
  p.op = "send";
  p.peer = "127.0.0.1:53412";
  p.fd = 37;
  p.blocked_ns = 31'000'000;
  EXPECT_EQ(p.describe(), "blocked in send to 127.0.0.1:53412 (fd 37) 31.0 ms");
  p.op = "recv";
  EXPECT_EQ(p.describe(), "blocked in recv from 127.0.0.1:53412 (fd 37) 31.0 ms");
}

TEST(SocketTable, FoldsDrainsIntoConnectionsAndRanks) {
  SocketTable t;
  sock_tuple slow = tcp4("127.0.0.1", 40000, "127.0.0.1", 5000);
  sock_tuple fast = tcp4("127.0.0.1", 40001, "127.0.0.1", 6000);
  // Two drains of the slow connection (deltas add up), one stack each op.
  t.add_calls(key(10, 11, 0x1000, SOCK_OP_SEND, slow, 0xabc), blocked(3, 30'000'000));
  t.add_calls(key(10, 11, 0x1000, SOCK_OP_SEND, slow, 0xabc), blocked(2, 20'000'000));
  t.add_calls(key(10, 12, 0x1000, SOCK_OP_RECV, slow, 0xdef), blocked(1, 1'000'000));
  t.add_calls(key(10, 11, 0x2000, SOCK_OP_SEND, fast, 0xabc), blocked(1, 2'000'000));
  // Non-blocking backpressure on the fast one.
  sock_agg_value bp{};
  bp.calls = 10;
  bp.eagain = 6;
  bp.partial = 3;
  bp.bytes = 4096;
  t.add_calls(key(10, 11, 0x2000, SOCK_OP_SEND, fast), bp);
  // Another process is not in this report.
  t.add_calls(key(20, 21, 0x3000, SOCK_OP_SEND, slow, 0xabc), blocked(1, 99'000'000'000));

  int named = 0;
  auto namer = [&](uint32_t tgid, uint64_t stack) {
    named++;
    EXPECT_EQ(tgid, 10u);
    return std::vector<std::string>{"send", stack == 0xabc ? "send_to_slow_peer" : "recv_loop", "main"};
  };
  SocketsReport r = t.report(10, 10, namer, 0);
  EXPECT_EQ(r.totals.calls, 3u + 2 + 1 + 1 + 10);
  EXPECT_EQ(r.totals.blocked_ns, 53'000'000u);
  EXPECT_EQ(r.totals.send_eagain, 6u);
  EXPECT_EQ(r.totals.partial_writes, 3u);
  EXPECT_EQ(r.totals.connections_seen, 2u);

  ASSERT_EQ(r.by_blocked.size(), 2u);
  const SocketConnReport& c = r.by_blocked[0];
  EXPECT_EQ(c.peer, "127.0.0.1:5000");
  EXPECT_EQ(c.local, "127.0.0.1:40000");
  EXPECT_EQ(c.protocol, "tcp");
  EXPECT_EQ(c.top_op, "send");
  EXPECT_EQ(c.blocked_ns, 51'000'000u);
  EXPECT_EQ(c.calls, 6u);
  EXPECT_EQ(c.tids, (std::vector<uint32_t>{11, 12}));
  ASSERT_EQ(c.stacks.size(), 2u);
  EXPECT_EQ(c.stacks[0].op, "send");
  EXPECT_EQ(c.stacks[0].blocked_ns, 50'000'000u);
  EXPECT_EQ(c.stacks[0].frames[1], "send_to_slow_peer");
  ASSERT_EQ(c.ops.size(), 2u);
  EXPECT_EQ(c.ops[0].op, "send");
  EXPECT_EQ(c.ops[0].calls, 5u);

  ASSERT_EQ(r.by_backpressure.size(), 1u);
  EXPECT_EQ(r.by_backpressure[0].peer, "127.0.0.1:6000");
  EXPECT_EQ(r.by_backpressure[0].send_eagain, 6u);
  EXPECT_EQ(r.by_backpressure[0].partial_writes, 3u);
  EXPECT_EQ(r.by_backpressure[0].bytes_sent, 4096u);
  EXPECT_GT(named, 0);

  // Op summaries: send first (most blocked).
  ASSERT_FALSE(r.ops.empty());
  EXPECT_EQ(r.ops[0].stats.op, "send");
  EXPECT_EQ(r.ops[0].stats.calls, 16u);
}

TEST(SocketTable, TopOnlyAndNothingBlocked) {
  SocketTable t;
  for (uint16_t i = 0; i < 5; i++)
    t.add_calls(key(1, 1, 0x100 + i, SOCK_OP_SEND, tcp4("10.0.0.1", 1000 + i, "10.0.0.2", 80)),
                blocked(1, 1000u * (i + 1)));
  SocketsReport r = t.report(1, 2, nullptr, 0);
  ASSERT_EQ(r.by_blocked.size(), 2u);
  EXPECT_EQ(r.by_blocked[0].local, "10.0.0.1:1004");
  EXPECT_TRUE(r.by_backpressure.empty());
  EXPECT_TRUE(t.report(2, 2, nullptr, 0).by_blocked.empty());
}

TEST(SocketTable, TcpFactsAttachAndLifetime) {
  SocketTable t;
  sock_tuple tup = tcp4("127.0.0.1", 40000, "127.0.0.1", 5000);
  t.add_calls(key(10, 11, 0x1000, SOCK_OP_SEND, tup, 1), blocked(1, 5'000'000));
  sock_conn c{};
  c.tuple = tup;
  c.tgid = 10;
  c.state = 1;
  c.flags = SOCK_CONN_OPENED;
  c.opened_ns = 1'000'000'000;
  c.first_seen_ns = 1'000'000'000;
  c.send_queue = 6144;
  c.max_send_queue = 8192;
  c.retransmits = 2;
  c.zero_window_events = 1;
  t.update_tcp(0x1000, c);
  SocketsReport r = t.report(10, 10, nullptr, 3'500'000'000);
  ASSERT_EQ(r.by_blocked.size(), 1u);
  ASSERT_TRUE(r.by_blocked[0].tcp.has_value());
  const TcpFacts& f = *r.by_blocked[0].tcp;
  EXPECT_EQ(f.state, "ESTABLISHED");
  EXPECT_EQ(f.send_queue, 6144u);
  EXPECT_EQ(f.max_send_queue, 8192u);
  EXPECT_EQ(f.retransmits, 2u);
  EXPECT_TRUE(f.opened_seen);
  EXPECT_FALSE(f.closed);
  EXPECT_DOUBLE_EQ(f.lifetime_s, 2.5);

  // Closed: the lifetime ends at close, whatever "now" is.
  c.flags |= SOCK_CONN_CLOSED;
  c.closed_ns = 2'000'000'000;
  c.state = 7;
  t.update_tcp(0x1000, c);
  r = t.report(10, 10, nullptr, 9'000'000'000);
  EXPECT_TRUE(r.by_blocked[0].tcp->closed);
  EXPECT_EQ(r.by_blocked[0].tcp->state, "CLOSE");
  EXPECT_DOUBLE_EQ(r.by_blocked[0].tcp->lifetime_s, 1.0);

  // A connection learned before its endpoints were final (connect) still
  // attaches to the calls at the same sock address.
  sock_tuple early = tup;
  early.sport = 0;
  c.tuple = early;
  c.flags = 0;
  c.retransmits = 5;
  t.update_tcp(0x1000, c);
  r = t.report(10, 10, nullptr, 9'000'000'000);
  ASSERT_EQ(r.by_blocked.size(), 1u);
  EXPECT_EQ(r.by_blocked[0].tcp->retransmits, 5u);
}

TEST(SocketTable, BoundedEvictsClosedFirstAndKeepsTotals) {
  SocketTable t(/*max_conns=*/2);
  sock_tuple a = tcp4("127.0.0.1", 1, "127.0.0.1", 9001), b = tcp4("127.0.0.1", 2, "127.0.0.1", 9002),
             c = tcp4("127.0.0.1", 3, "127.0.0.1", 9003);
  t.add_calls(key(1, 1, 0xa, SOCK_OP_SEND, a, 1), blocked(1, 50));
  t.add_calls(key(1, 1, 0xb, SOCK_OP_SEND, b, 1), blocked(1, 900));
  sock_conn closed{};
  closed.tuple = b;
  closed.tgid = 1;
  closed.flags = SOCK_CONN_CLOSED;
  t.update_tcp(0xb, closed);
  // A third connection: b is closed, so b goes (though a blocked less).
  t.add_calls(key(1, 1, 0xc, SOCK_OP_SEND, c, 1), blocked(1, 10));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.evicted(), 1u);
  SocketsReport r = t.report(1, 10, nullptr, 0);
  EXPECT_EQ(r.totals.blocked_ns, 960u);  // totals keep the evicted connection
  EXPECT_EQ(r.totals.calls, 3u);
  EXPECT_EQ(r.totals.connections_seen, 3u);
  EXPECT_EQ(r.totals.evicted_connections, 1u);
  ASSERT_EQ(r.by_blocked.size(), 2u);
  EXPECT_EQ(r.by_blocked[0].peer, "127.0.0.1:9001");
  // None closed: the least blocked goes.
  t.add_calls(key(1, 1, 0xd, SOCK_OP_SEND, tcp4("127.0.0.1", 4, "127.0.0.1", 9004), 1), blocked(1, 500));
  r = t.report(1, 10, nullptr, 0);
  ASSERT_EQ(r.by_blocked.size(), 2u);
  EXPECT_EQ(r.by_blocked[0].peer, "127.0.0.1:9004");
  EXPECT_EQ(r.by_blocked[1].peer, "127.0.0.1:9001");
  EXPECT_EQ(r.totals.blocked_ns, 1460u);
  EXPECT_EQ(t.evicted(), 2u);
}

TEST(SocketTable, IntervalTopPeerForHitches) {
  SocketTable t;
  sock_tuple slow = tcp4("127.0.0.1", 40000, "127.0.0.1", 53412);
  sock_tuple other = tcp4("127.0.0.1", 40001, "127.0.0.1", 6000);
  t.begin_interval();
  t.add_calls(key(10, 11, 0x1, SOCK_OP_SEND, slow, 1, 37), blocked(1, 20'000'000));
  t.add_calls(key(10, 11, 0x2, SOCK_OP_SEND, other, 1, 38), blocked(1, 25'000'000));
  t.add_calls(key(10, 11, 0x1, SOCK_OP_SEND, slow, 2, 37), blocked(1, 11'000'000));  // other stack, same peer
  auto p = t.interval_top_peer(10, 11);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->describe(), "blocked in send to 127.0.0.1:53412 (fd 37) 31.0 ms");
  EXPECT_FALSE(t.interval_top_peer(10, 12).has_value());
  t.begin_interval();
  EXPECT_FALSE(t.interval_top_peer(10, 11).has_value());
}

}  // namespace
}  // namespace tickprobe
