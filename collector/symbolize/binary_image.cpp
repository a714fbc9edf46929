#include "symbolize/binary_image.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "symbolize/debuginfod.h"
#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

constexpr size_t kMaxSourceCacheEntries = 1 << 16;

struct SectionFacts {
  bool has_symtab = false;
  bool has_debug_info = false;
};

SectionFacts section_facts(Elf* elf) {
  SectionFacts facts;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return facts;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    if (shdr.sh_type == SHT_SYMTAB) facts.has_symtab = true;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    // A debug_info that is NOBITS (stripped in place) does not count.
    if (name && shdr.sh_type != SHT_NOBITS &&
        (std::strcmp(name, ".debug_info") == 0 || std::strcmp(name, ".zdebug_info") == 0))
      facts.has_debug_info = true;
  }
  return facts;
}

bool stat_regular(const std::string& path, struct stat* st) {
  return ::stat(path.c_str(), st) == 0 && S_ISREG(st->st_mode);
}

std::string dirname_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Opened candidate debug file, checked against the binary.
bool debug_file_matches(const std::string& candidate, const struct stat& binary_st, const std::string& build_id,
                        std::optional<uint32_t> crc) {
  struct stat st;
  if (!stat_regular(candidate, &st)) return false;
  if (st.st_dev == binary_st.st_dev && st.st_ino == binary_st.st_ino) return false;  // the binary itself
  std::string candidate_id = read_build_id(candidate);
  if (!build_id.empty() && !candidate_id.empty()) return candidate_id == build_id;
  if (crc) {
    auto actual = file_crc32(candidate);
    return actual && *actual == *crc;
  }
  return true;
}

std::string find_debug_file(Elf* elf, const std::string& path, const std::string& build_id,
                            const DebugSearch& search) {
  struct stat binary_st;
  if (::stat(path.c_str(), &binary_st) != 0) std::memset(&binary_st, 0, sizeof binary_st);

  std::vector<std::string> dirs;  // debug dirs, inside the process's root first
  for (const std::string& d : search.debug_dirs) {
    if (!search.root_prefix.empty()) dirs.push_back(search.root_prefix + d);
    dirs.push_back(d);
  }
  if (build_id.size() > 2) {
    for (const std::string& d : dirs) {
      std::string candidate = d + "/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
      if (debug_file_matches(candidate, binary_st, build_id, std::nullopt)) return candidate;
    }
  }
  auto link = read_debuglink(elf);
  if (!link) return {};
  const std::string& original = search.original_path.empty() ? path : search.original_path;
  std::string origin_dir = dirname_of(original);
  std::vector<std::string> candidates;
  candidates.push_back(search.root_prefix + origin_dir + "/" + link->name);
  candidates.push_back(search.root_prefix + origin_dir + "/.debug/" + link->name);
  candidates.push_back(dirname_of(path) + "/" + link->name);  // next to the file we actually opened
  for (const std::string& d : dirs) {
    candidates.push_back(d + origin_dir + "/" + link->name);
    candidates.push_back(d + "/" + link->name);
  }
  for (const std::string& candidate : candidates) {
    if (debug_file_matches(candidate, binary_st, build_id, link->crc)) return candidate;
  }
  return {};
}

// Local debug dirs first (no network), then debuginfod by build-id.
std::string find_debug_file_anywhere(Elf* elf, const std::string& path, const std::string& build_id,
                                     const DebugSearch& search) {
  std::string local = find_debug_file(elf, path, build_id, search);
  if (!local.empty() || !search.debuginfod || build_id.empty()) return local;
  std::string fetched = debuginfod_find_debug_file(build_id);
  if (fetched.empty()) return {};
  struct stat binary_st;
  if (::stat(path.c_str(), &binary_st) != 0) std::memset(&binary_st, 0, sizeof binary_st);
  return debug_file_matches(fetched, binary_st, build_id, std::nullopt) ? fetched : std::string();
}

