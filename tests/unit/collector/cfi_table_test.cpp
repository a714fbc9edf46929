// CFI table compilation against real binaries: our fixture (frame pointers)
// and Debian's libc (none). Ground truth is the x86-64 ABI at a function's
// first instruction (CFA = rsp + 8, caller's rbp unchanged) and the classic
// frame after `push rbp; mov rbp, rsp` (CFA = rbp + 16, rbp at CFA - 16).
#include <dlfcn.h>
#include <dwarf.h>
#include <gtest/gtest.h>
#include <link.h>
#include <unistd.h>

#include <cstdio>

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

// --- CFA expressions -------------------------------------------------------

Dwarf_Op op(uint8_t atom, Dwarf_Word n = 0, Dwarf_Word n2 = 0) {
  Dwarf_Op o{};
  o.atom = atom;
  o.number = n;
  o.number2 = n2;
  return o;
}

TEST(CfaExpression, ClassifiesTheFormsInDebiansLibraries) {
  // libdw's spelling of DW_CFA_def_cfa rsp, 8.
  Dwarf_Op reg[] = {op(DW_OP_bregx, 7, 8)};
  auto e = classify_cfa_expression(reg, 1);
  EXPECT_EQ(e.form, CfaForm::kRegOffset);
  EXPECT_EQ(e.reg, 7);
  EXPECT_EQ(e.offset, 8);
  // OpenSSL: CFA = *(rsp + 40) + 8.
  Dwarf_Op deref[] = {op(DW_OP_breg7, 40), op(DW_OP_deref), op(DW_OP_plus_uconst, 8)};
  e = classify_cfa_expression(deref, 3);
  EXPECT_EQ(e.form, CfaForm::kDerefOffset);
  EXPECT_EQ(e.reg, 7);
  EXPECT_EQ(e.offset, 40);
  EXPECT_EQ(e.outer, 8);
  // Through rbp, negative offset (SLEB -8 as libdw stores it).
  Dwarf_Op deref_rbp[] = {op(DW_OP_breg6, static_cast<Dwarf_Word>(-8)), op(DW_OP_deref), op(DW_OP_plus_uconst, 16)};
  e = classify_cfa_expression(deref_rbp, 3);
  EXPECT_EQ(e.form, CfaForm::kDerefOffset);
  EXPECT_EQ(e.reg, 6);
  EXPECT_EQ(e.offset, -8);
  EXPECT_EQ(e.outer, 16);
  // The PLT stub expression.
  Dwarf_Op plt[] = {op(DW_OP_breg7, 8), op(DW_OP_breg16, 0), op(DW_OP_lit15), op(DW_OP_and), op(DW_OP_lit11),
                    op(DW_OP_ge),       op(DW_OP_lit3),      op(DW_OP_shl),   op(DW_OP_plus)};
  e = classify_cfa_expression(plt, 9);
  EXPECT_EQ(e.form, CfaForm::kPlt);
  EXPECT_EQ(e.offset, 11);
  // libcrypto's *(rsp + 8 + r9 * 8) + 8 needs r9: unsupported.
  Dwarf_Op indexed[] = {op(DW_OP_breg7, 8), op(DW_OP_breg9, 0), op(DW_OP_lit8), op(DW_OP_mul),
                        op(DW_OP_plus),     op(DW_OP_deref),    op(DW_OP_plus_uconst, 8)};
  EXPECT_EQ(classify_cfa_expression(indexed, 7).form, CfaForm::kUnsupported);
  EXPECT_EQ(classify_cfa_expression(nullptr, 0).form, CfaForm::kUnsupported);
}

TEST(CfaExpression, PackedOffsetsRoundTrip) {
  for (int inner : {-32768, -8, 0, 40, 544, 32767})
    for (int outer : {-16, 0, 8, 16}) {
      __s32 packed = TP_CFA_DEREF_PACK(inner, outer);
      EXPECT_EQ(TP_CFA_DEREF_INNER(packed), inner);
      EXPECT_EQ(TP_CFA_DEREF_OUTER(packed), outer);
    }
}

// tests/fixtures/unwind/cfi_expr_fixture.S: one function per form.
TEST(CfaExpression, FixtureRows) {
  const std::string fixture = std::string(TICKPROBE_BIN_DIR) + "/cfi_expr_fixture";
  auto t = build_cfi_table(fixture);
  ASSERT_TRUE(t.ok()) << t.error().message;
  Symbolizer sym;
  auto row_in_loop = [&](const char* fn, uint8_t type) -> const tp_unwind_row* {
    auto addr = sym.find_symbol_address(fixture, fn);
    if (!addr) return nullptr;
    for (const auto& r : t->rows)
      if (r.pc >= *addr && r.pc < *addr + 64 && r.cfa_type == type) return &r;
    return nullptr;
  };
  const tp_unwind_row* r = row_in_loop("realigned_spin", TP_CFA_DEREF_RSP);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(TP_CFA_DEREF_INNER(r->cfa_offset), 40);
  EXPECT_EQ(TP_CFA_DEREF_OUTER(r->cfa_offset), 8);
  r = row_in_loop("realigned_spin_rbp", TP_CFA_DEREF_RBP);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(TP_CFA_DEREF_INNER(r->cfa_offset), -8);
  EXPECT_EQ(TP_CFA_DEREF_OUTER(r->cfa_offset), 16);
  EXPECT_EQ(r->rbp_rule, TP_RBP_OFFSET);
  EXPECT_EQ(r->rbp_offset, -16);
  // CFA = rax + 8: kept as unsupported (and counted), not evaluated.
  EXPECT_NE(row_in_loop("rax_cfa_spin", TP_CFA_UNSUPPORTED), nullptr);
  EXPECT_EQ(t->stats.deref_rows, 2u);
  EXPECT_EQ(t->stats.unsupported_rows, 3u);  // rax+8 twice (spin, realign prologue), rax+16 once
}

// Debian's libcrypto: the realigned-frame expressions are the common form
// and are now evaluated; what stays unsupported is counted.
TEST(CfaExpression, LibcryptoDerefRows) {
  const char* libcrypto = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3";
  ASSERT_EQ(access(libcrypto, R_OK), 0) << libcrypto << " not installed\nhint: run scripts/bootstrap.sh (installs libssl-dev)";
  auto t = build_cfi_table(libcrypto);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_GT(t->stats.deref_rows, 20u);
  size_t deref = 0;
  for (const auto& r : t->rows) {
    if (r.cfa_type != TP_CFA_DEREF_RSP && r.cfa_type != TP_CFA_DEREF_RBP) continue;
    deref++;
    // The old rsp plus the return address and whatever was pushed before it.
    int outer = TP_CFA_DEREF_OUTER(r.cfa_offset);
    EXPECT_GT(outer, 0) << std::hex << r.pc;
    EXPECT_EQ(outer % 8, 0) << std::hex << r.pc;
  }
  EXPECT_EQ(deref, t->stats.deref_rows);
  std::printf("libcrypto: %zu rows, %zu *(reg+a)+b, %zu unsupported\n", t->stats.rows, t->stats.deref_rows,
              t->stats.unsupported_rows);
}

TEST(CfiTable, MissingFileIsAnError) {
  auto t = build_cfi_table("/nonexistent/binary");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
