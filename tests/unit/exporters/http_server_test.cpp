#include "exporters/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

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

}  // namespace
}  // namespace tickprobe
