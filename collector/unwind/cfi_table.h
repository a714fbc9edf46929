// Compiles a binary's DWARF call-frame information (.eh_frame, or
// .debug_frame when that is all there is) into the compact row table that
// the BPF unwinder searches (struct tp_unwind_row, bpf/include/unwind.h).
//
// Only the rules the x86-64 unwinder needs are kept: how to find the CFA
// (rsp+off, rbp+off, or the PLT expression) and where the caller's rbp is.
// Rows with other rules (DW_CFA_expression for the CFA outside PLTs, signal
// frames) become TP_CFA_INVALID, where the BPF side falls back to the frame
// pointer. Consecutive identical rows are merged.
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "bpf/include/unwind.h"

namespace tickprobe {

struct ElfLoadSegment {
  uint64_t vaddr = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  bool executable = false;
};

struct CfiTable {
  std::vector<ElfLoadSegment> loads;  // PT_LOAD segments, to compute load bias
  std::vector<tp_unwind_row> rows;  // sorted by pc
  size_t fde_count = 0;
  size_t fp_fdes = 0;            // FDEs that set up a classic rbp frame
  bool frame_pointers = false;   // most functions keep rbp as frame pointer
  bool from_debug_frame = false;
};

// Builds the table for an ELF file on disk.
Result<CfiTable> build_cfi_table(const std::string& path);

// The bias (runtime address - ELF virtual address) of a mapping that maps
// the file at file_offset to runtime address map_start.
uint64_t load_bias(const std::vector<ElfLoadSegment>& loads, uint64_t map_start, uint64_t file_offset);

// Looks up the row covering `pc` (ELF virtual address); nullptr when none.
// Mirrors the BPF side's search; used by tests and by diagnostics.
const tp_unwind_row* find_cfi_row(const CfiTable& table, uint64_t pc);

}  // namespace tickprobe
