// Runtime descriptions (which USDT probes mean what) and the attach cookie
// that tells the generic BPF programs which arguments to read.
#include <gtest/gtest.h>

#include <linux/types.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "bpf/include/runtime.h"
#include "runtime/runtime_description.h"

namespace tickprobe {
namespace {

// The example of docs/runtimes.md / runtime_description.h.
const char* kExample = R"({"name": "myengine", "provider": "myengine",
  "coroutines": {"create":  {"probe": "task_spawn", "id_arg": 0, "name_arg": 1},
                 "destroy": {"probe": "task_done", "id_arg": 0}},
  "tick": {"begin": {"probe": "frame_start", "id_arg": 0}, "end": {"probe": "frame_end"}},
  "pauses": [{"kind": "gc", "begin": {"probe": "gc_start"},
              "end": {"probe": "gc_done", "args": ["cycle", "marked", "freed"]}}]})";

TEST(RuntimeDescription, ParsesAValidDescription) {
  auto r = parse_runtime_description(kExample);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const RuntimeDescription& d = *r;
  EXPECT_EQ(d.name, "myengine");
  EXPECT_TRUE(d.has_coroutines());
  EXPECT_TRUE(d.has_ticks());
  EXPECT_EQ(d.coro_create.provider, "myengine");
  EXPECT_EQ(d.coro_create.name, "task_spawn");
  EXPECT_EQ(d.coro_create.id_arg, 0);
  EXPECT_EQ(d.coro_create.name_arg, 1);
  EXPECT_EQ(d.coro_destroy.name, "task_done");
  EXPECT_EQ(d.coro_destroy.name_arg, -1);
  EXPECT_FALSE(d.coro_resume.present());
  EXPECT_FALSE(d.coro_suspend.present());
  EXPECT_EQ(d.tick_begin.describe(), "myengine:frame_start");
  EXPECT_EQ(d.tick_end.name, "frame_end");
  ASSERT_EQ(d.pauses.size(), 1u);
  EXPECT_EQ(d.pauses[0].kind, "gc");
  EXPECT_EQ(d.pauses[0].begin.name, "gc_start");
  EXPECT_EQ(d.pauses[0].end.args, (std::vector<std::string>{"cycle", "marked", "freed"}));
}

TEST(RuntimeDescription, SectionsAreOptionalAndProvidersOverridable) {
  auto r = parse_runtime_description(
      R"({"pauses": [{"kind": "arena", "begin": {"probe": "b", "provider": "p1"},
                      "end": {"probe": "e", "provider": "p2"}}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "custom");
  EXPECT_FALSE(r->has_coroutines());
  EXPECT_FALSE(r->has_ticks());
  EXPECT_EQ(r->pauses[0].begin.describe(), "p1:b");
  EXPECT_EQ(r->pauses[0].end.describe(), "p2:e");
  auto t = parse_runtime_description(R"({"provider": "x", "tick": {"begin": {"probe": "tb"}}})");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->has_ticks());
  EXPECT_FALSE(t->tick_end.present());
}

// The error message must name what is wrong.
void expect_error(const std::string& json, const std::string& needle) {
  auto r = parse_runtime_description(json);
  ASSERT_FALSE(r.ok()) << "accepted: " << json;
  EXPECT_NE(r.error().message.find(needle), std::string::npos)
      << "message \"" << r.error().message << "\" lacks \"" << needle << "\"";
}