// Lower rank = better name among aliases at one address: sized over unsized,
// global/weak over local, fewer leading underscores (getpid over __getpid),
// then shorter.
uint32_t symbol_rank(const GElf_Sym& sym, const char* name) {
  uint32_t underscores = 0;
  while (name[underscores] == '_' && underscores < 15) ++underscores;
  // A C++ mangled name starts with "_Z": that underscore is not a "private" marker.
  if (name[0] == '_' && name[1] == 'Z') underscores = 0;
  uint32_t rank = 0;
  if (sym.st_size == 0) rank |= 1u << 30;
  if (GELF_ST_BIND(sym.st_info) == STB_LOCAL) rank |= 1u << 29;
  rank |= underscores << 24;
  rank |= std::min<uint32_t>(static_cast<uint32_t>(std::strlen(name)), 0xffffff);
  return rank;
}

std::string die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
  if (!name) name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
  if (name) return demangle(name);
  name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
  return name ? name : "";
}

}  // namespace

std::string go_display_name(std::string name) {
  static constexpr std::string_view kAbi0 = ".abi0";
  if (name.size() > kAbi0.size() && name.compare(name.size() - kAbi0.size(), kAbi0.size(), kAbi0) == 0)
    name.resize(name.size() - kAbi0.size());
  return name;
}

BinaryImage::~BinaryImage() {
  if (dwarf_) dwarf_end(dwarf_);
  if (dwarf_elf_) elf_end(dwarf_elf_);
  if (dwarf_fd_ >= 0) ::close(dwarf_fd_);
}

std::shared_ptr<BinaryImage> BinaryImage::open_file(const std::string& path, const DebugSearch& search,
                                                    std::string* error) {
  ensure_libelf_initialized();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = "failed to open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    if (error) *error = "not an ELF file: " + path;
    if (elf) elf_end(elf);
    ::close(fd);
    return nullptr;
  }
  std::shared_ptr<BinaryImage> image(new BinaryImage());
  image->path_ = path;
  image->build_id_ = read_build_id(elf);
  image->load_info_ = read_elf_load_info(elf).value_or(ElfLoadInfo{});
  SectionFacts facts = section_facts(elf);
  image->add_symbols(elf);
  if (is_go_binary(elf)) {
    image->is_go_ = true;
    image->go_ = GoPclntab::parse(elf, &image->go_error_);
  }
  image->fde_starts_ = eh_frame_fde_starts(elf);
  if (facts.has_debug_info) image->dwarf_path_ = path;
  if (!facts.has_symtab || !facts.has_debug_info) {
    std::string debug = find_debug_file_anywhere(elf, path, image->build_id_, search);
    if (!debug.empty()) {
      image->debug_file_ = debug;
      if (!facts.has_debug_info) image->dwarf_path_ = debug;
      if (!facts.has_symtab) {
        int dfd = ::open(debug.c_str(), O_RDONLY | O_CLOEXEC);
        if (dfd >= 0) {
          Elf* delf = elf_begin(dfd, ELF_C_READ_MMAP, nullptr);
          if (delf && elf_kind(delf) == ELF_K_ELF) image->add_symbols(delf);
          if (delf) elf_end(delf);
          ::close(dfd);
        }
      }
    }
  }
  elf_end(elf);
  ::close(fd);
  if (image->go_ && !image->has_symtab_) image->add_go_symbols();
  image->finish_symbols();
  return image;
}

std::shared_ptr<BinaryImage> BinaryImage::open_memory(std::vector<char> bytes, std::string* error) {
  ensure_libelf_initialized();
  std::shared_ptr<BinaryImage> image(new BinaryImage());
  image->memory_image_ = std::move(bytes);
  Elf* elf = elf_memory(image->memory_image_.data(), image->memory_image_.size());
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    if (error) *error = "not an ELF image in memory";
    if (elf) elf_end(elf);
    return nullptr;
  }
  image->build_id_ = read_build_id(elf);
  image->load_info_ = read_elf_load_info(elf).value_or(ElfLoadInfo{});
  image->add_symbols(elf);
  image->fde_starts_ = eh_frame_fde_starts(elf);
  elf_end(elf);
  image->finish_symbols();
  image->memory_image_.clear();  // symbols are copied; no DWARF in the vdso image
  image->memory_image_.shrink_to_fit();
  return image;
}

