#include "exporters/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace tickprobe {
namespace {

TEST(BindAddress, Parses) {
  auto a = parse_bind_address("127.0.0.1:9464");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  EXPECT_EQ(a->to_string(), "127.0.0.1:9464");
  auto v6 = parse_bind_address("[::1]:80");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:80");
  auto any = parse_bind_address(":9464");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "0.0.0.0");
  auto bare = parse_bind_address("9464");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 9464);
  auto host = parse_bind_address("localhost:0");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->port, 0);

  for (const char* bad : {"", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http", "::1:80", "[::1]", "[::1]80",
                          "host:-1", ":"}) {
    auto r = parse_bind_address(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_FALSE(r.error().hint.empty()) << bad;
    }
  }
}

TEST(HttpServer, ServesHandlersWithContentTypes) {
  HttpServer server;
  std::atomic<int> calls{0};
  server.handle_get("/metrics", [&](const HttpRequest&) {
    ++calls;
    return HttpResponse{200, kPrometheusContentType, "up 1\n", {}};
  });
  server.handle_get("/debug/pprof/profile", [](const HttpRequest& req) {
    return HttpResponse{200, kPprofContentType, "seconds=" + req.param("seconds", "30"),
                        {{"Content-Disposition", "attachment; filename=\"profile.pb.gz\""}}};
  });
  server.handle_get("/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("kaput"); });
  ASSERT_TRUE(server.start(*parse_bind_address("127.0.0.1:0")));
  ASSERT_TRUE(server.running());
  ASSERT_NE(server.port(), 0);

  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "up 1\n");
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(calls.load(), 1);

  res = client.Get("/debug/pprof/profile?seconds=5");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "seconds=5");
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(res->get_header_value("Content-Disposition"), "attachment; filename=\"profile.pb.gz\"");

  res = client.Get("/metricsX");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client.Get("/boom");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);

  server.stop();
  EXPECT_FALSE(server.running());
  server.stop();  // idempotent
  EXPECT_FALSE(client.Get("/metrics"));
}

TEST(HttpServer, PortInUseIsAnError) {
  HttpServer first;
  ASSERT_TRUE(first.start(*parse_bind_address("127.0.0.1:0")));
  HttpServer second;
  BindAddress same{"127.0.0.1", first.port()};
  auto st = second.start(same);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("failed to listen on 127.0.0.1:" + std::to_string(first.port())),
            std::string::npos)
      << st.error().message;
  EXPECT_FALSE(st.error().hint.empty());
  EXPECT_FALSE(second.running());
}

TEST(HttpServer, StopRightAfterStartDoesNotHang) {
  for (int i = 0; i < 5; ++i) {
    HttpServer s;
    ASSERT_TRUE(s.start(*parse_bind_address("127.0.0.1:0")));
    s.stop();
  }
}

TEST(ParseDecimalSeconds, StrictAndBounded) {
  struct Case {
    const char* text;
    bool ok;
    double value;
  };
  const Case cases[] = {{"30", true, 30},  {"0.5", true, 0.5}, {"300", true, 300}, {"nan", false, 0},
                        {"inf", false, 0}, {"0x10", false, 0}, {"1 abc", false, 0}, {"-1", false, 0},
                        {"+1", false, 0},  {"1e3", false, 0},  {"", false, 0},      {".5", false, 0},
                        {"5.", false, 0},  {"1.2.3", false, 0}, {" 1", false, 0},   {"301", false, 0}};
  for (const auto& c : cases) {
    double v = -1;
    EXPECT_EQ(tinyhttp::parse_decimal_seconds(c.text, 0, 300, v), c.ok) << c.text;
    if (c.ok) {
      EXPECT_DOUBLE_EQ(v, c.value) << c.text;
    }
  }
}

// A raw client: what a slow or broken client sends, byte by byte.
int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string raw_request(uint16_t port, const std::string& bytes) {
  int fd = connect_to(port);
  EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  return read_all(fd);
}