TEST(RuntimeDescription, RejectsBadDescriptionsWithAReason) {
  expect_error("{not json", "not valid JSON");
  expect_error("[1, 2]", "must be a JSON object");
  expect_error(R"({"provider": "p", "coroutines": {"create": {"id_arg": 0}, "destroy": {"probe": "d", "id_arg": 0}}})",
               "missing \"probe\"");
  expect_error(R"({"provider": "p", "coroutines": {"create": {"probe": "c", "id_arg": 0}}})",
               "\"create\" and \"destroy\" must be given together");
  expect_error(R"({"provider": "p", "coroutines": {"destroy": {"probe": "d", "id_arg": 0}}})", "together");
  expect_error(R"({"provider": "p", "coroutines": {"create": {"probe": "c"}, "destroy": {"probe": "d", "id_arg": 0}}})",
               "missing \"id_arg\"");
  expect_error(R"({"coroutines": {"create": {"probe": "c", "id_arg": 0}, "destroy": {"probe": "d", "id_arg": 0}}})",
               "no provider");
  expect_error(R"({"provider": "p", "tick": {"begin": {"probe": "t", "id_arg": 12}}})", "argument position 0..11");
  expect_error(R"({"provider": "p", "tick": {"begin": {"probe": "t", "id_arg": -1}}})", "argument position");
  expect_error(R"({"provider": "p", "tick": {"end": {"probe": "e"}}})", "\"begin\" is required");
  expect_error(R"({"provider": "p", "tick": {"begin": "t"}})", "expected an object");
  std::string five = R"({"provider": "p", "pauses": [)";
  for (int i = 0; i < RT_MAX_PAUSE_KINDS + 1; i++) {
    if (i) five += ",";
    five += R"({"kind": "k)" + std::to_string(i) + R"(", "begin": {"probe": "b"}, "end": {"probe": "e"}})";
  }
  five += "]}";
  expect_error(five, "at most " + std::to_string(RT_MAX_PAUSE_KINDS) + " pause kinds");
  expect_error(R"({"provider": "p", "pauses": {"kind": "gc"}})", "pauses must be a list");
  expect_error(R"({"provider": "p", "pauses": [{"begin": {"probe": "b"}, "end": {"probe": "e"}}]})", "needs a \"kind\"");
  expect_error(R"({"provider": "p", "pauses": [{"kind": "gc", "begin": {"probe": "b"}}]})", "needs \"begin\" and \"end\"");
  expect_error(R"({"provider": "p", "pauses": [{"kind": "gc", "begin": {"probe": "b"},
                   "end": {"probe": "e", "args": ["a", "b", "c", "d"]}}]})",
               "at most 3 arguments");
  expect_error(R"({"provider": "p", "pauses": [{"kind": "gc", "begin": {"probe": "b", "args": ["a", "b"]},
                   "end": {"probe": "e"}}]})",
               "at most 1 arguments");
  expect_error(R"({"name": "empty", "provider": "p"})", "describes no coroutine, tick or pause probes");
}

