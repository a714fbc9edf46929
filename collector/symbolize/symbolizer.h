// Symbolization: turns raw addresses into Frames.
//
// Sources: /proc/PID/maps; ELF .symtab and .dynsym; separate debug files found
// by build-id (/usr/lib/debug/.build-id/xx/yyyy.debug) and .gnu_debuglink;
// C++ demangling; kernel symbols from /proc/kallsyms; optional file:line (and
// inlined frames) through libdw.
//
// Caching: parsed ELF files are cached by build-id (or path+mtime+size when a
// file has no build-id), and each process's memory map is snapshotted, so a
// process that exited after its samples were taken still symbolizes as long as
// its map was snapshotted (snapshot_process) while it was alive.
//
// All caches are bounded (max_binaries / max_processes); evictions are counted.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/profile.h"

namespace tickprobe {

struct SymbolizerOptions {
  bool line_info = false;        // file:line and inlined frames through libdw
  bool demangle = true;
  size_t max_binaries = 256;     // cached ELF files
  size_t max_processes = 1024;   // cached /proc/PID/maps snapshots
  std::string sysroot;           // prefix for reading binaries (default: /proc/PID/root when needed)
  // Roots of separate debug files: <dir>/.build-id/xx/yyyy.debug and
  // <dir><binary's dir>/<debuglink name> (and <dir>/<debuglink name>). Each is
  // looked up inside the process's root first, then on the host.
  std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
  // After the debug dirs, ask debuginfod by build-id when DEBUGINFOD_URLS is
  // set (symbolize/debuginfod.h).
  bool debuginfod = true;
  // Code no symbol covers is named after its .eh_frame FDE ("func@0x1230 in
  // foo", the FDE's ELF vaddr), so a stripped binary's samples still group
  // by function.
  bool fde_names = true;
};

struct SymbolizerStats {
  uint64_t binaries_cached = 0;
  uint64_t binary_cache_hits = 0;
  uint64_t binary_cache_misses = 0;
  uint64_t binary_evictions = 0;
  uint64_t processes_cached = 0;
  uint64_t process_evictions = 0;
  uint64_t unknown_frames = 0;  // addresses no symbol covered
  uint64_t fde_named_frames = 0;  // named func@0x... after their .eh_frame FDE (no symbol)
  uint64_t resolved_frames = 0;
};

// One executable mapping of a process (from /proc/PID/maps).
struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  uint64_t inode = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  std::string path;  // "" for anonymous; "[vdso]" etc. for special; without " (deleted)"
  bool executable = false;
  bool deleted = false;  // the file was unlinked (or replaced) after it was mapped
};

// Parses /proc/PID/maps (all mappings, or only executable ones). Empty when
// the process is gone.
std::vector<Mapping> read_proc_maps(uint32_t pid, bool executable_only = true);
// Parses the text of a maps file (what read_proc_maps reads); exposed for tests.
std::vector<Mapping> parse_proc_maps(const std::string& text, bool executable_only = true);

class Symbolizer {
 public:
  explicit Symbolizer(SymbolizerOptions opts = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Snapshots /proc/PID/maps (and opens the mapped binaries) so the process
  // symbolizes after it exits. Returns false if the process is gone. A
  // snapshot keeps its binaries alive even when the binary cache evicts them.
  // PIDs are not checked for reuse: forget_process() when a process exits.
  bool snapshot_process(uint32_t pid);
  // Drops a process's map snapshot (e.g. after exec, so the new image is read).
  void forget_process(uint32_t pid);

  // User addresses of process `pid`, leaf first. Returns one or more Frames per
  // address (more than one when line_info expands inlined frames; the inlined
  // ones come first, innermost first). Every address but the leaf is a return
  // address and is looked up at addr-1 (so a call that ends a function counts
  // for that function); with leaf_is_exact_ip=false the leaf is too. Frames
  // carry the address as given. A process not snapshotted yet is snapshotted
  // now; an address outside its snapshot re-reads the maps (at most every
  // 500 ms) for libraries mapped since. Unknown frames keep module (path, or
  // "[unknown]" outside every mapping) and module_offset (file offset).
  std::vector<Frame> symbolize_user(uint32_t pid, const std::vector<uint64_t>& addrs,
                                    bool leaf_is_exact_ip = true);
  // Kernel addresses (from /proc/kallsyms, read once), leaf first. Frames
  // other than the leaf are return addresses and are looked up at addr-1
  // unless leaf_is_exact_ip is false (then the leaf is too).
  std::vector<Frame> symbolize_kernel(const std::vector<uint64_t>& addrs, bool leaf_is_exact_ip = true);

  // ELF virtual address (st_value) of a function symbol in `elf_path`, by
  // exact mangled or demangled name (e.g. for attaching uprobes or checking
  // a known function). Uses the binary cache (and a debug file's .symtab
  // when the binary is stripped).
  std::optional<uint64_t> find_symbol_address(const std::string& elf_path, const std::string& name);

  // The executable mappings of a (snapshotted) process, sorted by address,
  // with build ids; the main executable is marked and named like its frames
  // (the path the process ran, see process_invoked_path()).
  std::vector<ProfileMapping> process_mappings(uint32_t pid);

  SymbolizerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The path a process ran, resolved to an absolute path (argv[0] from
// /proc/PID/cmdline, relative to its cwd or searched in its PATH) when it
// names the same file as /proc/PID/exe; else /proc/PID/exe. A server started
// through a symlink (/usr/bin/NAME -> other-binary) is NAME, not the target.
// "" when the process is gone.
std::string process_invoked_path(uint32_t pid);

// Demangles an Itanium C++ name; returns the input when it is not mangled.
std::string demangle(const std::string& name);

}  // namespace tickprobe
