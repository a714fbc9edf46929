// USDT fixture with known arguments in every location kind the x86-64
// assembler writes: registers (-4@%edi), memory at a register plus an
// offset (8@-8(%rbp)), immediates (-4@$-9), sizes 1/2/4/8 signed and
// unsigned. Fires each probe every millisecond until killed (or 120 s).
// fixture:guarded is behind a semaphore: it fires only while a tracer
// has enabled it (the kernel increments the semaphore for a uprobe with a
// reference counter). The other probes have none: a link mixes both.
#include <stdint.h>
#include <sys/sdt.h>
#include <time.h>

void fire_guarded(void);  // usdt_fixture_guarded.c: the probe with a semaphore

__attribute__((noinline)) static void regs(int32_t a, uint64_t b, int8_t c, uint16_t d) {
  DTRACE_PROBE4(fixture, regs, a, b, c, d);
}

int main(void) {
  volatile int64_t mem_s64 = -1234567890123LL;
  volatile uint32_t mem_u32 = 4000000000u;
  volatile int16_t mem_s16 = -30000;
  volatile uint8_t mem_u8 = 200;
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < 120000; i++) {
    regs(-42, 0x1122334455667788ull, -7, 65000);
    DTRACE_PROBE4(fixture, memory, mem_s64, mem_u32, mem_s16, mem_u8);
    DTRACE_PROBE3(fixture, constants, -9, 77, 5000000000LL);
    fire_guarded();
    nanosleep(&ms, 0);
  }
  return 0;
}
