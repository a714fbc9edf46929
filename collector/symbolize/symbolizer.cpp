#include "symbolize/symbolizer.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <mutex>
#include <unordered_map>

#include "symbolize/binary_image.h"
#include "symbolize/kernel_symbols.h"
#include "core/log.h"

namespace tickprobe {

std::string demangle(const std::string& name) {
  if (name.size() < 3 || name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || !out) {
    std::free(out);
    return name;
  }
  std::string result(out);
  std::free(out);
  return result;
}

namespace {

constexpr uint64_t kMaxVdsoSize = 1 << 20;
// An address outside every snapshotted mapping of a live process re-reads its
// maps (a dlopen or JIT since the snapshot), but at most this often, so a
// stream of stacks with a garbage address does not re-read maps per stack.
constexpr std::chrono::milliseconds kMinRefreshInterval{500};

struct MappedRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  std::string module;  // path as the process sees it, "[vdso]", or "[anon]"
  std::string mapped_path;  // the path in /proc/PID/maps (differs from module for a symlinked executable)
  std::string fde_suffix;   // " in <basename of module>", for func@0x... names
  bool main_executable = false;
  std::shared_ptr<BinaryImage> image;  // null when the file could not be read
};

struct ProcessSnapshot {
  std::vector<MappedRange> ranges;  // sorted by start
  std::chrono::steady_clock::time_point taken;
  const MappedRange* find(uint64_t addr) const {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), addr,
                               [](uint64_t a, const MappedRange& r) { return a < r.start; });
    if (it == ranges.begin()) return nullptr;
    --it;
    return addr < it->end ? &*it : nullptr;
  }
};

std::string file_identity(const struct stat& st) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%" PRIx64 ":%" PRIu64 ":%" PRId64 ":%" PRId64 ".%09ld",
                static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec),
                static_cast<long>(st.st_mtim.tv_nsec));
  return buf;
}

bool process_alive(uint32_t pid) {
  struct stat st;
  return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

std::vector<char> read_process_memory(uint32_t pid, uint64_t addr, uint64_t size) {
  std::vector<char> bytes;
  int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bytes;
  bytes.resize(size);
  ssize_t n = ::pread(fd, bytes.data(), size, static_cast<off_t>(addr));
  ::close(fd);
  if (n != static_cast<ssize_t>(size)) bytes.clear();
  return bytes;
}

}  // namespace

struct Symbolizer::Impl {
  SymbolizerOptions opts;
  mutable std::mutex mu;
  SymbolizerStats stats;

  // Binary cache, LRU (front = most recently used).
  struct BinaryEntry {
    std::shared_ptr<BinaryImage> image;
    std::list<std::string>::iterator lru_pos;
    std::vector<std::string> identities;  // file_index keys that point here
  };
  std::list<std::string> binary_lru;
  std::unordered_map<std::string, BinaryEntry> binaries;       // key: "b:<build-id>" or "f:<identity>"
  std::unordered_map<std::string, std::string> file_index;     // file identity => key

  // Process snapshots, LRU.
  struct ProcessEntry {
    ProcessSnapshot snapshot;
    std::list<uint32_t>::iterator lru_pos;
  };
  std::list<uint32_t> process_lru;
  std::unordered_map<uint32_t, ProcessEntry> processes;

  KernelSymbols kernel;
  bool kernel_loaded = false;

  explicit Impl(SymbolizerOptions o) : opts(std::move(o)) {
    if (opts.max_binaries == 0) opts.max_binaries = 1;
    if (opts.max_processes == 0) opts.max_processes = 1;
  }

  void touch_binary(BinaryEntry& e) { binary_lru.splice(binary_lru.begin(), binary_lru, e.lru_pos); }

  void insert_binary(const std::string& key, const std::string& identity, std::shared_ptr<BinaryImage> image) {
    binary_lru.push_front(key);
    BinaryEntry& e = binaries[key];
    e.image = std::move(image);
    e.lru_pos = binary_lru.begin();
    if (!identity.empty()) {
      e.identities.push_back(identity);
      file_index[identity] = key;
    }
    while (binaries.size() > opts.max_binaries) {
      const std::string victim = binary_lru.back();
      binary_lru.pop_back();
      auto it = binaries.find(victim);
      if (it != binaries.end()) {
        for (const std::string& id : it->second.identities) file_index.erase(id);
        binaries.erase(it);
      }
      ++stats.binary_evictions;
    }
  }

