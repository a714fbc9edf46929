// Self-test of tickprobe_test_support.
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "test_support.h"

using namespace std::chrono_literals;
namespace tt = tickprobe::test;

TEST(TestSupportSubprocess, CapturesOutputExitCodeAndEnv) {
  tt::Subprocess p({"/bin/sh", "-c", "echo out-$TP_TEST_VAR; echo err >&2; exit 3"}, {"TP_TEST_VAR=42"});
  ASSERT_TRUE(p.started());
  auto st = p.wait_for(5s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 3);
  EXPECT_EQ(p.stdout_text(), "out-42\n");
  EXPECT_EQ(p.stderr_text(), "err\n");
}

TEST(TestSupportSubprocess, WaitForTimesOutAndTerminateStops) {
  tt::Subprocess p({"/bin/sleep", "30"});
  EXPECT_FALSE(p.wait_for(50ms).has_value());
  EXPECT_TRUE(p.running());
  EXPECT_GT(p.pid(), 0);
  EXPECT_EQ(p.terminate(2s), 128 + SIGTERM);
  EXPECT_FALSE(p.running());
}

TEST(TestSupportSubprocess, KilledOnDestruction) {
  pid_t pid;
  {
    tt::Subprocess p({"/bin/sleep", "30"});
    pid = p.pid();
  }
  EXPECT_NE(kill(pid, 0), 0);  // reaped: the pid no longer exists
}

TEST(TestSupportPorts, FreePortAndTcpWait) {
  std::uint16_t port = tt::pick_free_port();
  ASSERT_NE(port, 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(tt::wait_for_tcp_port(port, 200ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(TestSupportHttp, GetAndPostAgainstALocalServer) {
  httplib::Server srv;
  srv.Get("/hello", [](const httplib::Request&, httplib::Response& r) { r.set_content("hi", "text/plain"); });
  srv.Post("/echo", [](const httplib::Request& q, httplib::Response& r) { r.set_content(q.body, "text/plain"); });
  std::uint16_t port = tt::pick_free_port();
  std::thread th([&] { srv.listen("127.0.0.1", port); });
  ASSERT_TRUE(tt::wait_for_tcp_port(port, 5s));
  auto [status, body] = tt::http_get("127.0.0.1", port, "/hello");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "hi");
  EXPECT_EQ(tt::http_post("127.0.0.1", port, "/echo", "{}").body, "{}");
  EXPECT_EQ(tt::http_get("127.0.0.1", port, "/missing").status, 404);
  srv.stop();
  th.join();
  EXPECT_EQ(tt::http_get("127.0.0.1", port, "/hello", 500ms).status, 0);
}

TEST(TestSupportPaths, BinPathUsesTheBuildBinDir) {
  EXPECT_EQ(tt::bin_path("tickgame"), std::string(TICKPROBE_BIN_DIR) + "/tickgame");
}
