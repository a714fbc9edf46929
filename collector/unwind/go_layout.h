// What the BPF unwinder needs to know about a Go binary's runtime to follow
// a stack from the system stack (g0) to the goroutine (struct tp_go_info,
// bpf/include/unwind.h): the offset of the current g from the thread
// pointer, the offsets of a few runtime.g / runtime.m / runtime.gobuf
// fields, and the address ranges of the functions that switch stacks.
//
// The same layout also carries the runtime.g fields that the goroutine
// reader (collector/runtime/go_goroutines.h) takes from a target's memory:
// status, goid, wait reason, creation and start pcs, syscall sp/pc.
//
// Field offsets come from the binary's DWARF when it has any, else from a
// table keyed by Go version (major.minor, from .go.buildinfo) covering Go
// 1.17-1.23. Only the 1.19 row is verified here (DWARF of Debian's
// golang-go 1.19 binaries, `verified`); the other rows follow the history
// of src/runtime/runtime2.go and are marked unverified — readers check
// them against the live process (the main goroutine must look like one)
// before trusting them. A Go binary of a version outside the table and
// without DWARF gets an error with a hint, never guessed offsets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

struct GoSwitchFunction {
  std::string name;
  uint64_t start = 0, end = 0;  // ELF virtual addresses
  bool frameless = false;       // after the hop the return address is at sched.sp
};

struct GoRuntimeLayout {
  std::string version;  // "go1.19.8", "" if unknown
  std::string source;   // "dwarf" or "table"
  int32_t tls_g = -8;
  uint16_t g_stack_lo = 0, g_stack_hi = 8, g_m = 0, g_sched = 0;
  uint16_t m_g0 = 0, m_curg = 0, m_gsignal = 0;
  uint16_t gobuf_sp = 0, gobuf_pc = 0, gobuf_bp = 0;
  // runtime.g fields for reading goroutines from memory.
  uint16_t g_syscallsp = 0, g_syscallpc = 0, g_atomicstatus = 0, g_goid = 0, g_waitsince = 0, g_waitreason = 0,
           g_gopc = 0, g_startpc = 0;
  bool verified = false;  // DWARF, or a table row checked against DWARF on our machines
  std::vector<GoSwitchFunction> switch_functions;
};

// True when the ELF at `path` is a Go binary.
bool is_go_executable(const std::string& path);
// The layout of the Go binary at `path`; an Error (with a hint) when it is
// no Go binary, has no readable pclntab, or neither DWARF nor the table
// knows its version.
Result<GoRuntimeLayout> read_go_runtime_layout(const std::string& path);
// Only the DWARF part (for tests: DWARF and the table must agree).
Result<GoRuntimeLayout> read_go_layout_from_dwarf(const std::string& path);
// Only the built-in table for a version string ("go1.19.8").
Result<GoRuntimeLayout> go_layout_for_version(const std::string& version);

}  // namespace tickprobe
