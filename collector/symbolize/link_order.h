// Where a process's calls to an exported function land: the dynamic
// linker's global lookup scope, rebuilt from outside the process.
//
// ld.so binds an undefined symbol to the first object of the global scope
// that defines it. That scope is the executable, then the LD_PRELOAD
// objects (and /etc/ld.so.preload), then the DT_NEEDED dependencies in
// breadth-first order, each object once (glibc: _dl_map_object_deps).
// Objects loaded with dlopen(RTLD_LOCAL) are not in it. A server linked
// against jemalloc therefore calls jemalloc's malloc, and glibc's malloc,
// though mapped, is never called: probing the first mapped object that
// defines `malloc` is not enough, the order matters.
//
// Pure logic (global_lookup_order) is separate from the reads of /proc and
// ELF files, so the order can be unit-tested with made-up objects.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

// The dynamic section facts the lookup order needs.
struct DynamicInfo {
  std::string soname;                // DT_SONAME, "" if none
  std::vector<std::string> needed;   // DT_NEEDED, in order
};

// DT_SONAME and DT_NEEDED of an ELF file; nullopt when it is no ELF.
std::optional<DynamicInfo> read_dynamic_info(const std::string& path);

struct LinkOrderEntry {
  std::string path;    // as mapped (/proc/PID/maps)
  std::string reason;  // "executable", "LD_PRELOAD", "DT_NEEDED of <path>", "mapped, not in the global scope"
  bool global = true;  // in the global lookup scope (false: dlopen'ed locally, or unknown)
};

struct LinkOrderInput {
  std::string exe;                   // the executable's mapped path
  std::vector<std::string> preload;  // LD_PRELOAD entries, then /etc/ld.so.preload (names or paths)
  std::vector<std::string> mapped;   // every mapped object, in map order
  // Reads an object's dynamic section (the path is a mapped path).
  std::function<std::optional<DynamicInfo>(const std::string&)> dynamic_info;
};

// The global lookup scope, then the mapped objects outside it (in map order,
// global = false). A name (DT_NEEDED, or LD_PRELOAD without a slash) is
// matched to a mapped object by its DT_SONAME, else by file name: maps show
// the file behind symlinks (libtcmalloc.so.4.5.10 for libtcmalloc.so.4).
std::vector<LinkOrderEntry> global_lookup_order(const LinkOrderInput& in);

// LD_PRELOAD's value split as ld.so splits it (spaces and colons).
std::vector<std::string> split_ld_preload(const std::string& value);

// The lookup order of a running process, from /proc/PID/{exe,maps,environ}
// and the mapped objects' dynamic sections (read through /proc/PID/root).
Result<std::vector<LinkOrderEntry>> process_lookup_order(uint32_t pid);

// The ELF virtual addresses of those of `names` that `path` defines as
// functions (not imports): from .dynsym (exported, default or protected
// visibility); with include_symtab also from .symtab (an executable's own
// calls bind to its local definitions at link time). Names it does not
// define are absent from the result.
std::map<std::string, uint64_t> find_defined_functions(const std::string& path, const std::vector<std::string>& names,
                                                       bool include_symtab);

}  // namespace tickprobe