void BinaryImage::add_symbols(Elf* elf) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf || shdr.sh_entsize == 0) continue;  // NOBITS in a debug file
    if (shdr.sh_type == SHT_SYMTAB) has_symtab_ = true;
    size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
      int type = GELF_ST_TYPE(sym.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (!name || !*name) continue;
      Symbol s{sym.st_value, sym.st_size, static_cast<uint32_t>(names_.size()), symbol_rank(sym, name)};
      names_.append(name);
      names_.push_back('\0');
      all_names_.push_back(s);
    }
  }
}

void BinaryImage::add_go_symbols() {
  for (size_t i = 0; i < go_->function_count(); ++i) {
    std::string_view name = go_->name(static_cast<int64_t>(i));
    if (name.empty()) continue;
    uint64_t entry = go_->entry(static_cast<int64_t>(i));
    Symbol s{entry, go_->end(static_cast<int64_t>(i)) - entry, static_cast<uint32_t>(names_.size()),
             static_cast<uint32_t>(std::min<size_t>(name.size(), 0xffffff))};
    names_.append(name);
    names_.push_back('\0');
    all_names_.push_back(s);
  }
}

void BinaryImage::finish_symbols() {
  // Images live as long as the symbolizer caches them: no growth slack.
  names_.shrink_to_fit();
  all_names_.shrink_to_fit();
  symbols_ = all_names_;
  std::sort(symbols_.begin(), symbols_.end(), [](const Symbol& a, const Symbol& b) {
    return a.addr != b.addr ? a.addr < b.addr : a.rank < b.rank;
  });
  symbols_.erase(std::unique(symbols_.begin(), symbols_.end(),
                             [](const Symbol& a, const Symbol& b) { return a.addr == b.addr; }),
                 symbols_.end());
  symbols_.shrink_to_fit();
  symbol_addrs_.resize(symbols_.size());
  for (size_t i = 0; i < symbols_.size(); ++i) symbol_addrs_[i] = symbols_[i].addr;
  demangled_.assign(symbols_.size(), std::string());
}

int64_t BinaryImage::lookup(uint64_t vaddr) const {
  auto it = std::upper_bound(symbol_addrs_.begin(), symbol_addrs_.end(), vaddr);
  if (it == symbol_addrs_.begin()) return -1;
  int64_t i = (it - symbol_addrs_.begin()) - 1;
  const Symbol& s = symbols_[i];
  if (s.size == 0 || vaddr < s.addr + s.size) return i;
  // Nested or overlapping symbols (e.g. a local alias inside a larger
  // function): look a few entries back for one that still covers vaddr.
  for (int64_t j = i - 1; j >= 0 && j >= i - 8; --j) {
    if (symbols_[j].size != 0 && vaddr < symbols_[j].addr + symbols_[j].size) return j;
  }
  return -1;
}

std::optional<uint64_t> BinaryImage::fde_function(uint64_t vaddr) const {
  auto it = std::upper_bound(fde_starts_.begin(), fde_starts_.end(), vaddr);
  if (it == fde_starts_.begin()) return std::nullopt;
  uint64_t start = *(it - 1);
  // Past the last FDE: only inside the executable segment that holds it.
  if (it == fde_starts_.end()) {
    for (const PtLoad& seg : load_info_.segments) {
      if (seg.executable() && start >= seg.p_vaddr && start < seg.p_vaddr + seg.p_memsz)
        return vaddr < seg.p_vaddr + seg.p_memsz ? std::optional<uint64_t>(start) : std::nullopt;
    }
    return std::nullopt;
  }
  return start;
}

