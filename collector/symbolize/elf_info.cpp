#include "symbolize/elf_info.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <mutex>

namespace tickprobe {
namespace {

// RAII for a read-only libelf handle on a path.
struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfFile(const std::string& path) {
    ensure_libelf_initialized();
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (elf && elf_kind(elf) != ELF_K_ELF) {
      elf_end(elf);
      elf = nullptr;
    }
  }
  ~ElfFile() {
    if (elf) elf_end(elf);
    if (fd >= 0) ::close(fd);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
};

std::string to_hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 15]);
  }
  return s;
}

std::string build_id_from_note_data(Elf_Data* data) {
  if (!data) return {};
  size_t off = 0;
  GElf_Nhdr nhdr;
  size_t name_off = 0, desc_off = 0;
  while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
    if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
        std::memcmp(static_cast<const char*>(data->d_buf) + name_off, "GNU", 4) == 0 &&
        nhdr.n_descsz > 0) {
      return to_hex(static_cast<const unsigned char*>(data->d_buf) + desc_off, nhdr.n_descsz);
    }
  }
  return {};
}

}  // namespace

void ensure_libelf_initialized() {
  static std::once_flag once;
  std::call_once(once, [] { elf_version(EV_CURRENT); });
}

std::string read_build_id(Elf* elf) {
  if (!elf) return {};
  // Section headers first (present in debug files and most binaries), then
  // program headers (present in everything that is loaded, e.g. the vdso
  // read from memory where section data may be absent).
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE) continue;
    std::string id = build_id_from_note_data(elf_getdata(scn, nullptr));
    if (!id.empty()) return id;
  }
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return {};
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf, static_cast<int>(i), &phdr) || phdr.p_type != PT_NOTE) continue;
    Elf_Data* data = elf_getdata_rawchunk(elf, phdr.p_offset, phdr.p_filesz, ELF_T_NHDR);
    std::string id = build_id_from_note_data(data);
    if (!id.empty()) return id;
  }
  return {};
}

std::string read_build_id(const std::string& path) {
  ElfFile f(path);
  return read_build_id(f.elf);
}

std::optional<ElfLoadInfo> read_elf_load_info(Elf* elf) {
  GElf_Ehdr ehdr;
  if (!elf || !gelf_getehdr(elf, &ehdr)) return std::nullopt;
  ElfLoadInfo info;
  info.is_pie_or_dso = ehdr.e_type == ET_DYN;
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return info;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf, static_cast<int>(i), &phdr) || phdr.p_type != PT_LOAD) continue;
    info.segments.push_back(PtLoad{phdr.p_vaddr, phdr.p_offset, phdr.p_filesz, phdr.p_memsz, phdr.p_flags});
  }
  return info;
}

std::optional<ElfLoadInfo> read_elf_load_info(const std::string& path) {
  ElfFile f(path);
  return read_elf_load_info(f.elf);
}

uint64_t file_offset_to_vaddr(const ElfLoadInfo& info, uint64_t file_offset) {
  const PtLoad* best = nullptr;
  for (const PtLoad& seg : info.segments) {
    if (file_offset >= seg.p_offset && file_offset < seg.p_offset + seg.p_filesz)
      return file_offset - seg.p_offset + seg.p_vaddr;
    if (seg.p_offset <= file_offset && (!best || seg.p_offset >= best->p_offset)) best = &seg;
  }
  if (!best) return file_offset;
  return file_offset - best->p_offset + best->p_vaddr;
}

std::optional<uint64_t> vaddr_to_file_offset(const ElfLoadInfo& info, uint64_t vaddr) {
  for (const PtLoad& seg : info.segments) {
    if (vaddr >= seg.p_vaddr && vaddr < seg.p_vaddr + seg.p_memsz) return vaddr - seg.p_vaddr + seg.p_offset;
  }
  return std::nullopt;
}

std::optional<DebugLink> read_debuglink(Elf* elf) {
  if (!elf) return std::nullopt;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return std::nullopt;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (!name || std::strcmp(name, ".gnu_debuglink") != 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf || data->d_size < 8) return std::nullopt;
    const char* p = static_cast<const char*>(data->d_buf);
    size_t len = strnlen(p, data->d_size);
    if (len == 0 || len >= data->d_size) return std::nullopt;
    // The name is NUL-padded to a multiple of 4, then the 4-byte CRC in the
    // file's byte order (always little-endian on the machines we run on).
    size_t crc_off = (len + 4) & ~size_t{3};
    if (crc_off + 4 > data->d_size) return std::nullopt;
    DebugLink link;
    link.name.assign(p, len);
    std::memcpy(&link.crc, p + crc_off, 4);
    return link;
  }
  return std::nullopt;
}

std::optional<uint32_t> file_crc32(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  uLong crc = crc32(0L, Z_NULL, 0);
  static thread_local char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf), static_cast<uInt>(n));
  }
  ::close(fd);
  return static_cast<uint32_t>(crc);
}

namespace {

// Reads one pointer encoded per DW_EH_PE_* from .eh_frame_hdr.
bool read_encoded(const uint8_t*& p, const uint8_t* end, uint8_t enc, uint64_t section_addr,
                  const uint8_t* section_start, uint64_t* out) {
  if (enc == 0xff) return false;  // DW_EH_PE_omit
  uint64_t pos_addr = section_addr + static_cast<uint64_t>(p - section_start);
  int64_t value = 0;
  switch (enc & 0x0f) {
    case 0x00:  // absptr
    case 0x04:  // udata8
    case 0x0c: {  // sdata8
      if (end - p < 8) return false;
      std::memcpy(&value, p, 8);
      p += 8;
      break;
    }
    case 0x03: {  // udata4
      if (end - p < 4) return false;
      uint32_t v;
      std::memcpy(&v, p, 4);
      value = v;
      p += 4;
      break;
    }
    case 0x0b: {  // sdata4
      if (end - p < 4) return false;
      int32_t v;
      std::memcpy(&v, p, 4);
      value = v;
      p += 4;
      break;
    }
    default:
      return false;
  }
  switch (enc & 0x70) {
    case 0x00: break;                              // absolute
    case 0x10: value += pos_addr; break;           // pcrel
    case 0x30: value += section_addr; break;       // datarel (relative to .eh_frame_hdr)
    default: return false;
  }
  *out = static_cast<uint64_t>(value);
  return true;
}

}  // namespace

std::vector<uint64_t> eh_frame_fde_starts(Elf* elf) {
  std::vector<uint64_t> starts;
  size_t shstrndx;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return starts;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
    if (!name || std::strcmp(name, ".eh_frame_hdr") != 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || data->d_size < 4) return starts;
    auto* base = static_cast<const uint8_t*>(data->d_buf);
    const uint8_t* p = base;
    const uint8_t* end = base + data->d_size;
    uint8_t version = *p++;
    uint8_t ptr_enc = *p++;
    uint8_t count_enc = *p++;
    uint8_t table_enc = *p++;
    if (version != 1) return starts;
    uint64_t eh_frame_ptr, count;
    if (!read_encoded(p, end, ptr_enc, sh.sh_addr, base, &eh_frame_ptr)) return starts;
    if (!read_encoded(p, end, count_enc, sh.sh_addr, base, &count)) return starts;
    starts.reserve(count);
    for (uint64_t i = 0; i < count; i++) {
      uint64_t loc, fde;
      if (!read_encoded(p, end, table_enc, sh.sh_addr, base, &loc)) break;
      if (!read_encoded(p, end, table_enc, sh.sh_addr, base, &fde)) break;
      starts.push_back(loc);
    }
    break;
  }
  return starts;
}


}  // namespace tickprobe
