// Compiles a binary's DWARF call-frame information (.eh_frame, or
// .debug_frame when that is all there is) into the compact row table that
// the BPF unwinder searches (struct tp_unwind_row, bpf/include/unwind.h).
//
// Only the rules the x86-64 unwinder needs are kept: how to find the CFA
// (rsp+off, rbp+off, the PLT expression, or *(rsp|rbp+off)+off as OpenSSL's
// assembly writes after realigning the stack) and where the caller's rbp is.
// Rows with other CFA expressions become TP_CFA_UNSUPPORTED (counted per
// binary, CfiRowStats); signal frames and gaps TP_CFA_INVALID. On both the
// BPF side falls back to the frame pointer. Consecutive identical rows are
// merged.
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <elfutils/libdw.h>

#include "core/result.h"
#include "bpf/include/unwind.h"

namespace tickprobe {

struct ElfLoadSegment {
  uint64_t vaddr = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  bool executable = false;
};

// How a DWARF location expression (libdw's op array) reads, for the forms
// the unwinder can evaluate. Exposed for tests and diagnostics.
enum class CfaForm {
  kRegOffset,    // DW_OP_bregN off (libdw: DW_OP_bregx N off): reg + off
  kPlt,          // the PLT stub expression
  kDerefOffset,  // DW_OP_bregN inner; DW_OP_deref; [DW_OP_plus_uconst outer]: *(reg + inner) + outer
  kUnsupported,  // anything else
};
struct CfaExpression {
  CfaForm form = CfaForm::kUnsupported;
  int reg = -1;       // DWARF register number (6 rbp, 7 rsp)
  int64_t offset = 0;  // off / inner (kPlt: the threshold N)
  int64_t outer = 0;   // kDerefOffset: the addend after the load
};
CfaExpression classify_cfa_expression(const Dwarf_Op* ops, size_t nops);

// What the rows of one binary hold (rows after merging).
struct CfiRowStats {
  size_t rows = 0;
  size_t deref_rows = 0;        // TP_CFA_DEREF_*: expressions now evaluated in BPF
  size_t unsupported_rows = 0;  // TP_CFA_UNSUPPORTED: frame-pointer fallback
  size_t rbp_unsupported = 0;   // rbp rule given by an expression we do not evaluate (TP_RBP_UNDEF)
  size_t signal_frames = 0;     // rows of signal-frame FDEs (TP_CFA_INVALID)
};

struct CfiTable {
  std::vector<ElfLoadSegment> loads;  // PT_LOAD segments, to compute load bias
  std::vector<tp_unwind_row> rows;  // sorted by pc
  size_t fde_count = 0;
  size_t fp_fdes = 0;            // FDEs that set up a classic rbp frame
  bool frame_pointers = false;   // most functions keep rbp as frame pointer
  bool from_debug_frame = false;
  CfiRowStats stats;
};

// Builds the table for an ELF file on disk.
Result<CfiTable> build_cfi_table(const std::string& path);
// Builds the table for an ELF image in memory (the vDSO, read from the
// target's [vdso] mapping). `image` must outlive the call only.
Result<CfiTable> build_cfi_table_memory(const std::vector<char>& image);

// The bias (runtime address - ELF virtual address) of a mapping that maps
// the file at file_offset to runtime address map_start.
uint64_t load_bias(const std::vector<ElfLoadSegment>& loads, uint64_t map_start, uint64_t file_offset);

// Looks up the row covering `pc` (ELF virtual address); nullptr when none.
// Mirrors the BPF side's search; used by tests and by diagnostics.
const tp_unwind_row* find_cfi_row(const CfiTable& table, uint64_t pc);

}  // namespace tickprobe
