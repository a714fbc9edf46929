// USDT probes of tickgame (provider "tickgame"). The contract — names,
// arguments, when and on which thread each fires — is docs/usdt.md.
//
// Every probe has a semaphore (tickgame_<name>_semaphore in the ELF .probes
// section). A tracer that attaches increments it (libbpf does this through
// the uprobe ref_ctr_offset), so with no tracer attached a probe site costs
// one load and a not-taken branch, and its arguments are not even computed.
#pragma once

#ifndef _SDT_HAS_SEMAPHORES
#define _SDT_HAS_SEMAPHORES 1
#endif
#include <sys/sdt.h>

#define TICKGAME_DECLARE_SEMAPHORE(name) extern "C" volatile unsigned short tickgame_##name##_semaphore;
TICKGAME_DECLARE_SEMAPHORE(tick__begin)
TICKGAME_DECLARE_SEMAPHORE(tick__end)
TICKGAME_DECLARE_SEMAPHORE(gc__begin)
TICKGAME_DECLARE_SEMAPHORE(gc__end)
TICKGAME_DECLARE_SEMAPHORE(arena__reset__begin)
TICKGAME_DECLARE_SEMAPHORE(arena__reset__end)
TICKGAME_DECLARE_SEMAPHORE(coro__create)
TICKGAME_DECLARE_SEMAPHORE(coro__resume)
TICKGAME_DECLARE_SEMAPHORE(coro__suspend)
TICKGAME_DECLARE_SEMAPHORE(coro__destroy)
TICKGAME_DECLARE_SEMAPHORE(session__open)
TICKGAME_DECLARE_SEMAPHORE(session__close)
#undef TICKGAME_DECLARE_SEMAPHORE

#define TICKGAME_PROBE_ENABLED(name) __builtin_expect(tickgame_##name##_semaphore != 0, 0)

#define TICKGAME_PROBE1(name, a1) \
  do { if (TICKGAME_PROBE_ENABLED(name)) STAP_PROBE1(tickgame, name, a1); } while (0)
#define TICKGAME_PROBE2(name, a1, a2) \
  do { if (TICKGAME_PROBE_ENABLED(name)) STAP_PROBE2(tickgame, name, a1, a2); } while (0)
#define TICKGAME_PROBE3(name, a1, a2, a3) \
  do { if (TICKGAME_PROBE_ENABLED(name)) STAP_PROBE3(tickgame, name, a1, a2, a3); } while (0)

namespace tickgame {
// Names of all probes, in contract order (used by tests and docs).
inline constexpr const char* kUsdtProbeNames[] = {
    "tick__begin",  "tick__end",     "gc__begin",     "gc__end",       "arena__reset__begin", "arena__reset__end",
    "coro__create", "coro__resume",  "coro__suspend", "coro__destroy", "session__open",       "session__close"};
}  // namespace tickgame