  // The parsed ELF at `open_path` (a path this process can open), cached.
  std::shared_ptr<BinaryImage> get_binary(const std::string& open_path, const DebugSearch& search) {
    struct stat st;
    if (::stat(open_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
    std::string identity = file_identity(st);
    if (auto idx = file_index.find(identity); idx != file_index.end()) {
      if (auto it = binaries.find(idx->second); it != binaries.end()) {
        ++stats.binary_cache_hits;
        touch_binary(it->second);
        return it->second.image;
      }
    }
    // A different file with the same build-id (another container's copy, a
    // hard link, a reinstalled package) is the same binary.
    std::string build_id = read_build_id(open_path);
    std::string key = build_id.empty() ? "f:" + identity : "b:" + build_id;
    if (auto it = binaries.find(key); it != binaries.end()) {
      ++stats.binary_cache_hits;
      touch_binary(it->second);
      it->second.identities.push_back(identity);
      file_index[identity] = key;
      return it->second.image;
    }
    ++stats.binary_cache_misses;
    std::shared_ptr<BinaryImage> image = BinaryImage::open_file(open_path, search, nullptr);
    if (!image) return nullptr;
    // A stripped copy whose debug file was not found must not stand for its
    // build-id: an unstripped copy (or one whose debug file is found later)
    // of the same build would otherwise hit it and lose its names.
    if (!build_id.empty() && !image->has_symtab()) key = "f:" + identity;
    insert_binary(key, identity, image);
    return image;
  }

  std::shared_ptr<BinaryImage> get_vdso(uint32_t pid, const Mapping& m) {
    if (m.end <= m.start || m.end - m.start > kMaxVdsoSize) return nullptr;
    std::vector<char> bytes = read_process_memory(pid, m.start, m.end - m.start);
    if (bytes.empty()) return nullptr;
    // The vdso is the same image in every process of one kernel: key it by
    // its build-id so it is parsed once.
    std::shared_ptr<BinaryImage> image = BinaryImage::open_memory(std::move(bytes), nullptr);
    if (!image) return nullptr;
    std::string key = "vdso:" + image->build_id();
    if (auto it = binaries.find(key); it != binaries.end()) {
      ++stats.binary_cache_hits;
      touch_binary(it->second);
      return it->second.image;
    }
    ++stats.binary_cache_misses;
    insert_binary(key, std::string(), image);
    return image;
  }

  // Chooses the file to read for a mapping of `pid`: the path itself when it
  // is the very file mapped (same inode), else the process's view of it
  // through /proc/PID/root (containers, mount namespaces), else the mapping
  // itself through /proc/PID/map_files (deleted or replaced files).
  std::shared_ptr<BinaryImage> open_mapping(uint32_t pid, const Mapping& m) {
    DebugSearch search;
    search.debug_dirs = opts.debug_dirs;
    search.debuginfod = opts.debuginfod;
    search.original_path = m.path;
    if (!opts.sysroot.empty()) {
      search.root_prefix = opts.sysroot;
      if (auto image = get_binary(opts.sysroot + m.path, search)) return image;
      search.root_prefix.clear();
    }
    auto same_file = [&](const std::string& p) {
      struct stat st;
      return ::stat(p.c_str(), &st) == 0 && (m.inode == 0 || st.st_ino == m.inode);
    };
    if (!m.deleted && same_file(m.path)) return get_binary(m.path, search);
    const std::string root = "/proc/" + std::to_string(pid) + "/root";
    search.root_prefix = root;
    if (!m.deleted && same_file(root + m.path)) return get_binary(root + m.path, search);
    char range[64];
    std::snprintf(range, sizeof range, "/%" PRIx64 "-%" PRIx64, m.start, m.end);
    std::string map_file = "/proc/" + std::to_string(pid) + "/map_files" + range;
    if (same_file(map_file)) return get_binary(map_file, search);
    return nullptr;
  }

  const ProcessSnapshot* take_snapshot(uint32_t pid) {
    std::vector<Mapping> maps = read_proc_maps(pid, /*executable_only=*/true);
    if (maps.empty()) return nullptr;
    // The main executable is named by the path the process ran: maps show
    // the file a symlink resolves to, which names some other program.
    std::string exe_link;
    struct stat exe_st {};
    bool have_exe = ::stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &exe_st) == 0;
    {
      char buf[4096];
      ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
      if (n > 0) exe_link.assign(buf, static_cast<size_t>(n));
      const std::string deleted = " (deleted)";
      if (exe_link.ends_with(deleted)) exe_link.resize(exe_link.size() - deleted.size());
    }
    std::string invoked = exe_link.empty() ? std::string() : process_invoked_path(pid);
    ProcessSnapshot snap;
    snap.taken = std::chrono::steady_clock::now();
    std::unordered_map<std::string, std::shared_ptr<BinaryImage>> opened;  // one open per file
    for (const Mapping& m : maps) {
      MappedRange r;
      r.start = m.start;
      r.end = m.end;
      r.file_offset = m.file_offset;
      if (m.path.empty()) {
        r.module = "[anon]";
      } else if (m.path == "[vdso]") {
        r.module = m.path;
        r.image = get_vdso(pid, m);
      } else if (m.path[0] == '[') {
        r.module = m.path;  // [vsyscall], [uprobes], ...
      } else {
        r.module = m.path;
        r.mapped_path = m.path;
        bool same_file = have_exe && m.inode != 0 && m.inode == exe_st.st_ino &&
                         m.dev_major == major(exe_st.st_dev) && m.dev_minor == minor(exe_st.st_dev);
        if ((!exe_link.empty() && m.path == exe_link) || same_file) {
          r.main_executable = true;
          if (!invoked.empty()) r.module = invoked;
        }
        std::string file_key = m.path + (m.deleted ? " (deleted)" : "") + "#" + std::to_string(m.inode);
        auto it = opened.find(file_key);
        if (it == opened.end()) it = opened.emplace(file_key, open_mapping(pid, m)).first;
        r.image = it->second;
      }
      if (r.image) {
        auto slash = r.module.rfind('/');
        r.fde_suffix = " in " + (slash == std::string::npos ? r.module : r.module.substr(slash + 1));
      }
      snap.ranges.push_back(std::move(r));
    }
    std::sort(snap.ranges.begin(), snap.ranges.end(),
              [](const MappedRange& a, const MappedRange& b) { return a.start < b.start; });

    auto existing = processes.find(pid);
    if (existing != processes.end()) {
      existing->second.snapshot = std::move(snap);
      process_lru.splice(process_lru.begin(), process_lru, existing->second.lru_pos);
      return &existing->second.snapshot;
    }
    process_lru.push_front(pid);
    ProcessEntry& e = processes[pid];
    e.snapshot = std::move(snap);
    e.lru_pos = process_lru.begin();
    while (processes.size() > opts.max_processes) {
      uint32_t victim = process_lru.back();
      process_lru.pop_back();
      processes.erase(victim);
      ++stats.process_evictions;
    }
    auto again = processes.find(pid);
    return again == processes.end() ? nullptr : &again->second.snapshot;
  }

  const ProcessSnapshot* snapshot_for(uint32_t pid) {
    auto it = processes.find(pid);
    if (it != processes.end()) {
      process_lru.splice(process_lru.begin(), process_lru, it->second.lru_pos);
      return &it->second.snapshot;
    }
    return take_snapshot(pid);
  }

  void symbolize_one(const MappedRange* range, uint64_t addr, uint64_t lookup_addr, std::vector<Frame>* out) {
    if (!range) {
      Frame f;
      f.module = "[unknown]";
      f.address = addr;
      f.module_offset = addr;
      out->push_back(std::move(f));
      ++stats.unknown_frames;
      return;
    }
    Frame f;
    f.module = range->module;
    f.address = addr;
    f.module_offset = addr - range->start + range->file_offset;
    if (!range->image) {
      out->push_back(std::move(f));
      ++stats.unknown_frames;
      return;
    }
    BinaryImage& image = *range->image;
    uint64_t vaddr = file_offset_to_vaddr(image.load_info(), lookup_addr - range->start + range->file_offset);
    if (lookup_addr != addr && image.go_pclntab()) {
      // Go's saved contexts (g.sched after systemstack) resume at a
      // function's entry: like Go's traceback (frame.pc > f.entry() before
      // it backs up one byte), an address at an entry stays in that function.
      uint64_t exact = file_offset_to_vaddr(image.load_info(), addr - range->start + range->file_offset);
      int64_t fn = image.go_pclntab()->lookup(exact);
      if (fn >= 0 && image.go_pclntab()->entry(fn) == exact) vaddr = exact;
    }
    int64_t sym = image.lookup(vaddr);
    // In a Go binary the pclntab names every Go function exactly as the
    // runtime and runtime/pprof do (stripped or not, and with the spelling
    // .symtab changes: "writerOnly·1", "[...]"); .symtab names the rest
    // (cgo's C code).
    if (const GoPclntab* go = image.go_pclntab()) {
      if (int64_t fn = go->lookup(vaddr); fn >= 0) f.function = std::string(go->name(fn));
    }
    if (f.function.empty() && sym >= 0) f.function = image.name(sym, opts.demangle);
    if (f.function.empty() && opts.fde_names) {
      if (auto start = image.fde_function(vaddr)) {
        char buf[40];
        int n = std::snprintf(buf, sizeof buf, "func@0x%" PRIx64, *start);
        f.function.reserve(static_cast<size_t>(n) + range->fde_suffix.size());
        f.function.assign(buf, static_cast<size_t>(n));
        f.function += range->fde_suffix;
        ++stats.fde_named_frames;
      }
    }
    if (opts.line_info) {
      const std::vector<SourceFrame>& src = image.source_frames(vaddr);
      for (const SourceFrame& s : src) {
        if (!s.inlined) {
          f.file = s.file;
          f.line = s.line;
          continue;
        }
        Frame inl;
        inl.function = s.function;
        inl.module = f.module;
        inl.address = addr;
        inl.module_offset = f.module_offset;
        inl.file = s.file;
        inl.line = s.line;
        inl.inlined = true;
        out->push_back(std::move(inl));
      }
    }
    if (f.function.empty())
      ++stats.unknown_frames;
    else
      ++stats.resolved_frames;
    out->push_back(std::move(f));
  }
};

Symbolizer::Symbolizer(SymbolizerOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Symbolizer::~Symbolizer() = default;

bool Symbolizer::snapshot_process(uint32_t pid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->take_snapshot(pid) != nullptr;
}

void Symbolizer::forget_process(uint32_t pid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->processes.find(pid);
  if (it == impl_->processes.end()) return;
  impl_->process_lru.erase(it->second.lru_pos);
  impl_->processes.erase(it);
}

std::vector<Frame> Symbolizer::symbolize_user(uint32_t pid, const std::vector<uint64_t>& addrs,
                                              bool leaf_is_exact_ip) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<Frame> out;
  out.reserve(addrs.size());
  const ProcessSnapshot* snap = impl_->snapshot_for(pid);
  bool refreshed = false;
  for (size_t i = 0; i < addrs.size(); ++i) {
    uint64_t addr = addrs[i];
    // Return addresses point after the call; the call itself (addr-1) is in
    // the caller even when the call was the function's last instruction.
    uint64_t lookup_addr = (i == 0 && leaf_is_exact_ip) || addr == 0 ? addr : addr - 1;
    const MappedRange* range = snap ? snap->find(lookup_addr) : nullptr;
    if (!range && !refreshed && (!snap || std::chrono::steady_clock::now() - snap->taken > kMinRefreshInterval) &&
        process_alive(pid)) {
      // Probably mapped after the snapshot (dlopen, JIT): re-read once per call.
      refreshed = true;
      snap = impl_->take_snapshot(pid);
      range = snap ? snap->find(lookup_addr) : nullptr;
    }
    impl_->symbolize_one(range, addr, lookup_addr, &out);
  }
  return out;
}

std::vector<ProfileMapping> Symbolizer::process_mappings(uint32_t pid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ProfileMapping> out;
  const ProcessSnapshot* snap = impl_->snapshot_for(pid);
  if (!snap) return out;
  for (const MappedRange& r : snap->ranges) {
    if (r.module.empty() || r.module[0] == '[') continue;
    ProfileMapping m;
    m.pid = pid;
    m.start = r.start;
    m.limit = r.end;
    m.file_offset = r.file_offset;
    m.path = r.module;
    if (r.mapped_path != r.module) m.resolved_path = r.mapped_path;
    if (r.image) m.build_id = r.image->build_id();
    m.main_executable = r.main_executable;
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

std::string read_proc_file(uint32_t pid, const char* name) {
  std::string out;
  int fd = ::open(("/proc/" + std::to_string(pid) + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < (1u << 20)) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string lexically_clean(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

}  // namespace

std::string process_invoked_path(uint32_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  char buf[4096];
  ssize_t n = ::readlink((proc + "/exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string exe(buf, static_cast<size_t>(n));
  const std::string deleted = " (deleted)";
  if (exe.ends_with(deleted)) exe.resize(exe.size() - deleted.size());
  struct stat exe_st {};
  if (::stat((proc + "/exe").c_str(), &exe_st) != 0) return exe;
  std::string cmdline = read_proc_file(pid, "cmdline");
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  if (argv0.empty()) return exe;
  std::vector<std::string> candidates;
  if (argv0.find('/') != std::string::npos) {
    if (argv0[0] == '/') {
      candidates.push_back(argv0);
    } else {
      n = ::readlink((proc + "/cwd").c_str(), buf, sizeof buf - 1);
      if (n > 0) candidates.push_back(std::string(buf, static_cast<size_t>(n)) + "/" + argv0);
    }
  } else {
    // execvp searched the process's PATH.
    std::string env = read_proc_file(pid, "environ"), path = "/usr/local/bin:/usr/bin:/bin";
    for (size_t i = 0; i < env.size();) {
      size_t end = env.find('\0', i);
      if (end == std::string::npos) end = env.size();
      if (env.compare(i, 5, "PATH=") == 0) path = env.substr(i + 5, end - i - 5);
      i = end + 1;
    }
    for (size_t i = 0; i <= path.size();) {
      size_t end = path.find(':', i);
      if (end == std::string::npos) end = path.size();
      std::string dir = path.substr(i, end - i);
      if (!dir.empty() && dir[0] == '/') candidates.push_back(dir + "/" + argv0);
      i = end + 1;
    }
  }
  for (const std::string& c : candidates) {
    std::string clean = lexically_clean(c);
    struct stat st {};
    // Through the process's root: it may live in another mount namespace.
    if (::stat((proc + "/root" + clean).c_str(), &st) == 0 && st.st_dev == exe_st.st_dev && st.st_ino == exe_st.st_ino)
      return clean;
  }
  return exe;
}

namespace {
std::string read_kptr_restrict() {
  FILE* f = std::fopen("/proc/sys/kernel/kptr_restrict", "r");
  if (!f) return "?";
  char buf[16] = {0};
  if (!std::fgets(buf, sizeof(buf), f)) buf[0] = 0;
  std::fclose(f);
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "?" : s;
}
}  // namespace

std::vector<Frame> Symbolizer::symbolize_kernel(const std::vector<uint64_t>& addrs, bool leaf_is_exact_ip) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->kernel_loaded) {
    impl_->kernel_loaded = true;
    // Without CAP_SYSLOG /proc/kallsyms reads as all-zero addresses (whatever
    // kptr_restrict says): every kernel frame would be a bare address. Say so
    // once instead of printing them silently.
    if (!impl_->kernel.load_from_proc() && !addrs.empty())
      TP_LOG_WARN("kernel frames are shown as addresses: /proc/kallsyms has no usable addresses (kptr_restrict=%s); "
                  "hint: grant CAP_SYSLOG (deploy/capabilities.txt)",
                  read_kptr_restrict().c_str());
  }
  std::vector<Frame> out;
  out.reserve(addrs.size());
  for (size_t i = 0; i < addrs.size(); ++i) {
    uint64_t addr = addrs[i];
    uint64_t lookup_addr = (i == 0 && leaf_is_exact_ip) || addr == 0 ? addr : addr - 1;
    Frame f;
    f.kernel = true;
    f.address = addr;
    KernelSymbols::Hit hit;
    if (impl_->kernel.lookup(lookup_addr, &hit)) {
      f.function = std::string(hit.prefix) + hit.name;
      f.module = *hit.module ? "[" + std::string(hit.module) + "]" : "[kernel]";
      f.module_offset = addr - hit.symbol_address;
      ++impl_->stats.resolved_frames;
    } else {
      f.module = "[kernel]";
      ++impl_->stats.unknown_frames;
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<uint64_t> Symbolizer::find_symbol_address(const std::string& elf_path, const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  DebugSearch search;
  search.debug_dirs = impl_->opts.debug_dirs;
  search.debuginfod = impl_->opts.debuginfod;
  search.original_path = elf_path;
  search.root_prefix = impl_->opts.sysroot;
  auto image = impl_->get_binary(impl_->opts.sysroot + elf_path, search);
  if (!image) return std::nullopt;
  return image->find(name);
}

SymbolizerStats Symbolizer::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SymbolizerStats s = impl_->stats;
  s.binaries_cached = impl_->binaries.size();
  s.processes_cached = impl_->processes.size();
  return s;
}

}  // namespace tickprobe