const std::string& BinaryImage::name(int64_t index, bool demangled) {
  std::string& cached = demangled_[index];
  if (cached.empty()) {
    cached = demangled ? demangle(raw_name(index)) : std::string(raw_name(index));
    if (is_go_) cached = go_display_name(cached);
  }
  return cached;
}

std::optional<uint64_t> BinaryImage::find(const std::string& wanted) {
  for (const Symbol& s : all_names_) {
    if (wanted == names_.data() + s.name_off) return s.addr;
  }
  for (const Symbol& s : all_names_) {
    const char* raw = names_.data() + s.name_off;
    if (raw[0] == '_' && raw[1] == 'Z' && demangle(raw) == wanted) return s.addr;
    if (is_go_ && go_display_name(raw) == wanted) return s.addr;
  }
  return std::nullopt;
}

bool BinaryImage::open_dwarf() {
  if (dwarf_tried_) return dwarf_ != nullptr;
  dwarf_tried_ = true;
  if (dwarf_path_.empty()) return false;
  dwarf_fd_ = ::open(dwarf_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (dwarf_fd_ < 0) return false;
  dwarf_elf_ = elf_begin(dwarf_fd_, ELF_C_READ_MMAP, nullptr);
  if (!dwarf_elf_) return false;
  dwarf_ = dwarf_begin_elf(dwarf_elf_, DWARF_C_READ, nullptr);
  return dwarf_ != nullptr;
}

const std::vector<SourceFrame>& BinaryImage::source_frames(uint64_t vaddr) {
  auto found = source_cache_.find(vaddr);
  if (found != source_cache_.end()) return found->second;
  if (source_cache_.size() >= kMaxSourceCacheEntries) source_cache_.clear();
  std::vector<SourceFrame>& out = source_cache_[vaddr];
  if (go_) {
    // The pclntab is what the Go runtime's own tracebacks and runtime/pprof
    // use: same names, same inlining, and present in stripped binaries.
    for (const GoFrame& g : go_->frames(vaddr))
      out.push_back(SourceFrame{g.inlined ? std::string(g.function) : std::string(), std::string(g.file), g.line,
                                g.inlined});
    if (!out.empty()) return out;
  }
  if (!open_dwarf()) return out;

  Dwarf_Die cudie;
  if (!dwarf_addrdie(dwarf_, vaddr, &cudie)) return out;
  std::string file;
  uint32_t line = 0;
  if (Dwarf_Line* l = dwarf_getsrc_die(&cudie, vaddr)) {
    if (const char* f = dwarf_linesrc(l, nullptr, nullptr)) file = f;
    int lineno = 0;
    if (dwarf_lineno(l, &lineno) == 0) line = static_cast<uint32_t>(lineno);
  }
  Dwarf_Files* files = nullptr;
  size_t nfiles = 0;
  if (dwarf_getsrcfiles(&cudie, &files, &nfiles) != 0) files = nullptr;

  // Scopes come innermost first. Each inlined_subroutine is a frame whose
  // location is the current one; its call site becomes the location of the
  // frame around it, up to the concrete subprogram.
  Dwarf_Die* scopes = nullptr;
  int nscopes = dwarf_getscopes(&cudie, vaddr, &scopes);
  for (int i = 0; i < nscopes; ++i) {
    int tag = dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_subprogram) break;
    if (tag != DW_TAG_inlined_subroutine) continue;
    out.push_back(SourceFrame{die_function_name(&scopes[i]), file, line, true});
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    file.clear();
    line = 0;
    if (files && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &value) == 0) {
      if (const char* f = dwarf_filesrc(files, value, nullptr, nullptr)) file = f;
    }
    if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &value) == 0)
      line = static_cast<uint32_t>(value);
  }
  free(scopes);
  out.push_back(SourceFrame{std::string(), file, line, false});
  return out;
}

}  // namespace tickprobe
