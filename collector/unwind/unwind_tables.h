// Loads CFI unwind tables for the binaries mapped by traced processes into
// the shared BPF maps (unwind_rows, proc_maps).
//
// Each binary (by device+inode, so the same libc serves every process) is
// compiled once (cfi_table.h) and appended to the row array; rows are never
// moved while referenced. When the row array is full, further binaries get
// no table (the BPF side then walks their frames by frame pointer) and
// `rows_dropped` counts what did not fit.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/shared_maps.h"
#include "unwind/cfi_table.h"
#include "unwind/go_layout.h"

namespace tickprobe {

struct UnwindTablesStats {
  uint64_t binaries = 0;        // binaries with a table loaded
  uint64_t binaries_no_cfi = 0; // binaries without usable CFI
  uint64_t rows_used = 0;
  uint64_t rows_capacity = 0;
  uint64_t rows_dropped = 0;    // rows of binaries that did not fit
  uint64_t processes = 0;
  uint64_t mappings_truncated = 0;  // processes with more than TP_MAX_PROC_MAPPINGS exec mappings
  uint64_t build_errors = 0;
  uint64_t rows_unsupported = 0;  // rows of loaded binaries whose CFA rule BPF cannot evaluate (TP_CFA_UNSUPPORTED)
  uint64_t rows_deref = 0;        // rows with a *(reg+a)+b CFA expression (evaluated)
  uint64_t go_binaries = 0;        // Go binaries whose stacks hop from g0 to the goroutine
  uint64_t go_layout_unknown = 0;  // Go binaries whose runtime layout is unknown: no hop
};

// The unwind facts of one binary, for `tickprobe doctor --pid`.
struct UnwindBinaryInfo {
  std::string path;
  size_t rows = 0;              // CFI rows after merging (0: no CFI)
  size_t unsupported_rows = 0;  // CFA expressions the BPF unwinder cannot evaluate
  size_t deref_rows = 0;        // CFA = *(reg + a) + b rows (evaluated)
  size_t rbp_unsupported = 0;   // rbp rules given by an expression (rbp lost above them)
  bool frame_pointers = false;  // non-leaf frames walked by frame pointer
  bool from_debug_frame = false;
  std::string error;            // why no table could be built
};

// Builds (without loading anything) the table of every executable file
// mapping of `pid`, once per file.
std::vector<UnwindBinaryInfo> inspect_process_unwind(uint32_t pid);

// Capacity of the unwind row array when --unwind-rows is not given
// (SharedMapSizes::unwind_rows == 0), sized from the binaries the first
// targets map: each executable file's FDE count (.eh_frame_hdr) times 8
// rows per FDE (measured: libc 7.5, libcrypto 7.9), or its code size / 16
// without one (.debug_frame only, e.g. Go), once per file; plus half again
// for binaries mapped later (dlopen, new targets, a restart into a new
// build); rounded up to 64Ki rows, at least kMinAutoUnwindRows, at most
// kMaxAutoUnwindRows. Rows that still do not fit are counted
// (rows_dropped) and warned about with the --unwind-rows hint.
constexpr uint32_t kMinAutoUnwindRows = 1u << 18;  // 3 MiB of rows: tickgame + libc/libstdc++/OpenSSL need ~170k
constexpr uint32_t kMaxAutoUnwindRows = 1u << 20;
uint32_t auto_unwind_rows(const std::vector<uint32_t>& pids);

class UnwindTables {
 public:
  explicit UnwindTables(const SharedMaps& maps) : maps_(maps) {}

  // Reads /proc/PID/maps and (re)writes the process's mapping table when its
  // executable mappings changed (dlopen, exec). Cheap when nothing changed.
  // Returns whether the table was (re)written.
  Result<bool> update_process(uint32_t pid);
  void remove_process(uint32_t pid);

  UnwindTablesStats stats() const;

 private:
  struct Binary {
    uint32_t row_start = 0;
    uint32_t row_count = 0;
    bool frame_pointers = false;
    uint32_t file_id = 0;
    std::vector<ElfLoadSegment> loads;
    bool is_go = false;
    GoRuntimeLayout go;  // valid when is_go
  };
  const Binary& binary_for(uint32_t pid, const std::string& path, uint64_t dev, uint64_t inode,
                           uint64_t start, uint64_t end);

  const SharedMaps& maps_;
  mutable std::mutex mu_;
  std::map<std::pair<uint64_t, uint64_t>, Binary> binaries_;  // (dev, inode) -> table
  std::map<uint32_t, std::string> process_signature_;         // pid -> maps fingerprint
  // tp_proc_maps.generation: never 0, never reused while running, so a BPF
  // cache keyed on it (offcpu's per-thread stack cache) sees every rewrite.
  uint32_t next_generation_ = 1;
  uint32_t next_row_ = 0;
  UnwindTablesStats stats_;
};

}  // namespace tickprobe