TEST(RuntimeDescription, LoadsFromAFileAndReportsThePath) {
  char path[] = "/tmp/tickprobe-runtime-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  { std::ofstream(path) << kExample; }
  auto r = runtime_description_from_arg(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "myengine");
  { std::ofstream(path) << "{}"; }
  auto bad = load_runtime_description(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(path), std::string::npos) << bad.error().message;
  unlink(path);
  auto missing = load_runtime_description(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot read runtime description"), std::string::npos) << missing.error().message;
  // "tickgame" and "" are the built-in description.
  EXPECT_EQ(runtime_description_from_arg("tickgame")->name, "tickgame");
  EXPECT_EQ(runtime_description_from_arg("")->name, "tickgame");
}

TEST(RuntimeDescription, TickgameMatchesTheUsdtContract) {
  RuntimeDescription d = tickgame_runtime();
  EXPECT_TRUE(d.has_coroutines());
  EXPECT_TRUE(d.has_ticks());
  EXPECT_EQ(d.coro_create.describe(), "tickgame:coro__create");
  EXPECT_EQ(d.coro_create.id_arg, 0);
  EXPECT_EQ(d.coro_create.name_arg, 1);
  EXPECT_EQ(d.coro_destroy.describe(), "tickgame:coro__destroy");
  EXPECT_EQ(d.tick_begin.describe(), "tickgame:tick__begin");
  EXPECT_EQ(d.tick_end.describe(), "tickgame:tick__end");
  ASSERT_EQ(d.pauses.size(), 2u);
  EXPECT_EQ(d.pauses[0].kind, "gc");
  EXPECT_EQ(d.pauses[0].end.args, (std::vector<std::string>{"cycle", "marked", "freed"}));
  EXPECT_EQ(d.pauses[1].kind, "arena");
  EXPECT_EQ(d.pauses[1].begin.describe(), "tickgame:arena__reset__begin");
  EXPECT_LE(d.pauses.size(), static_cast<size_t>(RT_MAX_PAUSE_KINDS));
}

TEST(RuntimeCookie, PacksArgumentPositionsAndKind) {
  UsdtProbeRef create;
  create.provider = "p";
  create.name = "create";
  create.id_arg = 0;
  create.name_arg = 1;
  uint64_t c = runtime_cookie(create);
  EXPECT_EQ(RT_COOKIE_KIND(c), 0u);
  EXPECT_EQ(RT_COOKIE_ID_ARG(c), 0u);
  EXPECT_EQ(RT_COOKIE_NAME_ARG(c), 1u);
  for (int i = 0; i < RT_MAX_ARGS; i++) EXPECT_EQ(RT_COOKIE_ARG(c, i), static_cast<__u32>(RT_ARG_NONE)) << i;

  UsdtProbeRef end;
  end.provider = "p";
  end.name = "gc_done";
  end.args = {"cycle", "", "freed"};  // an empty name skips that argument
  c = runtime_cookie(end, 3);
  EXPECT_EQ(RT_COOKIE_KIND(c), 3u);
  EXPECT_EQ(RT_COOKIE_ID_ARG(c), static_cast<__u32>(RT_ARG_NONE));
  EXPECT_EQ(RT_COOKIE_NAME_ARG(c), static_cast<__u32>(RT_ARG_NONE));
  EXPECT_EQ(RT_COOKIE_ARG(c, 0), 0u);
  EXPECT_EQ(RT_COOKIE_ARG(c, 1), static_cast<__u32>(RT_ARG_NONE));
  EXPECT_EQ(RT_COOKIE_ARG(c, 2), 2u);

  UsdtProbeRef far;
  far.name = "x";
  far.id_arg = 11;  // the largest position the parser allows
  far.name_arg = 10;
  c = runtime_cookie(far, 0xff);
  EXPECT_EQ(RT_COOKIE_KIND(c), 0xffu);
  EXPECT_EQ(RT_COOKIE_ID_ARG(c), 11u);
  EXPECT_EQ(RT_COOKIE_NAME_ARG(c), 10u);
  EXPECT_EQ(c >> (16 + 4 * RT_MAX_ARGS), 0u);  // nothing above the argument nibbles

  // The fields never bleed into each other: every combination round-trips.
  for (int id = -1; id <= 11; id++)
    for (int name = -1; name <= 11; name += 3)
      for (uint32_t kind = 0; kind < RT_MAX_PAUSE_KINDS; kind++) {
        UsdtProbeRef p;
        p.name = "p";
        p.id_arg = id;
        p.name_arg = name;
        p.args = {"a", "b"};
        uint64_t k = runtime_cookie(p, kind);
        EXPECT_EQ(RT_COOKIE_KIND(k), kind);
        EXPECT_EQ(RT_COOKIE_ID_ARG(k), id < 0 ? static_cast<__u32>(RT_ARG_NONE) : static_cast<__u32>(id));
        EXPECT_EQ(RT_COOKIE_NAME_ARG(k), name < 0 ? static_cast<__u32>(RT_ARG_NONE) : static_cast<__u32>(name));
        EXPECT_EQ(RT_COOKIE_ARG(k, 0), 0u);
        EXPECT_EQ(RT_COOKIE_ARG(k, 1), 1u);
        EXPECT_EQ(RT_COOKIE_ARG(k, 2), static_cast<__u32>(RT_ARG_NONE));
      }
}

TEST(RuntimeCookie, TickgamePausesGetTheirKindIndex) {
  RuntimeDescription d = tickgame_runtime();
  for (uint32_t i = 0; i < d.pauses.size(); i++) {
    uint64_t c = runtime_cookie(d.pauses[i].end, i);
    EXPECT_EQ(RT_COOKIE_KIND(c), i);
  }
  uint64_t gc_end = runtime_cookie(d.pauses[0].end, 0);
  EXPECT_EQ(RT_COOKIE_ARG(gc_end, 0), 0u);
  EXPECT_EQ(RT_COOKIE_ARG(gc_end, 1), 1u);
  EXPECT_EQ(RT_COOKIE_ARG(gc_end, 2), 2u);
  uint64_t create = runtime_cookie(d.coro_create);
  EXPECT_EQ(RT_COOKIE_ID_ARG(create), 0u);
  EXPECT_EQ(RT_COOKIE_NAME_ARG(create), 1u);
}

// ------------------------------------------------ function probes (Go)

TEST(ArgExpr, RegistersAndMemoryAtRegisterPlusOffset) {
  auto rax = parse_arg_expr("rax");
  ASSERT_TRUE(rax);
  EXPECT_EQ(rax->reg, RT_REG_RAX);
  EXPECT_FALSE(rax->deref);
  auto goid = parse_arg_expr("*(r14 + 152)");
  ASSERT_TRUE(goid);
  EXPECT_EQ(goid->reg, RT_REG_R14);
  EXPECT_TRUE(goid->deref);
  EXPECT_EQ(goid->offset, 152);
  EXPECT_EQ(goid->describe(), "*(r14+152)");
  auto neg = parse_arg_expr("*(RSP-0x10)");
  ASSERT_TRUE(neg);
  EXPECT_EQ(neg->reg, RT_REG_RSP);
  EXPECT_EQ(neg->offset, -16);
  EXPECT_EQ(parse_arg_expr("*(rdi)")->offset, 0);
  for (const char* bad : {"", "eax", "*(rax+)", "*(rax+1x)", "*rax", "*(rax+1048576)", "(rax+1)", "*(foo+1)"})
    EXPECT_FALSE(parse_arg_expr(bad)) << bad;
}

TEST(RuntimeDescription, FunctionProbes) {
  auto d = parse_runtime_description(R"J({"name": "go",
    "coroutines": {"create": {"symbol": "runtime.newproc1", "at": "ret", "id": "*(rax+152)"},
                   "destroy": {"symbol": "runtime.goexit0", "id": "*(rax+152)"}},
    "pauses": [{"kind": "stw", "begin": {"symbol": "runtime.stopTheWorldWithSema"},
                "end": {"symbol": "runtime.startTheWorldWithSema", "at": "call:runtime.nanotime1"}}]})J");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_TRUE(d->has_coroutines());
  EXPECT_TRUE(d->coro_create.is_function());
  EXPECT_TRUE(d->coro_create.at_return);
  EXPECT_FALSE(d->coro_destroy.at_return);
  EXPECT_EQ(d->coro_destroy.describe(), "runtime.goexit0@entry");
  EXPECT_EQ(d->pauses[0].end.at_call, "runtime.nanotime1");
  EXPECT_EQ(d->pauses[0].end.describe(), "runtime.startTheWorldWithSema@call:runtime.nanotime1");

  uint64_t c = runtime_cookie(d->coro_create);
  EXPECT_TRUE(RT_FN_HAS_ID(c));
  EXPECT_EQ(RT_FN_REG(c), static_cast<uint32_t>(RT_REG_RAX));
  EXPECT_TRUE(RT_FN_DEREF(c));
  EXPECT_EQ(RT_FN_OFFSET(c), 152);
  UsdtProbeRef at_rsp;
  at_rsp.symbol = "f";
  at_rsp.id = *parse_arg_expr("*(rsp-8)");
  uint64_t neg = runtime_cookie(at_rsp, 3);
  EXPECT_EQ(RT_FN_OFFSET(neg), -8);
  EXPECT_EQ(RT_COOKIE_KIND(neg), 3u);
  EXPECT_FALSE(RT_FN_HAS_ID(runtime_cookie(d->pauses[0].begin, 0)));
}

