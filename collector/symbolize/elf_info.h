// Small, reusable ELF facts: build-id, PT_LOAD layout, and the mapping from a
// file offset (what /proc/PID/maps gives) to an ELF virtual address (what
// symbol tables, DWARF and .eh_frame use).
//
// Shared by the symbolizer and the DWARF-CFI unwind-table generator, so it
// knows nothing about caches or processes. All functions are thread-safe and
// report failure as an empty value, never by throwing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

typedef struct Elf Elf;  // libelf's opaque handle

namespace tickprobe {

// One PT_LOAD program header.
struct PtLoad {
  uint64_t p_vaddr = 0;
  uint64_t p_offset = 0;
  uint64_t p_filesz = 0;
  uint64_t p_memsz = 0;
  uint32_t flags = 0;  // PF_X | PF_W | PF_R
  bool executable() const { return flags & 1u; }
};

struct ElfLoadInfo {
  std::vector<PtLoad> segments;  // in program-header order (ascending p_vaddr)
  bool is_pie_or_dso = false;    // ET_DYN: loaded at a bias chosen at run time
};

// Ensures elf_version() was called; safe to call from any thread, any number of times.
void ensure_libelf_initialized();

// Hex build-id (NT_GNU_BUILD_ID), or "" when the file has none or is no ELF.
std::string read_build_id(const std::string& path);
std::string read_build_id(Elf* elf);

// PT_LOAD segments; nullopt when the file is no ELF.
std::optional<ElfLoadInfo> read_elf_load_info(const std::string& path);
std::optional<ElfLoadInfo> read_elf_load_info(Elf* elf);

// Maps a file offset to the ELF virtual address that the loader put there:
// vaddr = offset - p_offset + p_vaddr of the PT_LOAD whose file range holds the
// offset. Offsets past every segment's file range use the last segment that
// starts at or before them (as a mapping of .bss would). With no segments the
// offset is returned unchanged.
uint64_t file_offset_to_vaddr(const ElfLoadInfo& info, uint64_t file_offset);
// The reverse (vaddr -> file offset), nullopt when no PT_LOAD holds the vaddr.
std::optional<uint64_t> vaddr_to_file_offset(const ElfLoadInfo& info, uint64_t vaddr);

// Runtime address of a mapping => ELF vaddr, given the mapping's start and
// file offset (as in /proc/PID/maps). Works for PIE, DSOs and fixed-address
// executables alike, and for every one of several mappings of one file.
inline uint64_t runtime_to_vaddr(const ElfLoadInfo& info, uint64_t addr, uint64_t map_start,
                                 uint64_t map_file_offset) {
  return file_offset_to_vaddr(info, addr - map_start + map_file_offset);
}

// .gnu_debuglink contents: file name and CRC32 of the debug file.
struct DebugLink {
  std::string name;
  uint32_t crc = 0;
};
std::optional<DebugLink> read_debuglink(Elf* elf);

// CRC32 of a whole file as .gnu_debuglink defines it (zlib's crc32).
std::optional<uint32_t> file_crc32(const std::string& path);

// Start addresses (ELF vaddr, ascending) of the functions described by
// .eh_frame, from .eh_frame_hdr's sorted search table; empty without one.
// Stripped binaries keep .eh_frame (unwinding needs it), so these are the
// function boundaries that survive strip --strip-all.
std::vector<uint64_t> eh_frame_fde_starts(Elf* elf);

}  // namespace tickprobe
