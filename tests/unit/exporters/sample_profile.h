// A fixed, synthetic profile shaped like a tickgame CPU profile, used by all
// exporter tests (golden files are rendered from it). Ground truth below is
// what every exporter must agree on.
#pragma once

#include "model/profile.h"

namespace tickprobe::testing {

// Stacks (root first) and values [samples, cpu ns] (period 10,000,000 ns):
//   main;tick_loop;tick_physics;std::vector<int>::push_back    5 (two tids: 3 + 2, same address; push_back inlined)
//   main;tick_loop;tick_physics                                 4
//   main;tick_loop;log_frame;operator<<(std::ostream&, Vec3 const&)  2
//   main;net_flush;send;entry_SYSCALL_64;do_syscall_64;__x64_sys_sendto;tcp_sendmsg  3 (kernel part)
//   main;plugin_tick;[unknown] in libgameplugin.so+0x1234       1
//   main;tick_loop;Foo<Bar>::operator()(char const*) & "x;y"    1 (name needs escaping)
//   main;tick_loop;tick_loop;tick_physics                       2 (recursion)
//   main;idle                                                    0 (zero value: dropped)
// Total 18 samples. Counters: lost_samples=3, stack_errors=1.
Profile make_sample_profile();

}  // namespace tickprobe::testing
