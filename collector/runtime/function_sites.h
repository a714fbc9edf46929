// Where to put uprobes for a function probe of a runtime description: the
// file offset of the function's entry, or of each of its RET instructions
// (found by disassembling it with capstone). Exits are probed at their RETs
// because uretprobes rewrite the return address on the stack, which Go's
// stack copying and traceback do not survive (SIGILL, "unknown pc").
//
// The function's extent comes from the Go pclntab in Go binaries (exact,
// also when stripped), else from .symtab/.dynsym (st_size).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

struct FunctionSites {
  uint64_t vaddr = 0, size = 0;        // the function (ELF virtual addresses)
  uint64_t entry_offset = 0;           // file offset of its first instruction
  std::vector<uint64_t> ret_offsets;   // file offsets of its RET instructions
  std::vector<uint64_t> call_offsets;  // file offsets of its direct CALLs of `callee` (when asked)
};

// `callee` (optional): also find the direct calls of that function inside
// `symbol` (e.g. the nanotime call that ends startTheWorldWithSema's pause).
Result<FunctionSites> find_function_sites(const std::string& path, const std::string& symbol,
                                          const std::string& callee = "");

}  // namespace tickprobe
