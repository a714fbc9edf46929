#include <cerrno>
#include "symbolize/link_order.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "symbolize/elf_info.h"
#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfFile(const std::string& path) {
    ensure_libelf_initialized();
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (elf && elf_kind(elf) != ELF_K_ELF) {
      elf_end(elf);
      elf = nullptr;
    }
  }
  ~ElfFile() {
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
};

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

std::optional<DynamicInfo> read_dynamic_info(const std::string& path) {
  ElfFile f(path);
  if (!f.elf) return std::nullopt;
  DynamicInfo info;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(f.elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || sh.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; i++) {
      GElf_Dyn dyn;
      if (!gelf_getdyn(data, static_cast<int>(i), &dyn)) break;
      if (dyn.d_tag == DT_NULL) break;
      if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_SONAME) continue;
      const char* s = elf_strptr(f.elf, sh.sh_link, dyn.d_un.d_val);
      if (!s) continue;
      if (dyn.d_tag == DT_NEEDED)
        info.needed.emplace_back(s);
      else
        info.soname = s;
    }
    break;
  }
  return info;
}

std::vector<std::string> split_ld_preload(const std::string& value) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : value) {
    if (c == ' ' || c == ':' || c == '\t' || c == '\n') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<LinkOrderEntry> global_lookup_order(const LinkOrderInput& in) {
  // What each mapped object answers to: its path, its DT_SONAME, its file name.
  std::map<std::string, DynamicInfo> dyn;
  std::map<std::string, std::string> by_name;  // soname or file name -> mapped path (first mapped wins)
  for (const auto& path : in.mapped) {
    if (dyn.count(path)) continue;
    auto info = in.dynamic_info ? in.dynamic_info(path) : std::nullopt;
    dyn[path] = info.value_or(DynamicInfo{});
    if (info && !info->soname.empty()) by_name.emplace(info->soname, path);
  }
  for (const auto& path : in.mapped) by_name.emplace(base_name(path), path);
  auto resolve = [&](const std::string& name) -> std::optional<std::string> {
    if (name.find('/') != std::string::npos) {
      for (const auto& p : in.mapped)
        if (p == name) return p;
      // A preload given by a path through a symlink: match its file name.
      auto it = by_name.find(base_name(name));
      if (it != by_name.end()) return it->second;
      return std::nullopt;
    }
    auto it = by_name.find(name);
    if (it == by_name.end()) return std::nullopt;
    return it->second;
  };

  std::vector<LinkOrderEntry> order;
  std::set<std::string> seen;
  auto add = [&](const std::string& path, std::string reason) {
    if (path.empty() || !seen.insert(path).second) return;
    order.push_back({path, std::move(reason), true});
  };
  add(in.exe, "executable");
  for (const auto& p : in.preload)
    if (auto path = resolve(p)) add(*path, "LD_PRELOAD");
  // Breadth first over the scope built so far, appending unseen dependencies.
  for (size_t i = 0; i < order.size(); i++) {
    std::string from = order[i].path;
    auto it = dyn.find(from);
    std::vector<std::string> needed;
    if (it != dyn.end()) {
      needed = it->second.needed;
    } else if (in.dynamic_info) {
      if (auto info = in.dynamic_info(from)) needed = info->needed;
    }
    for (const auto& n : needed)
      if (auto path = resolve(n)) add(*path, "DT_NEEDED of " + from);
  }
  for (const auto& path : in.mapped)
    if (seen.insert(path).second) order.push_back({path, "mapped, not in the global scope", false});
  return order;
}

Result<std::vector<LinkOrderEntry>> process_lookup_order(uint32_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  char buf[4096];
  ssize_t n = readlink((proc + "/exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) {
    int err = errno;
    return Error::from_errno("cannot read " + proc + "/exe", err,
                             err == EACCES || err == EPERM
                                 ? "not permitted: a process of another user needs CAP_SYS_PTRACE "
                                   "(deploy/capabilities.txt)"
                                 : "is the process still running?");
  }
  LinkOrderInput in;
  in.exe = std::string(buf, static_cast<size_t>(n));
  const std::string deleted = " (deleted)";
  if (in.exe.size() > deleted.size() && in.exe.compare(in.exe.size() - deleted.size(), deleted.size(), deleted) == 0)
    in.exe.resize(in.exe.size() - deleted.size());
  for (const auto& m : read_proc_maps(pid, /*executable_only=*/true))
    if (!m.path.empty() && m.path[0] == '/') in.mapped.push_back(m.path);
  if (in.mapped.empty()) return Error("process " + std::to_string(pid) + " is gone or has no mapped binaries");

  // The environment the process was started with (ld.so read it at startup).
  std::string env = read_whole(proc + "/environ");
  for (size_t pos = 0; pos < env.size();) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (env.compare(pos, 11, "LD_PRELOAD=") == 0) {
      in.preload = split_ld_preload(env.substr(pos + 11, end - pos - 11));
      break;
    }
    pos = end + 1;
  }
  for (const auto& p : split_ld_preload(read_whole(proc + "/root/etc/ld.so.preload"))) in.preload.push_back(p);

  std::string root = proc + "/root";
  in.dynamic_info = [root](const std::string& path) -> std::optional<DynamicInfo> {
    std::string via_root = root + path;
    return read_dynamic_info(access(via_root.c_str(), R_OK) == 0 ? via_root : path);
  };
  return global_lookup_order(in);
}

std::map<std::string, uint64_t> find_defined_functions(const std::string& path, const std::vector<std::string>& names,
                                                       bool include_symtab) {
  std::map<std::string, uint64_t> out;
  ElfFile f(path);
  if (!f.elf) return out;
  std::set<std::string> wanted(names.begin(), names.end());
  for (int pass = 0; pass < 2; pass++) {
    Elf64_Word type = pass == 0 ? SHT_DYNSYM : SHT_SYMTAB;
    if (pass == 1 && !include_symtab) break;
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(f.elf, scn)) != nullptr) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      size_t n = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; i < n; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
        // Imports are SHN_UNDEF; IFUNC resolvers are not the function itself.
        if (sym.st_shndx == SHN_UNDEF || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0) continue;
        int bind = GELF_ST_BIND(sym.st_info);
        int vis = GELF_ST_VISIBILITY(sym.st_other);
        if (pass == 0 && ((bind != STB_GLOBAL && bind != STB_WEAK) || (vis != STV_DEFAULT && vis != STV_PROTECTED)))
          continue;
        const char* name = elf_strptr(f.elf, sh.sh_link, sym.st_name);
        if (!name || !wanted.count(name) || out.count(name)) continue;
        out[name] = sym.st_value;
      }
    }
  }
  return out;
}

}  // namespace tickprobe