TEST(HttpServer, LongRunningHandlersAreBoundedWith429) {
  HttpLimits limits;
  limits.slow_workers = 2;
  HttpServer server(limits);
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool release = false;
  server.handle_get(
      "/long",
      [&](const HttpRequest&) {
        std::unique_lock<std::mutex> lock(mu);
        entered++;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        return HttpResponse{200, kTextContentType, "done\n", {}};
      },
      HandlerKind::kLongRunning);
  server.handle_get("/metrics", [](const HttpRequest&) { return HttpResponse{200, kTextContentType, "up 1\n", {}}; });
  ASSERT_TRUE(server.start(*parse_bind_address("127.0.0.1:0")));
  uint16_t port = server.port();
  std::vector<std::thread> longs;
  std::vector<std::string> answers(2);
  for (int i = 0; i < 2; i++)
    longs.emplace_back([&, i] { answers[i] = raw_request(port, "GET /long HTTP/1.1\r\nConnection: close\r\n\r\n"); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered == 2; });
  }
  // Both slow workers are busy: a third long request is refused at once,
  // and the fast lane still answers.
  std::string third = raw_request(port, "GET /long HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(third.rfind("HTTP/1.1 429 ", 0), 0u) << third;
  EXPECT_NE(third.find("Retry-After: "), std::string::npos) << third;
  std::string fast = raw_request(port, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(fast.rfind("HTTP/1.1 200 ", 0), 0u) << fast;
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : longs) t.join();
  for (const auto& a : answers) EXPECT_EQ(a.rfind("HTTP/1.1 200 ", 0), 0u) << a;
  EXPECT_EQ(server.stats().slow_lane_rejected, 1u);
}

TEST(HttpServer, SlowHeadIsCutAtItsDeadline) {
  HttpLimits limits;
  limits.header_timeout_s = 0.3;
  HttpServer server(limits);
  server.handle_get("/metrics", [](const HttpRequest&) { return HttpResponse{200, kTextContentType, "up 1\n", {}}; });
  ASSERT_TRUE(server.start(*parse_bind_address("127.0.0.1:0")));
  int fd = connect_to(server.port());
  // Keeps trickling header lines; the server must end it (408 and close)
  // however often a line arrives.
  std::string got;
  for (int i = 0; i < 400 && got.empty(); i++) {
    std::string line = "X-Slow: " + std::to_string(i) + "\r\n";
    if (i == 0) line = "GET /metrics HTTP/1.1\r\n" + line;
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) break;
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.assign(buf, static_cast<size_t>(n));
    if (n == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::close(fd);
  EXPECT_EQ(server.stats().header_timeouts, 1u);
}

TEST(HttpServer, RejectsOversizedAndMalformedRequests) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 16;
  HttpServer server(limits);
  server.handle_get("/metrics", [](const HttpRequest&) { return HttpResponse{200, kTextContentType, "up 1\n", {}}; });
  ASSERT_TRUE(server.start(*parse_bind_address("127.0.0.1:0")));
  uint16_t port = server.port();
  std::string big = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  EXPECT_EQ(raw_request(port, big).rfind("HTTP/1.1 431 ", 0), 0u);
  EXPECT_EQ(raw_request(port, "GET /metrics HTTP/1.1\r\nContent-Length: 100\r\n\r\n").rfind("HTTP/1.1 413 ", 0), 0u);
  EXPECT_EQ(raw_request(port, "GARBAGE\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(raw_request(port, "GET /a%zz HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(raw_request(port, "POST /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 405 ", 0), 0u);
}

TEST(HttpServer, KeepAliveIsLimited) {
  HttpLimits limits;
  limits.max_requests_per_connection = 3;
  HttpServer server(limits);
  server.handle_get("/metrics", [](const HttpRequest&) { return HttpResponse{200, kTextContentType, "up 1\n", {}}; });
  ASSERT_TRUE(server.start(*parse_bind_address("127.0.0.1:0")));
  // Five pipelined requests: three answers, then the server closes.
  std::string five;
  for (int i = 0; i < 5; i++) five += "GET /metrics HTTP/1.1\r\n\r\n";
  std::string got = raw_request(server.port(), five);
  size_t answers = 0;
  for (size_t pos = 0; (pos = got.find("HTTP/1.1 200 ", pos)) != std::string::npos; pos++) answers++;
  EXPECT_EQ(answers, 3u) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
