// CFI table compilation against real binaries: our fixture (frame pointers)
// and Debian's libc (none). Ground truth is the x86-64 ABI at a function's
// first instruction (CFA = rsp + 8, caller's rbp unchanged) and the classic
// frame after `push rbp; mov rbp, rsp` (CFA = rbp + 16, rbp at CFA - 16).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <link.h>

#include "symbolize/symbolizer.h"
#include "unwind/cfi_table.h"

namespace tickprobe {
namespace {

const std::string kFixture = std::string(TICKPROBE_BIN_DIR) + "/cpu_fixture";

TEST(CfiTable, FixtureWithFramePointers) {
  auto t = build_cfi_table(kFixture);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->frame_pointers);
  EXPECT_GT(t->fde_count, 3u);
  Symbolizer sym;
  auto addr = sym.find_symbol_address(kFixture, "burn_hot");
  ASSERT_TRUE(addr.has_value());
  const tp_unwind_row* entry = find_cfi_row(*t, *addr);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->cfa_type, TP_CFA_RSP);
  EXPECT_EQ(entry->cfa_offset, 8);
  EXPECT_EQ(entry->rbp_rule, TP_RBP_SAME);
  // Somewhere in the body the frame is rbp-based with rbp saved at CFA-16.
  bool found_fp_row = false;
  for (uint64_t pc = *addr; pc < *addr + 16; pc++) {
    const tp_unwind_row* r = find_cfi_row(*t, pc);
    if (r && r->cfa_type == TP_CFA_RBP && r->cfa_offset == 16 && r->rbp_rule == TP_RBP_OFFSET &&
        r->rbp_offset == -16)
      found_fp_row = true;
  }
  EXPECT_TRUE(found_fp_row);
}

TEST(CfiTable, LibcHasNoFramePointersButFullCfi) {
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&malloc), &info), 0);
  auto t = build_cfi_table(info.dli_fname);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->frame_pointers);
  EXPECT_GT(t->fde_count, 1000u);
  // malloc's first instruction: CFA = rsp + 8.
  Symbolizer sym;
  auto addr = sym.find_symbol_address(info.dli_fname, "malloc");
  ASSERT_TRUE(addr.has_value());
  const tp_unwind_row* r = find_cfi_row(*t, *addr);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->cfa_type, TP_CFA_RSP);
  EXPECT_EQ(r->cfa_offset, 8);
  // Rows are sorted and the PLT rule was recognized.
  bool plt = false;
  for (size_t i = 1; i < t->rows.size(); i++) {
    EXPECT_LE(t->rows[i - 1].pc, t->rows[i].pc);
    plt |= t->rows[i].cfa_type == TP_CFA_PLT;
  }
  EXPECT_TRUE(plt);
}

TEST(CfiTable, LoadBiasOfPieMapping) {
  std::vector<ElfLoadSegment> loads = {{0x0, 0x0, 0x1000, false}, {0x1000, 0x1000, 0x2000, true}};
  // The text segment (file offset 0x1000) mapped at 0x555555555000.
  EXPECT_EQ(load_bias(loads, 0x555555555000, 0x1000), 0x555555554000u);
}

TEST(CfiTable, MissingFileIsAnError) {
  auto t = build_cfi_table("/nonexistent/binary");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
