// Definitions of the USDT semaphores. They live in ".probes" like the ones
// `dtrace -G` generates, so tools that look for semaphores there find them.
#include "tickgame/usdt.h"

#define TICKGAME_DEFINE_SEMAPHORE(name) \
  __attribute__((section(".probes"), used)) volatile unsigned short tickgame_##name##_semaphore = 0;
extern "C" {
TICKGAME_DEFINE_SEMAPHORE(tick__begin)
TICKGAME_DEFINE_SEMAPHORE(tick__end)
TICKGAME_DEFINE_SEMAPHORE(gc__begin)
TICKGAME_DEFINE_SEMAPHORE(gc__end)
TICKGAME_DEFINE_SEMAPHORE(arena__reset__begin)
TICKGAME_DEFINE_SEMAPHORE(arena__reset__end)
TICKGAME_DEFINE_SEMAPHORE(coro__create)
TICKGAME_DEFINE_SEMAPHORE(coro__resume)
TICKGAME_DEFINE_SEMAPHORE(coro__suspend)
TICKGAME_DEFINE_SEMAPHORE(coro__destroy)
TICKGAME_DEFINE_SEMAPHORE(session__open)
TICKGAME_DEFINE_SEMAPHORE(session__close)
}  // extern "C"
