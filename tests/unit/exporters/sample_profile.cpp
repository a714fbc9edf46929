#include "sample_profile.h"

namespace tickprobe::testing {

namespace {

constexpr uint64_t kExeBase = 0x555555554000;
constexpr const char* kExe = "/opt/tickgame/bin/tickgame";

Frame user(const char* fn, uint64_t offset, const char* file = "", uint32_t line = 0) {
  Frame f;
  f.function = fn;
  f.module = kExe;
  f.address = kExeBase + offset;
  f.module_offset = offset;
  f.file = file;
  f.line = line;
  return f;
}

Frame kernel(const char* fn, uint64_t address) {
  Frame f;
  f.function = fn;
  f.module = "[kernel]";
  f.address = address;
  f.kernel = true;
  return f;
}

Sample sample(std::vector<Frame> leaf_first, int64_t count, uint32_t tid, const char* thread) {
  Sample s;
  s.frames = std::move(leaf_first);
  s.values = {count, count * 10000000};
  s.pid = 4242;
  s.tid = tid;
  s.comm = "tickgame";
  s.thread = thread;
  return s;
}

}  // namespace

Profile make_sample_profile() {
  Profile p;
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 10000000;
  p.time_nanos = 1700000000000000000;
  p.duration_nanos = 5000000000;
  p.default_value_index = 1;
  p.counters = {{"lost_samples", 3}, {"stack_errors", 1}};
  p.comments = {"tickprobe test profile"};

  const Frame main_fn = user("main", 0x1100, "src/main.cpp", 42);
  const Frame tick_loop = user("tick_loop", 0x1200, "src/tick.cpp", 88);
  const Frame tick_loop_rec = user("tick_loop", 0x1234, "src/tick.cpp", 91);
  const Frame tick_physics = user("tick_physics", 0x1300, "src/physics.cpp", 17);
  // push_back inlined into tick_physics: same address, DWARF inline frame.
  Frame push_back = user("std::vector<int>::push_back", 0x1310, "/usr/include/c++/12/bits/stl_vector.h", 1287);
  push_back.inlined = true;
  Frame physics_at_push = user("tick_physics", 0x1310, "src/physics.cpp", 23);
  const Frame log_frame = user("log_frame", 0x1400, "src/log.cpp", 5);
  const Frame shift = user("operator<<(std::ostream&, Vec3 const&)", 0x1500, "src/vec3.cpp", 12);
  const Frame net_flush = user("net_flush", 0x1600, "src/net.cpp", 64);
  Frame send;
  send.function = "send";
  send.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  send.address = 0x7f1234500000 + 0x10a2b0;
  send.module_offset = 0x10a2b0;
  const Frame plugin_tick = user("plugin_tick", 0x1700, "src/plugin.cpp", 9);
  Frame unknown;
  unknown.module = "/opt/tickgame/lib/libgameplugin.so";
  unknown.address = 0x7f0000001234;
  unknown.module_offset = 0x1234;
  const Frame weird = user("Foo<Bar>::operator()(char const*) & \"x;y\"", 0x1800);
  const Frame idle = user("idle", 0x1900);

  p.samples.push_back(sample({push_back, physics_at_push, tick_loop, main_fn}, 3, 4243, "sim"));
  p.samples.push_back(sample({push_back, physics_at_push, tick_loop, main_fn}, 2, 4244, "sim-2"));
  p.samples.push_back(sample({tick_physics, tick_loop, main_fn}, 4, 4243, "sim"));
  p.samples.push_back(sample({shift, log_frame, tick_loop, main_fn}, 2, 4243, "sim"));
  Sample net = sample({kernel("tcp_sendmsg", 0xffffffff81a00010), kernel("__x64_sys_sendto", 0xffffffff81a10020),
                       kernel("do_syscall_64", 0xffffffff81c00030), kernel("entry_SYSCALL_64", 0xffffffff81e00040),
                       send, net_flush, main_fn},
                      3, 4250, "net-io");
  net.labels = {{"state", "R"}};
  p.samples.push_back(net);
  p.samples.push_back(sample({unknown, plugin_tick, main_fn}, 1, 4243, "sim"));
  p.samples.push_back(sample({weird, tick_loop, main_fn}, 1, 4243, "sim"));
  p.samples.push_back(sample({tick_physics, tick_loop_rec, tick_loop, main_fn}, 2, 4243, "sim"));
  p.samples.push_back(sample({idle, main_fn}, 0, 4243, "sim"));
  return p;
}

}  // namespace tickprobe::testing
