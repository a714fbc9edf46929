// Private to the symbolizer: one parsed ELF file (its function symbols, load
// layout, build-id, and optionally its DWARF line tables), plus the search for
// its separate debug file. Not thread-safe: the Symbolizer serializes access.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbolize/elf_info.h"
#include "symbolize/go_pclntab.h"

typedef struct Dwarf Dwarf;

namespace tickprobe {

// Where to look for a separate debug file.
struct DebugSearch {
  std::vector<std::string> debug_dirs;  // e.g. {"/usr/lib/debug"}; searched under root_prefix, then as is
  std::string root_prefix;              // "" or e.g. "/proc/123/root" or a sysroot
  std::string original_path;            // the binary's path as its process sees it (for debuglink dirs)
  bool debuginfod = true;               // ask debuginfod (when DEBUGINFOD_URLS is set) after the local dirs
};

// One source location, innermost first when inlined frames are expanded.
struct SourceFrame {
  std::string function;  // demangled; empty for the outermost (use the symbol)
  std::string file;
  uint32_t line = 0;
  bool inlined = false;
};

// A Go symbol name as runtime/pprof shows it: without the ".abi0" suffix
// the linker gives assembly (ABI0) functions in .symtab.
std::string go_display_name(std::string name);

class BinaryImage {
 public:
  ~BinaryImage();
  BinaryImage(const BinaryImage&) = delete;
  BinaryImage& operator=(const BinaryImage&) = delete;

  // Parses the ELF at `path`; nullptr (and *error) when it is no ELF.
  static std::shared_ptr<BinaryImage> open_file(const std::string& path, const DebugSearch& search,
                                                std::string* error);
  // Parses an ELF image held in memory (the vdso).
  static std::shared_ptr<BinaryImage> open_memory(std::vector<char> bytes, std::string* error);

  const std::string& build_id() const { return build_id_; }
  const ElfLoadInfo& load_info() const { return load_info_; }
  const std::string& debug_file() const { return debug_file_; }  // "" when none was used
  size_t symbol_count() const { return symbols_.size(); }
  // True when a full .symtab (the file's own or its debug file's) was read,
  // not just .dynsym.
  bool has_symtab() const { return has_symtab_; }

  // Go binaries: their pclntab (nullptr when the binary is no Go binary or
  // its pclntab could not be read; go_error() says why). In a Go binary
  // without .symtab, the pclntab's functions are the symbols; names drop
  // the ".abi0" suffix (as runtime/pprof shows them); file:line and inlined
  // frames come from the pclntab, not DWARF.
  bool is_go() const { return is_go_; }
  const GoPclntab* go_pclntab() const { return go_.get(); }
  const std::string& go_error() const { return go_error_; }

  // Index of the function symbol covering `vaddr` (or the nearest preceding
  // one when its size is 0), or -1.
  int64_t lookup(uint64_t vaddr) const;
  uint64_t symbol_address(int64_t index) const { return symbols_[index].addr; }
  const char* raw_name(int64_t index) const { return names_.data() + symbols_[index].name_off; }
  // Demangled (when `demangled`) name, cached per symbol.
  const std::string& name(int64_t index, bool demangled);

  // Start (ELF vaddr) of the .eh_frame FDE whose function holds `vaddr`: the
  // last FDE start at or below it, if the next one (or the end of the
  // executable segment) lies above. For code no symbol names (stripped
  // binaries with no debug file), so samples still group by function.
  std::optional<uint64_t> fde_function(uint64_t vaddr) const;

  // st_value of a function symbol by exact mangled or demangled name.
  std::optional<uint64_t> find(const std::string& name);

  // file:line (and inlined frames) for `vaddr` through libdw; empty when the
  // file (and its debug file) carries no DWARF for it.
  const std::vector<SourceFrame>& source_frames(uint64_t vaddr);

 private:
  BinaryImage() = default;
  struct Symbol {
    uint64_t addr;
    uint64_t size;
    uint32_t name_off;
    uint32_t rank;  // lower is the better name among aliases at one address
  };
  void add_symbols(Elf* elf);
  void add_go_symbols();
  void finish_symbols();
  bool open_dwarf();

  std::string build_id_;
  ElfLoadInfo load_info_;
  std::vector<Symbol> symbols_;     // one per address, sorted by addr
  std::vector<uint64_t> symbol_addrs_;  // symbols_[i].addr: the binary search touches 8 bytes per step, not 24
  std::vector<Symbol> all_names_;   // every alias, for find()
  std::string names_;               // NUL-separated name pool
  std::vector<std::string> demangled_;
  std::vector<char> memory_image_;  // owns the bytes of an in-memory ELF
  std::vector<uint64_t> fde_starts_;  // sorted, from .eh_frame_hdr
  bool has_symtab_ = false;
  bool is_go_ = false;
  std::unique_ptr<GoPclntab> go_;
  std::string go_error_;

  // DWARF: the file that has .debug_info (the binary or its debug file).
  std::string path_;
  std::string debug_file_;
  std::string dwarf_path_;
  bool dwarf_tried_ = false;
  int dwarf_fd_ = -1;
  Elf* dwarf_elf_ = nullptr;
  Dwarf* dwarf_ = nullptr;
  std::unordered_map<uint64_t, std::vector<SourceFrame>> source_cache_;
};

}  // namespace tickprobe