TEST(RuntimeDescription, BuiltInGoDescription) {
  auto go = runtime_description_from_arg("go");
  ASSERT_TRUE(go);
  EXPECT_EQ(go->name, "go");
  EXPECT_EQ(go->coro_create.symbol, "runtime.newproc1");
  EXPECT_TRUE(go->coro_create.at_return);  // goid is assigned late in newproc1
  EXPECT_EQ(go->coro_create.id.describe(), "*(rax+152)");
  EXPECT_EQ(go->coro_destroy.symbol, "runtime.goexit0");
  ASSERT_EQ(go->pauses.size(), 1u);
  EXPECT_EQ(go->pauses[0].kind, "stw");
}

TEST(RuntimeDescription, GoroutineTicksParksGcCyclesAndStoppingPauses) {
  auto d = parse_runtime_description(R"J({"name": "mygo",
    "tick": {"begin": {"symbol": "main.(*Server).tick", "id": "rdi"},
             "end": {"symbol": "main.(*Server).tick", "at": "ret"},
             "goroutine": "*(r14+152)",
             "park": {"begin": {"symbol": "runtime.gopark", "id": "rcx"},
                      "end": {"symbol": "runtime.gopark", "at": "ret"}}},
    "gc": {"start": {"symbol": "runtime.gcStart"}, "cycle_end": {"symbol": "runtime.gcMarkTermination"}},
    "pauses": [{"kind": "stw", "stops_world": true, "begin": {"symbol": "runtime.stopTheWorldWithSema"},
                "end": {"symbol": "runtime.startTheWorldWithSema", "at": "call:runtime.nanotime1"}}]})J");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_TRUE(d->has_goroutine_ticks());
  EXPECT_EQ(d->tick_goroutine.describe(), "*(r14+152)");
  EXPECT_TRUE(d->tick_end.at_return);
  EXPECT_EQ(d->park_begin.id.describe(), "rcx");
  EXPECT_TRUE(d->park_end.at_return);
  EXPECT_TRUE(d->has_gc_cycles());
  EXPECT_TRUE(d->pauses[0].stops_world);
  EXPECT_TRUE(RT_FN_STOPS_WORLD(runtime_cookie(d->pauses[0].begin, 0, true)));
  EXPECT_FALSE(RT_FN_STOPS_WORLD(runtime_cookie(d->pauses[0].begin, 0, false)));
  // The stops-world bit leaves the id bits alone.
  uint64_t c = runtime_cookie(d->park_begin, 2, true);
  EXPECT_EQ(RT_FN_REG(c), static_cast<uint32_t>(RT_REG_RCX));
  EXPECT_EQ(RT_COOKIE_KIND(c), 2u);

  auto bad = [](const std::string& json, const std::string& needle) {
    auto r = parse_runtime_description(json);
    ASSERT_FALSE(r) << json;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  };
  bad(R"J({"tick": {"begin": {"symbol": "t"}, "end": {"symbol": "t", "at": "ret"}}})J", "need \"goroutine\"");
  bad(R"J({"provider": "p", "tick": {"begin": {"probe": "t"}, "park": {}}})J", "needs tick.goroutine");
  bad(R"J({"tick": {"begin": {"symbol": "t"}, "end": {"symbol": "t", "at": "ret"}, "goroutine": "*(r14+152)",
               "park": {"begin": {"symbol": "p"}, "finish": {}}}})J",
      "unknown key \"finish\"");
  bad(R"J({"gc": {"start": {"symbol": "a"}, "cycle_end": {"symbol": "b"}, "stop": {}},
          "pauses": [{"kind": "x", "begin": {"symbol": "a"}, "end": {"symbol": "b"}}]})J",
      "unknown key \"stop\"");
  bad(R"J({"provider": "p", "pauses": [{"kind": "gc", "stops_world": true, "begin": {"probe": "a"},
                                         "end": {"probe": "b"}}]})J",
      "stops_world needs function probes");
}

