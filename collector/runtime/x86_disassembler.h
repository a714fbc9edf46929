// An x86-64 instruction iterator over capstone, which is loaded (dlopen)
// only while one is alive.
//
// Disassembly is needed at attach time only (RET sites of probed functions,
// the goroutine list of a stripped Go binary). Linked normally, capstone's
// tables for every architecture it knows stay mapped and partly dirty
// (relocated) for the agent's whole life: 3.2 MiB of RSS, measured, for a
// library the steady state never calls. Loading it per use costs ~1 ms.
#pragma once

#include <capstone/capstone.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/result.h"

namespace tickprobe {

class X86Disassembler {
 public:
  // `detail`: fill insn().detail (operands), as CS_OPT_DETAIL does.
  static Result<X86Disassembler> open(bool detail = false);
  X86Disassembler(X86Disassembler&&) noexcept;
  X86Disassembler& operator=(X86Disassembler&&) noexcept;
  ~X86Disassembler();

  // cs_disasm_iter: decodes the instruction at *code (address *address),
  // advances the three, and returns false where no instruction decodes.
  bool next(const uint8_t** code, size_t* size, uint64_t* address);
  const cs_insn& insn() const;
  // cs_regs_access of insn() (needs `detail`): false where capstone cannot tell.
  bool regs_access(cs_regs read, uint8_t* nread, cs_regs write, uint8_t* nwrite) const;

 private:
  struct Library;
  X86Disassembler() = default;
  std::unique_ptr<Library> lib_;
};

}  // namespace tickprobe
