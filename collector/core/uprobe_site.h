// The cheapest sound place for a function's uprobe (and uretprobe).
//
// What a uprobe hit costs depends on the instruction it replaces with int3
// (arch/x86/kernel/uprobes.c, 6.18): a 5-byte nop is rewritten into a call
// of the uprobe trampoline (optimized), while nops, push reg, jmp/jcc/call
// rel are emulated in the trap handler; every other instruction is
// single-stepped out of line, a second trap. Measured here (a tight loop of
// calls, bpftrace empty probe): emulated ~1.0-1.4 us a hit, single-stepped
// ~20-27 us (cmp, mov, test, mov rip-relative, ret). jemalloc's malloc
// starts with `cmp $0x1000,%rdi`, its free with `mov %rdi,%rax`: an entry
// probe pays the single step on every call, while the `ja` / `jne` a few
// bytes later is emulated and reached by every call with the arguments
// still in registers.
//
// The chooser walks the function's entry block (straight-line code from the
// entry up to and including its first branch) and takes the cheapest
// instruction where
//   - every call has executed exactly the instructions before it: none of
//     them transfers control, no other symbol starts after the entry and at
//     or before it (a function falling through into the next), and no
//     direct branch anywhere in the object's executable code lands there (an
//     object-wide scan of every byte position; positions that only look like
//     branches are dropped when decoding their function says so, else they
//     make it more careful, never less). Indirect jumps into a prologue are
//     assumed not to exist;
//   - each argument the program reads is still in some register (moves
//     between 64-bit registers are followed: the cookie names the register,
//     bpf/include/uprobe_args.h);
//   - with a return probe, the stack pointer is where it was at the entry and
//     nothing stored to [rsp], so the uretprobe finds the return address
//     there (the kernel hijacks *regs->sp). A uretprobe shares the entry
//     probe's site: one trap for both (plus the return's, ~0.6 us, far less
//     than single-stepping each RET).
// Ties go to the earliest instruction; the entry is the fallback.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace tickprobe {

enum class UprobeCost : uint8_t {
  kOptimized = 0,   // 5-byte nop: the kernel patches in a call to its trampoline
  kEmulated = 1,    // nop, push reg, jmp/jcc/call rel: handled in the trap
  kSingleStep = 2,  // copied out of line and single-stepped: a second trap
};
const char* uprobe_cost_name(UprobeCost c);

// How the kernel treats a uprobe on the instruction `insn` (its bytes, all
// of them) at virtual address `vaddr`.
UprobeCost uprobe_cost(const uint8_t* insn, size_t len, uint64_t vaddr);

struct UprobeSiteRequest {
  uint32_t args = 0;          // integer arguments read: rdi, rsi, rdx, rcx, r8, r9 (at most 6)
  bool return_probe = false;  // a uretprobe shares the site
};

struct UprobeSite {
  uint64_t delta = 0;  // bytes past the entry
  UprobeCost cost = UprobeCost::kSingleStep;
  UprobeCost entry_cost = UprobeCost::kSingleStep;
  // x86 register number (0 rax .. 15 r15) holding argument i at the site.
  std::array<int8_t, 6> arg_reg{7, 6, 2, 1, 8, 9};
  std::string insn;        // the probed instruction, "ja 0x239b0"
  std::string limited_by;  // why the walk stopped where it did (for -v logs)
  // Attach-cookie bits for the arguments not in their System V register
  // (bpf/include/uprobe_args.h); 0 when none moved.
  uint64_t cookie_bits() const;
};

// The entry block of code at `vaddr` (`code` holds at least the block),
// given the addresses in (vaddr, vaddr + len] that some branch lands on.
// Pure: the unit tests feed it real libraries' bytes and made-up ones.
UprobeSite choose_uprobe_site(const uint8_t* code, size_t len, uint64_t vaddr, const UprobeSiteRequest& req,
                              const std::vector<uint64_t>& branch_targets);

// Per object: its executable code, read once, and the branch targets found
// in it near each function asked about.
class UprobeSiteChooser {
 public:
  static Result<std::unique_ptr<UprobeSiteChooser>> open(const std::string& path);
  ~UprobeSiteChooser();
  // The site for the function at ELF virtual address `vaddr` (its entry when
  // its code cannot be read).
  UprobeSite choose(uint64_t vaddr, const UprobeSiteRequest& req) const;
  // Direct branches into (vaddr, vaddr + len], from anywhere in the object.
  std::vector<uint64_t> branch_targets_into(uint64_t vaddr, uint64_t len) const;

 private:
  struct Segment {
    uint64_t vaddr;
    std::vector<uint8_t> bytes;
  };
  UprobeSiteChooser() = default;
  const uint8_t* code_at(uint64_t vaddr, size_t* left) const;
  std::vector<Segment> text_;
  std::map<uint64_t, uint64_t> functions_;  // start -> size (symbols with a size)
  // (target, position) of every byte position that reads as a direct
  // branch, sorted: a superset of the object's direct branches.
  std::vector<std::pair<uint64_t, uint64_t>> byte_branches_;
  std::vector<uint64_t> symbol_starts_;  // every code symbol's address, sorted
};

}  // namespace tickprobe
