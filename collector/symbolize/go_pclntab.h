// Go binaries: detection, the Go version, and function names, file:line and
// inlined frames from `.gopclntab` — the table the Go runtime itself uses
// for tracebacks, so it survives `-ldflags='-s -w'` (which drops .symtab and
// DWARF) and names every Go function the way runtime/pprof does.
//
// Supported pclntab formats: Go 1.18/1.19 (magic 0xfffffff0) and Go 1.20+
// (0xfffffff1). Older formats are refused with an error (never guessed).
// Verified on Go 1.19 amd64 (the only toolchain on our machines); the 1.20+
// layout (_func.startLine, the 16-byte inlinedCall) follows
// src/runtime/symtab.go and is untested here.
//
// Layout (src/runtime/symtab.go, pcHeader / moduledata / _func):
//   pcHeader: magic, pad, minLC, ptrSize, nfunc, nfiles, textStart, then
//             offsets (from the header) of funcnametab, cutab, filetab,
//             pctab and pclntab.
//   pclntab starts with functab: nfunc+1 pairs {entryoff, funcoff} (the last
//             entryoff is the end of text); funcoff leads to a _func.
//   _func:    entryoff, nameoff, args, deferreturn, pcsp, pcfile, pcln,
//             npcdata, cuOffset, [startLine (1.20+)], funcID, flag, pad,
//             nfuncdata; then pcdata[npcdata] (pctab offsets) and
//             funcdata[nfuncdata] (offsets from moduledata.gofunc).
//   pc-value tables: (zigzag value delta, pc delta * minLC) varint pairs.
// Inlining: PCDATA_InlTreeIndex (2) at a pc indexes FUNCDATA_InlTree (3),
// whose entries name the inlined function and the pc (parentPc) of its call
// site in the enclosing function; the innermost file:line is the outer
// function's pcfile/pcln at the pc itself, as in runtime.traceback.
//
// moduledata.gofunc (the base of funcdata) is not in the header: it is
// found by scanning the data sections for the moduledata whose first word
// points at .gopclntab. Without it, names and file:line still work; only
// inlined frames are missing.
//
// Immutable after parse(); thread-safe for readers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct Elf Elf;

namespace tickprobe {

// True when the ELF is a Go binary (.note.go.buildid, .go.buildinfo or
// .gopclntab).
bool is_go_binary(Elf* elf);
// "go1.19.8" from .go.buildinfo (Go 1.18+ inline format); "" when not found.
std::string read_go_version(Elf* elf);

// One source location; innermost first, `inlined` on all but the last.
struct GoFrame {
  std::string_view function;  // pprof-style name (no ".abi0" suffix)
  std::string_view file;
  uint32_t line = 0;
  bool inlined = false;
};

class GoPclntab {
 public:
  // Parses the ELF's .gopclntab; nullptr and *error when there is none or
  // its format is not supported.
  static std::unique_ptr<GoPclntab> parse(Elf* elf, std::string* error);

  const std::string& go_version() const { return version_; }  // "" if unknown
  uint32_t magic() const { return magic_; }
  size_t function_count() const { return funcs_.size(); }
  bool has_inline_data() const { return gofunc_ != 0; }

  // Index of the function whose [entry, end) holds `vaddr`, or -1.
  int64_t lookup(uint64_t vaddr) const;
  uint64_t entry(int64_t index) const { return funcs_[index].entry; }
  uint64_t end(int64_t index) const { return funcs_[index].end; }
  std::string_view name(int64_t index) const;
  // Index of the function named exactly `name` (a linear scan), or -1.
  int64_t find(std::string_view name) const;

  // The frames at `vaddr`, innermost (inlined) first, ending with the
  // function that holds vaddr. Empty when no function holds it.
  std::vector<GoFrame> frames(uint64_t vaddr) const;
  // The function's frame size at `vaddr` (its pcsp table: bytes between the
  // stack pointer there and the return address), as runtime.funcspdelta
  // gives it; -1 when no function holds vaddr or the table is unreadable.
  int32_t sp_delta(uint64_t vaddr) const;

 private:
  GoPclntab() = default;
  struct Func {
    uint64_t entry;
    uint64_t end;
    uint32_t func_off;  // offset of its _func in pclntab_
  };
  // pc-value table `table_off` (an offset into pctab) for function `f` at vaddr; -1 when absent.
  int32_t pc_value(const Func& f, uint32_t table_off, uint64_t vaddr) const;
  std::string_view cstring(size_t off) const;  // NUL-terminated string in data_
  std::string_view func_name(int32_t nameoff) const;
  std::string_view file_name(const Func& f, int32_t fileno) const;
  uint32_t u32(size_t off) const;
  uint32_t pcdata_off(const Func& f, uint32_t index) const;
  uint32_t funcdata_off(const Func& f, uint32_t index) const;

  std::vector<uint8_t> data_;  // the .gopclntab section
  uint32_t magic_ = 0;
  uint32_t min_lc_ = 1;
  size_t funcnametab_ = 0, cutab_ = 0, filetab_ = 0, pctab_ = 0, pclntab_ = 0;
  size_t func_fixed_size_ = 40;  // sizeof(_func) without pcdata/funcdata
  std::vector<Func> funcs_;
  std::string version_;
  // Inline trees live in go.func.* (in .rodata), addressed from gofunc.
  uint64_t gofunc_ = 0;
  uint64_t rodata_addr_ = 0;
  std::vector<uint8_t> rodata_;
};

}  // namespace tickprobe
