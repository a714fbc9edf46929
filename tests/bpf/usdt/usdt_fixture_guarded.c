// fixture:guarded, behind its semaphore (sys/sdt.h names it
// provider_name_semaphore and puts it in .probes; see usdt_fixture.c).
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short fixture_guarded_semaphore __attribute__((unused)) __attribute__((section(".probes")));

void fire_guarded(void) {
  if (fixture_guarded_semaphore) DTRACE_PROBE1(fixture, guarded, 31337);
}