TEST(RuntimeDescription, GoWithAGoroutineTick) {
  auto d = with_goroutine_tick(go_runtime(), "main.(*Server).tick", "rdi");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->tick_begin.describe(), "main.(*Server).tick@entry");
  EXPECT_EQ(d->tick_end.describe(), "main.(*Server).tick@ret");
  EXPECT_EQ(d->tick_begin.id.describe(), "rdi");
  EXPECT_EQ(d->tick_goroutine.describe(), "*(r14+152)");
  EXPECT_EQ(d->park_begin.symbol, "runtime.gopark");
  EXPECT_TRUE(d->has_gc_cycles());
  ASSERT_EQ(d->pauses.size(), 1u);
  EXPECT_TRUE(d->pauses[0].stops_world);
  EXPECT_FALSE(with_goroutine_tick(tickgame_runtime(), "main.tick"));
  EXPECT_FALSE(with_goroutine_tick(go_runtime(), "main.tick", "*(eax)"));
}

TEST(RuntimeDescription, UnknownKeysAndMixedProbeKindsAreErrors) {
  auto expect_error = [](const std::string& json, const std::string& needle) {
    auto d = parse_runtime_description(json);
    ASSERT_FALSE(d) << json;
    EXPECT_NE(d.error().message.find(needle), std::string::npos) << d.error().message;
  };
  expect_error(R"J({"provider": "p", "tick": {"begin": {"probe": "t"}}, "tiks": {}})J", "unknown key \"tiks\"");
  expect_error(R"J({"provider": "p", "tick": {"begin": {"probe": "t", "id_args": 0}}})J", "unknown key \"id_args\"");
  expect_error(R"J({"provider": "p", "tick": {"begin": {"probe": "t"}, "stop": {"probe": "s"}}})J", "unknown key");
  expect_error(R"J({"coroutines": {"create": {"symbol": "a", "id": "rax"}, "destroy": {"symbol": "b", "id": "rax"},
                   "spawn": {}}})J",
               "unknown key \"spawn\"");
  expect_error(R"J({"pauses": [{"kind": "gc", "begin": {"symbol": "a"}, "end": {"symbol": "b"}, "args": []}]})J",
               "unknown key \"args\"");
  expect_error(R"J({"pauses": [{"kind": "gc", "begin": {"symbol": "a", "probe": "x"}, "end": {"symbol": "b"}}]})J",
               "for USDT probes");
  expect_error(R"J({"pauses": [{"kind": "gc", "begin": {"symbol": "a", "at": "exit"}, "end": {"symbol": "b"}}]})J",
               "\"at\" must be");
  expect_error(R"J({"pauses": [{"kind": "gc", "begin": {"symbol": "a", "id": "*(eax)"}, "end": {"symbol": "b"}}]})J",
               "bad argument expression");
  expect_error(R"J({"provider": "p", "pauses": [{"kind": "gc", "begin": {"probe": "a", "at": "ret"}, "end": {"probe": "b"}}]})J",
               "for function probes");
  expect_error(R"J({"coroutines": {"create": {"symbol": "a"}, "destroy": {"symbol": "b", "id": "rax"}}})J",
               "missing \"id\"");
}

}  // namespace
}  // namespace tickprobe
