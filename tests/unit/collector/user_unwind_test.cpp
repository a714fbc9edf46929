// The user-space replay of the BPF unwinder (unwind/user_unwind.h) on this
// very process: registers captured inside a known chain of functions, the
// stack read back through /proc/self/mem with the same CFI rows, and the
// result symbolized. Ground truth: the chain itself. Also the vDSO: its
// table is built from memory, so a stack that starts in clock_gettime's
// vDSO code is covered (checked on the table, as no thread can stop there).
#include "unwind/user_unwind.h"

#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <elf.h>
#include <cstring>
#include <string>
#include <vector>

#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

volatile int side_effect = 0;

__attribute__((noinline)) UserUnwindResult unwind_chain_leaf() {
  UserRegs regs;
  asm volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(regs.ip), "=r"(regs.sp), "=r"(regs.bp));
  UserUnwinder unwinder;
  UserUnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), regs);
  side_effect = side_effect + 1;
  return r;
}

__attribute__((noinline)) UserUnwindResult unwind_chain_middle() {
  UserUnwindResult r = unwind_chain_leaf();
  side_effect = side_effect + 1;  // no tail call
  return r;
}

__attribute__((noinline)) UserUnwindResult unwind_chain_outer() {
  UserUnwindResult r = unwind_chain_middle();
  side_effect = side_effect + 1;
  return r;
}

TEST(UserUnwind, ReplaysTheUnwinderOnThisProcess) {
  UserUnwindResult r = unwind_chain_outer();
  ASSERT_GE(r.ips.size(), 4u);
  EXPECT_EQ(r.flags & (TP_STACK_READ_FAULT | TP_STACK_NO_MAPPING), 0u);
  Symbolizer sym;
  auto frames = sym.symbolize_user(static_cast<uint32_t>(getpid()), r.ips);
  std::vector<std::string> names;
  for (const auto& f : frames) names.push_back(f.function);
  ASSERT_GE(names.size(), 4u);
  EXPECT_NE(names[0].find("unwind_chain_leaf"), std::string::npos) << names[0];
  EXPECT_NE(names[1].find("unwind_chain_middle"), std::string::npos) << names[1];
  EXPECT_NE(names[2].find("unwind_chain_outer"), std::string::npos) << names[2];
  EXPECT_NE(names[3].find("ReplaysTheUnwinderOnThisProcess"), std::string::npos) << names[3];
  // Above the test body the walk goes on as the BPF one would: this binary
  // keeps frame pointers, so non-leaf frames take the FP step, and where
  // Debian's gtest code (no frame pointers) breaks the chain it stops, as
  // it would in the kernel. Ground truth ends at the test body.
}

TEST(UserUnwind, VdsoHasACfiTableBuiltFromMemory) {
  auto base = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(base, 0u);
  // The whole image: the section headers end it.
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  size_t size = eh->e_shoff + static_cast<size_t>(eh->e_shnum) * eh->e_shentsize;
  std::vector<char> image(reinterpret_cast<const char*>(base), reinterpret_cast<const char*>(base) + size);
  auto table = build_cfi_table_memory(image);
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_GT(table->rows.size(), 4u);
  // __vdso_clock_gettime's entry has a row (CFA = rsp + 8 there).
  bool entry_row = false;
  for (const auto& row : table->rows) entry_row |= row.cfa_type == TP_CFA_RSP && row.cfa_offset == 8;
  EXPECT_TRUE(entry_row);
}

}  // namespace
}  // namespace tickprobe
