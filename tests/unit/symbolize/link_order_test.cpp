// The dynamic linker's global lookup order (symbolize/link_order.h): made-up
// objects for the order itself, real Debian binaries for the ELF reads.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <map>

#include "symbolize/link_order.h"

namespace tickprobe {
namespace {

std::vector<std::string> paths(const std::vector<LinkOrderEntry>& order) {
  std::vector<std::string> out;
  for (const auto& e : order) out.push_back(e.path);
  return out;
}

// /srv/game needs libgame.so and libc; libgame.so needs libjemalloc and libc;
// jemalloc needs libc. Mapped in an order unlike the lookup order.
LinkOrderInput game_server() {
  static const std::map<std::string, DynamicInfo> dyn = {
      {"/srv/game", {"", {"libgame.so", "libc.so.6"}}},
      {"/srv/lib/libgame.so", {"libgame.so", {"libjemalloc.so.2", "libc.so.6"}}},
      {"/usr/lib/libjemalloc.so.2", {"libjemalloc.so.2", {"libc.so.6"}}},
      {"/usr/lib/libc.so.6", {"libc.so.6", {"ld-linux-x86-64.so.2"}}},
      {"/usr/lib/ld-linux-x86-64.so.2", {"ld-linux-x86-64.so.2", {}}},
      {"/usr/lib/libtcmalloc.so.4.5.10", {"libtcmalloc.so.4", {"libc.so.6"}}},
      {"/srv/plugins/local.so", {"local.so", {"libc.so.6"}}},
  };
  LinkOrderInput in;
  in.exe = "/srv/game";
  in.mapped = {"/usr/lib/libc.so.6", "/srv/game", "/usr/lib/libjemalloc.so.2", "/srv/lib/libgame.so",
               "/usr/lib/ld-linux-x86-64.so.2"};
  in.dynamic_info = [](const std::string& p) -> std::optional<DynamicInfo> {
    auto it = dyn.find(p);
    if (it == dyn.end()) return std::nullopt;
    return it->second;
  };
  return in;
}

TEST(LinkOrder, ExecutableThenNeededBreadthFirst) {
  auto order = global_lookup_order(game_server());
  // BFS: game's deps (libgame, libc) before libgame's (jemalloc), libc's (ld.so) last.
  EXPECT_EQ(paths(order), (std::vector<std::string>{"/srv/game", "/srv/lib/libgame.so", "/usr/lib/libc.so.6",
                                                    "/usr/lib/libjemalloc.so.2", "/usr/lib/ld-linux-x86-64.so.2"}));
  EXPECT_EQ(order[0].reason, "executable");
  EXPECT_EQ(order[3].reason, "DT_NEEDED of /srv/lib/libgame.so");
  for (const auto& e : order) EXPECT_TRUE(e.global) << e.path;
}

TEST(LinkOrder, PreloadComesRightAfterTheExecutable) {
  LinkOrderInput in = game_server();
  // Mapped behind a symlink: the file is libtcmalloc.so.4.5.10, the name its soname.
  in.mapped.push_back("/usr/lib/libtcmalloc.so.4.5.10");
  in.preload = {"libtcmalloc.so.4"};
  auto order = global_lookup_order(in);
  ASSERT_GE(order.size(), 2u);
  EXPECT_EQ(order[1].path, "/usr/lib/libtcmalloc.so.4.5.10");
  EXPECT_EQ(order[1].reason, "LD_PRELOAD");
  // Its own dependency (libc) is already in the scope, once.
  auto p = paths(order);
  EXPECT_EQ(std::count(p.begin(), p.end(), "/usr/lib/libc.so.6"), 1);
  // A preload given as a path works as well.
  in.preload = {"/usr/lib/libjemalloc.so.2"};
  order = global_lookup_order(in);
  EXPECT_EQ(order[1].path, "/usr/lib/libjemalloc.so.2");
}

TEST(LinkOrder, DlopenedLocallyComesLastAndIsNotGlobal) {
  LinkOrderInput in = game_server();
  in.mapped.insert(in.mapped.begin(), "/srv/plugins/local.so");
  auto order = global_lookup_order(in);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.back().path, "/srv/plugins/local.so");
  EXPECT_FALSE(order.back().global);
}

TEST(LinkOrder, UnmappedNeededIsSkipped) {
  LinkOrderInput in = game_server();
  in.mapped.erase(std::find(in.mapped.begin(), in.mapped.end(), "/usr/lib/libjemalloc.so.2"));
  auto p = paths(global_lookup_order(in));
  EXPECT_EQ(std::find(p.begin(), p.end(), "/usr/lib/libjemalloc.so.2"), p.end());
  EXPECT_EQ(p.size(), 4u);
}

TEST(LinkOrder, SplitsLdPreloadLikeLdSo) {
  EXPECT_EQ(split_ld_preload(" a.so:/x/b.so  c.so:"), (std::vector<std::string>{"a.so", "/x/b.so", "c.so"}));
  EXPECT_TRUE(split_ld_preload("").empty());
}

TEST(LinkOrder, ReadsRealDynamicSections) {
  const std::string jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  auto info = read_dynamic_info(jemalloc);
  ASSERT_TRUE(info) << jemalloc << " not installed\nhint: run scripts/bootstrap.sh (installs libjemalloc-dev)";
  EXPECT_EQ(info->soname, "libjemalloc.so.2");
  EXPECT_NE(std::find(info->needed.begin(), info->needed.end(), "libc.so.6"), info->needed.end());
  // Defines (not imports) malloc and sdallocx; imports, and so does not define, memcpy.
  auto defs = find_defined_functions(jemalloc, {"malloc", "sdallocx", "memcpy", "_Znwm"}, false);
  EXPECT_TRUE(defs.count("malloc"));
  EXPECT_TRUE(defs.count("sdallocx"));
  EXPECT_TRUE(defs.count("_Znwm"));
  EXPECT_FALSE(defs.count("memcpy"));
}

TEST(LinkOrder, ThisProcess) {
  auto order = process_lookup_order(static_cast<uint32_t>(getpid()));
  ASSERT_TRUE(order.ok()) << order.error().message;
  ASSERT_FALSE(order->empty());
  EXPECT_EQ(order->front().reason, "executable");
  bool libc = false;
  for (const auto& e : *order) libc |= e.path.find("libc.so.6") != std::string::npos && e.global;
  EXPECT_TRUE(libc);
}

}  // namespace
}  // namespace tickprobe
