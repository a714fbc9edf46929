// Symbolizer against real ground truth: functions in this test binary (PIE,
// DWARF), libc (.dynsym only on Debian), the symbolize_fixture programs
// (full, stripped, debug file by build-id and by debuglink), and kallsyms.
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "symbolize/elf_info.h"
#include "symbolize/kernel_symbols.h"
#include "symbolize/symbolizer.h"

extern char** environ;

// The in-binary fixture. Its lines are bracketed by markers so the line-info
// test knows the function's extent.
namespace symtest {
constexpr int kTargetFirstLine = __LINE__ + 2;
template <typename T>
__attribute__((noinline)) T fixture_target(T x) {
  volatile T acc = x;
  for (int i = 0; i < 32; ++i) acc = acc * 5 + static_cast<T>(i);
  return acc;
}
constexpr int kTargetLastLine = __LINE__ - 1;
template int fixture_target<int>(int);

// An always-inlined helper inside a noinline caller: some addresses of the
// caller must expand to an inlined frame for the helper.
constexpr int kHelperFirstLine = __LINE__ + 1;
__attribute__((always_inline)) inline int inlined_helper(int x) {
  volatile int v = x;
  for (int i = 0; i < 8; ++i) v = v * 7 + i;
  return v;
}
constexpr int kHelperLastLine = __LINE__ - 1;
constexpr int kCallLine = __LINE__ + 3;
__attribute__((noinline)) int inline_caller(int x) {
  volatile int before = x + 1;
  int r = inlined_helper(before);
  return r + before;
}
}  // namespace symtest

namespace tickprobe {
namespace {

namespace fs = std::filesystem;

const char kTargetMangled[] = "_ZN7symtest14fixture_targetIiEET_S1_";
const char kTargetDemangled[] = "int symtest::fixture_target<int>(int)";

uint32_t self_pid() { return static_cast<uint32_t>(getpid()); }
uint64_t target_address() { return reinterpret_cast<uint64_t>(&symtest::fixture_target<int>); }

std::string fixture_path(const std::string& name) { return std::string(TICKPROBE_BIN_DIR) + "/" + name; }

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// A running symbolize_fixture: the function addresses it printed, and its
// stdin (closing it makes the child exit).
class FixtureProcess {
 public:
  explicit FixtureProcess(const std::string& exe) : FixtureProcess(std::vector<std::string>{exe}) {}
  explicit FixtureProcess(const std::vector<std::string>& args) {
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in_pipe[0]);
    close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    if (rc != 0) {
      close(out_pipe[0]);
      return;
    }
    pid_ = pid;
    FILE* out = fdopen(out_pipe[0], "r");
    char line[512];
    while (out && fgets(line, sizeof line, out)) {
      std::string s(line);
      if (s.rfind("ready", 0) == 0) break;
      auto tab = s.find('\t');
      if (tab == std::string::npos) continue;
      addresses_[s.substr(0, tab)] = std::stoull(s.substr(tab + 1), nullptr, 16);
    }
    if (out) fclose(out);
  }
  ~FixtureProcess() { stop(); }

  uint32_t pid() const { return static_cast<uint32_t>(pid_); }
  bool ok() const { return pid_ > 0 && addresses_.size() == 4; }
  const std::map<std::string, uint64_t>& addresses() const { return addresses_; }

  // Closes stdin and reaps the child.
  void stop() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::map<std::string, uint64_t> addresses_;
};

// File offset of a runtime address, straight from /proc/PID/maps.
uint64_t expected_file_offset(uint32_t pid, uint64_t addr) {
  for (const Mapping& m : read_proc_maps(pid, false)) {
    if (addr >= m.start && addr < m.end) return addr - m.start + m.file_offset;
  }
  return ~0ull;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tickprobe-symtest-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void copy_file(const std::string& from, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::status(from).permissions());
}

// Build-id as binutils' readelf prints it: independent of our ELF code.
std::string readelf_build_id(const std::string& path) {
  std::string cmd = "readelf -n '" + path + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {};
  char line[512];
  std::string id;
  while (fgets(line, sizeof line, p)) {
    std::string s(line);
    auto pos = s.find("Build ID: ");
    if (pos != std::string::npos) {
      id = s.substr(pos + 10);
      while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    }
  }
  pclose(p);
  return id;
}

// ---------------------------------------------------------------------------

TEST(Demangle, ItaniumNamesAndPassThrough) {
  EXPECT_EQ(demangle(kTargetMangled), kTargetDemangled);
  EXPECT_EQ(demangle("getpid"), "getpid");
  EXPECT_EQ(demangle("_Znot_valid"), "_Znot_valid");
}

TEST(Symbolize, OwnFunctionExactAndReturnAddress) {
  Symbolizer sym;
  uint64_t addr = target_address();
  auto frames = sym.symbolize_user(self_pid(), {addr, addr + 5});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, kTargetDemangled);
  EXPECT_EQ(frames[0].address, addr);
  EXPECT_EQ(frames[0].module, self_exe());
  EXPECT_EQ(frames[1].function, kTargetDemangled);  // looked up at addr+4
  EXPECT_EQ(frames[1].address, addr + 5);            // but reported as given
  EXPECT_EQ(frames[1].module_offset, expected_file_offset(self_pid(), addr + 5));
}

TEST(Symbolize, ReturnAddressAtFunctionStartBelongsToCaller) {
  // A return address equal to a function's first byte means the call was
  // the last instruction of the function before it.
  Symbolizer sym;
  uint64_t addr = target_address();
  auto frames = sym.symbolize_user(self_pid(), {addr, addr});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, kTargetDemangled);
  EXPECT_NE(frames[1].function, kTargetDemangled);
  EXPECT_EQ(frames[1].address, addr);
  // With leaf_is_exact_ip=false the leaf is a return address too.
  auto as_return = sym.symbolize_user(self_pid(), {addr}, /*leaf_is_exact_ip=*/false);
  ASSERT_EQ(as_return.size(), 1u);
  EXPECT_NE(as_return[0].function, kTargetDemangled);
}

TEST(Symbolize, LineInfoForOwnFunction) {
  SymbolizerOptions opts;
  opts.line_info = true;
  Symbolizer sym(opts);
  uint64_t addr = target_address();
  for (uint64_t a : {addr, addr + 5}) {
    auto frames = sym.symbolize_user(self_pid(), {a});
    ASSERT_FALSE(frames.empty());
    const Frame& outer = frames.back();
    EXPECT_FALSE(outer.inlined);
    EXPECT_EQ(outer.function, kTargetDemangled);
    EXPECT_TRUE(outer.file.ends_with("symbolize_test.cpp")) << outer.file;
    EXPECT_GE(outer.line, static_cast<uint32_t>(symtest::kTargetFirstLine));
    EXPECT_LE(outer.line, static_cast<uint32_t>(symtest::kTargetLastLine));
  }
}

TEST(Symbolize, LineInfoExpandsInlinedFrames) {
  SymbolizerOptions opts;
  opts.line_info = true;
  Symbolizer sym(opts);
  uint64_t start = reinterpret_cast<uint64_t>(&symtest::inline_caller);
  bool inlined_seen = false;
  for (uint64_t a = start; a < start + 512; ++a) {
    auto frames = sym.symbolize_user(self_pid(), {a});
    ASSERT_FALSE(frames.empty());
    if (frames.back().function != "symtest::inline_caller(int)") break;  // past the caller's end
    if (frames.size() < 2) continue;
    // Innermost first: the helper (inlined), then the caller at the call site.
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_TRUE(frames[0].inlined);
    EXPECT_EQ(frames[0].function, "symtest::inlined_helper(int)");
    EXPECT_TRUE(frames[0].file.ends_with("symbolize_test.cpp")) << frames[0].file;
    EXPECT_GE(frames[0].line, static_cast<uint32_t>(symtest::kHelperFirstLine));
    EXPECT_LE(frames[0].line, static_cast<uint32_t>(symtest::kHelperLastLine));
    EXPECT_FALSE(frames[1].inlined);
    EXPECT_EQ(frames[1].line, static_cast<uint32_t>(symtest::kCallLine));
    EXPECT_EQ(frames[1].address, a);
    EXPECT_EQ(frames[0].address, a);
    inlined_seen = true;
  }
  EXPECT_TRUE(inlined_seen);
  // Without line_info one frame per address, whatever was inlined.
  Symbolizer plain;
  EXPECT_EQ(plain.symbolize_user(self_pid(), {start + 8}).size(), 1u);
}

TEST(Symbolize, LibcDynsymFunctions) {
  Symbolizer sym;
  void* getpid_addr = dlsym(RTLD_DEFAULT, "getpid");
  void* malloc_addr = dlsym(RTLD_DEFAULT, "malloc");
  ASSERT_NE(getpid_addr, nullptr);
  ASSERT_NE(malloc_addr, nullptr);
  auto frames = sym.symbolize_user(self_pid(), {reinterpret_cast<uint64_t>(getpid_addr),
                                                reinterpret_cast<uint64_t>(malloc_addr) + 4});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "getpid");
  EXPECT_TRUE(frames[0].module.ends_with("libc.so.6")) << frames[0].module;
  EXPECT_EQ(frames[1].function, "malloc");
  EXPECT_TRUE(frames[1].module.ends_with("libc.so.6")) << frames[1].module;
}

TEST(Symbolize, AddressInNoMappingIsUnknown) {
  Symbolizer sym;
  auto frames = sym.symbolize_user(self_pid(), {0x10});
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].function.empty());
  EXPECT_EQ(frames[0].module, "[unknown]");
  EXPECT_EQ(frames[0].display_name(), "[unknown] in [unknown]+0x10");
  EXPECT_EQ(sym.stats().unknown_frames, 1u);
}

TEST(Symbolize, VdsoSymbolsFromProcessMemory) {
  Symbolizer sym;
  std::vector<uint64_t> addrs;
  for (const Mapping& m : read_proc_maps(self_pid())) {
    if (m.path != "[vdso]") continue;
    for (uint64_t a = m.start + 4; a < m.end; a += 4) addrs.push_back(a);  // +4: a-1 stays inside
  }
  ASSERT_FALSE(addrs.empty()) << "no [vdso] mapping (x86-64 Linux always maps one)";
  bool clock_gettime_seen = false;
  for (const Frame& f : sym.symbolize_user(self_pid(), addrs, /*leaf_is_exact_ip=*/false)) {
    EXPECT_EQ(f.module, "[vdso]");
    clock_gettime_seen |= f.function.find("clock_gettime") != std::string::npos;
  }
  EXPECT_TRUE(clock_gettime_seen);
}

// --- fixture programs --------------------------------------------------------

TEST(SymbolizeFixture, FullBinaryResolvesEveryFunction) {
  FixtureProcess child(fixture_path("symbolize_fixture"));
  ASSERT_TRUE(child.ok());
  Symbolizer sym;
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, name);
    EXPECT_EQ(frames[0].module_offset, expected_file_offset(child.pid(), addr));
  }
}

TEST(SymbolizeFixture, ExitedProcessStillSymbolizesFromSnapshot) {
  FixtureProcess child(fixture_path("symbolize_fixture"));
  ASSERT_TRUE(child.ok());
  uint32_t pid = child.pid();
  auto addresses = child.addresses();
  Symbolizer sym;
  ASSERT_TRUE(sym.snapshot_process(pid));
  child.stop();
  ASSERT_NE(kill(static_cast<pid_t>(pid), 0), 0) << "child still running";
  for (const auto& [name, addr] : addresses) {
    auto frames = sym.symbolize_user(pid, {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, name);
  }
  EXPECT_FALSE(sym.snapshot_process(pid));  // gone: a new snapshot fails
}

// No symbol and no debug file: each function is still one frame, named
// after its .eh_frame FDE start, which is the unstripped build's st_value.
TEST(SymbolizeFixture, StrippedBinaryWithoutDebugFileNamesFunctionsByFde) {
  FixtureProcess child(fixture_path("symbolize_fixture_stripped"));
  ASSERT_TRUE(child.ok());
  SymbolizerOptions opts;
  opts.debug_dirs = {};
  opts.debuginfod = false;
  Symbolizer sym(opts);
  Symbolizer truth;  // reads the unstripped build
  for (const auto& [name, addr] : child.addresses()) {
    auto st_value = truth.find_symbol_address(fixture_path("symbolize_fixture"), name);
    ASSERT_TRUE(st_value) << name;
    char expected[128];
    std::snprintf(expected, sizeof expected, "func@0x%llx in symbolize_fixture_stripped",
                  static_cast<unsigned long long>(*st_value));
    // The entry and an address inside the function (a return address into
    // it, looked up at addr-1 as a caller frame) give the same frame.
    auto frames = sym.symbolize_user(child.pid(), {addr, addr + 2}, /*leaf_is_exact_ip=*/true);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].function, expected) << name;
    EXPECT_EQ(frames[1].function, expected) << name;
  }
  EXPECT_EQ(sym.stats().fde_named_frames, 2 * child.addresses().size());
}

TEST(SymbolizeFixture, StrippedBinaryGivesUnknownWithFileOffset) {
  FixtureProcess child(fixture_path("symbolize_fixture_stripped"));
  ASSERT_TRUE(child.ok());
  SymbolizerOptions opts;
  opts.debug_dirs = {};  // no system debug dirs: nothing can be found
  opts.debuginfod = false;
  opts.fde_names = false;  // the FDE fallback has its own test below
  Symbolizer sym(opts);
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_TRUE(frames[0].function.empty()) << frames[0].function;
    uint64_t offset = expected_file_offset(child.pid(), addr);
    EXPECT_EQ(frames[0].module_offset, offset);
    char expected[256];
    std::snprintf(expected, sizeof expected, "[unknown] in symbolize_fixture_stripped+0x%llx",
                  static_cast<unsigned long long>(offset));
    EXPECT_EQ(frames[0].display_name(), expected);
  }
  EXPECT_EQ(sym.stats().unknown_frames, child.addresses().size());

  // The unstripped build (same build-id) must not inherit the stripped
  // copy's cache entry.
  FixtureProcess full(fixture_path("symbolize_fixture"));
  ASSERT_TRUE(full.ok());
  for (const auto& [name, addr] : full.addresses()) {
    auto frames = sym.symbolize_user(full.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, name);
  }
}

TEST(SymbolizeFixture, StrippedBinaryWithDebugFileByBuildId) {
  std::string build_id = readelf_build_id(fixture_path("symbolize_fixture_stripped"));
  ASSERT_GT(build_id.size(), 2u);
  EXPECT_EQ(read_build_id(fixture_path("symbolize_fixture_stripped")), build_id);
  EXPECT_EQ(read_build_id(fixture_path("symbolize_fixture.debug")), build_id);

  TempDir debug_root;
  copy_file(fixture_path("symbolize_fixture.debug"),
            debug_root.path() + "/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug");
  FixtureProcess child(fixture_path("symbolize_fixture_stripped"));
  ASSERT_TRUE(child.ok());
  SymbolizerOptions opts;
  opts.debug_dirs = {debug_root.path()};
  opts.line_info = true;
  Symbolizer sym(opts);
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().function, name);
    EXPECT_TRUE(frames.back().file.ends_with("symbolize_fixture.cpp")) << frames.back().file;
    EXPECT_GT(frames.back().line, 0u);
  }
}

TEST(SymbolizeFixture, StrippedBinaryWithDebugFileByDebuglink) {
  // The linked binary in a temp dir, its debug file in the .debug subdir.
  TempDir dir;
  std::string exe = dir.path() + "/bin/fixture_linked";
  copy_file(fixture_path("symbolize_fixture_linked"), exe);
  copy_file(fixture_path("symbolize_fixture.debug"), dir.path() + "/bin/.debug/symbolize_fixture.debug");
  FixtureProcess child(exe);
  ASSERT_TRUE(child.ok());
  SymbolizerOptions opts;
  opts.debug_dirs = {};
  Symbolizer sym(opts);
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, name);
    EXPECT_EQ(frames[0].module, exe);
  }
}

TEST(SymbolizeFixture, DebuglinkWithWrongCrcIsRejected) {
  TempDir dir;
  std::string exe = dir.path() + "/fixture_linked";
  copy_file(fixture_path("symbolize_fixture_linked"), exe);
  {
    std::ofstream bogus(dir.path() + "/symbolize_fixture.debug");
    bogus << "not the debug file\n";
  }
  FixtureProcess child(exe);
  ASSERT_TRUE(child.ok());
  SymbolizerOptions opts;
  opts.debug_dirs = {};
  opts.debuginfod = false;
  Symbolizer sym(opts);
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    // Not named from the bogus file: only the FDE name remains.
    EXPECT_EQ(frames[0].function.rfind("func@0x", 0), 0u) << frames[0].function;
  }
}

TEST(SymbolizeFixture, DeletedBinaryReadThroughProcFs) {
  // The file is unlinked while it runs: only /proc/PID/map_files has it,
  // and reading that needs CAP_SYS_ADMIN (CAP_CHECKPOINT_RESTORE).
  ASSERT_EQ(geteuid(), 0u) << "needs root for /proc/PID/map_files (tests run as root)";
  TempDir dir;
  std::string exe = dir.path() + "/fixture_deleted";
  copy_file(fixture_path("symbolize_fixture"), exe);
  FixtureProcess child(exe);
  ASSERT_TRUE(child.ok());
  fs::remove(exe);
  Symbolizer sym;
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, name);
    EXPECT_EQ(frames[0].module, exe);
  }
}

TEST(SymbolizeFixture, OtherMountNamespaceReadsThroughProcRoot) {
  // Inside a private mount namespace the path is bind-mounted over by the
  // real fixture; on the host the same path is a different (stripped) file.
  // Reading the host's file would give no names.
  TempDir dir;
  std::string real = dir.path() + "/real";
  std::string path = dir.path() + "/app";
  copy_file(fixture_path("symbolize_fixture"), real);
  copy_file(fixture_path("symbolize_fixture_stripped"), path);
  std::string script = "mount --bind '" + real + "' '" + path + "' && exec '" + path + "'";
  FixtureProcess child({"unshare", "--mount", "--propagation", "private", "sh", "-c", script});
  ASSERT_TRUE(child.ok()) << "cannot make a mount namespace (needs root and unshare)";
  struct stat host_st;
  ASSERT_EQ(stat(path.c_str(), &host_st), 0);
  SymbolizerOptions opts;
  opts.debug_dirs = {};
  Symbolizer sym(opts);
  for (const auto& [name, addr] : child.addresses()) {
    auto frames = sym.symbolize_user(child.pid(), {addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, name);
    EXPECT_EQ(frames[0].module, path);
  }
}

TEST(SymbolizeFixture, FindSymbolAddressMatchesRuntimeLayout) {
  FixtureProcess child(fixture_path("symbolize_fixture"));
  ASSERT_TRUE(child.ok());
  // Load bias of a PIE: the runtime start of the mapping at file offset 0
  // (the first PT_LOAD has p_vaddr 0 and p_offset 0).
  uint64_t base = 0;
  for (const Mapping& m : read_proc_maps(child.pid(), false)) {
    if (m.path == fixture_path("symbolize_fixture") && m.file_offset == 0) {
      base = m.start;
      break;
    }
  }
  ASSERT_NE(base, 0u);
  Symbolizer sym;
  for (const auto& [name, addr] : child.addresses()) {
    auto vaddr = sym.find_symbol_address(fixture_path("symbolize_fixture"), name);
    ASSERT_TRUE(vaddr.has_value()) << name;
    EXPECT_EQ(*vaddr, addr - base) << name;
  }
  auto by_mangled = sym.find_symbol_address(fixture_path("symbolize_fixture"), "_ZN6symfix8run_onceEl");
  ASSERT_TRUE(by_mangled.has_value());
  EXPECT_EQ(*by_mangled, child.addresses().at("symfix::run_once(long)") - base);
  EXPECT_FALSE(sym.find_symbol_address(fixture_path("symbolize_fixture"), "no_such_function").has_value());
  // Stripped binaries still expose their symbols through the debug file.
  auto linked = sym.find_symbol_address(fixture_path("symbolize_fixture_linked"), "symfix::run_once(long)");
  ASSERT_TRUE(linked.has_value());
  EXPECT_EQ(*linked, *by_mangled);
}

TEST(ElfInfo, LoadSegmentsMapFileOffsetsToVaddrs) {
  auto info = read_elf_load_info(fixture_path("symbolize_fixture"));
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->is_pie_or_dso);
  ASSERT_FALSE(info->segments.empty());
  bool has_exec = false;
  for (const PtLoad& seg : info->segments) {
    has_exec |= seg.executable();
    EXPECT_EQ(file_offset_to_vaddr(*info, seg.p_offset), seg.p_vaddr);
    EXPECT_EQ(vaddr_to_file_offset(*info, seg.p_vaddr + 1), seg.p_offset + 1);
  }
  EXPECT_TRUE(has_exec);
  EXPECT_EQ(read_build_id("/nonexistent"), "");
}

TEST(ElfInfo, SeveralExecutableSegmentsEachKeepTheirBias) {
  // A layout like lld's or a hugepage-aligned binary: two executable
  // segments whose vaddr-offset differences are not the same.
  ElfLoadInfo info;
  info.is_pie_or_dso = true;
  info.segments = {{0x0, 0x0, 0x1000, 0x1000, 4},
                   {0x201000, 0x1000, 0x3000, 0x3000, 5},
                   {0x405000, 0x4000, 0x2000, 0x2000, 5},
                   {0x608000, 0x6000, 0x100, 0x900, 6}};
  EXPECT_EQ(file_offset_to_vaddr(info, 0x1234), 0x201234u);
  EXPECT_EQ(file_offset_to_vaddr(info, 0x4010), 0x405010u);
  EXPECT_EQ(file_offset_to_vaddr(info, 0x6200), 0x608200u);  // past p_filesz: still the last segment
  EXPECT_EQ(vaddr_to_file_offset(info, 0x405010), 0x4010u);
  EXPECT_FALSE(vaddr_to_file_offset(info, 0x300000).has_value());
  // Two mappings of the file, as /proc/PID/maps shows them.
  EXPECT_EQ(runtime_to_vaddr(info, 0x7f0000000234, 0x7f0000000000, 0x1000), 0x201234u);
  EXPECT_EQ(runtime_to_vaddr(info, 0x7f0000204010, 0x7f0000204000, 0x4000), 0x405010u);
}

// --- kernel ------------------------------------------------------------------

struct KallsymsEntry {
  uint64_t addr = 0;
  std::string name;
  std::string module;
};

std::optional<KallsymsEntry> find_kallsyms(const std::function<bool(const KallsymsEntry&)>& pred) {
  std::ifstream in("/proc/kallsyms");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    KallsymsEntry e;
    std::string type;
    ls >> std::hex >> e.addr >> type >> e.name;
    if (type != "T" && type != "t") continue;
    std::string mod;
    if (ls >> mod && mod.size() > 2 && mod.front() == '[') e.module = mod.substr(1, mod.size() - 2);
    if (pred(e)) return e;
  }
  return std::nullopt;
}

TEST(SymbolizeKernel, KallsymsSymbolAndInsideIt) {
  auto schedule = find_kallsyms([](const KallsymsEntry& e) { return e.name == "schedule" && e.module.empty(); });
  ASSERT_TRUE(schedule.has_value()) << "no schedule in /proc/kallsyms";
  ASSERT_NE(schedule->addr, 0u) << "kallsyms addresses hidden (needs root)";
  Symbolizer sym;
  auto frames = sym.symbolize_kernel({schedule->addr, schedule->addr + 1}, /*leaf_is_exact_ip=*/true);
  ASSERT_EQ(frames.size(), 2u);
  for (const Frame& f : frames) {
    EXPECT_EQ(f.function, "schedule");
    EXPECT_EQ(f.module, "[kernel]");
    EXPECT_TRUE(f.kernel);
  }
  EXPECT_EQ(frames[1].address, schedule->addr + 1);
  auto inside = sym.symbolize_kernel({schedule->addr + 1});  // as the exact leaf
  ASSERT_EQ(inside.size(), 1u);
  EXPECT_EQ(inside[0].function, "schedule");
  EXPECT_EQ(inside[0].display_name(), "schedule");
}

// Kernels without loaded modules (this project's VMs) have no "[module]"
// lines in /proc/kallsyms, so the module case is checked on kallsyms text
// in the kernel's own format rather than skipped.
TEST(SymbolizeKernel, ModuleSymbolsNameTheirModule) {
  KernelSymbols ks;
  ks.load("ffffffff81000000 T _stext\n"
          "ffffffff81100000 T schedule\n"
          "ffffffffc0a00000 t nf_conntrack_in\t[nf_conntrack]\n"
          "ffffffffc0a00400 T nf_conntrack_find_get\t[nf_conntrack]\n"
          "ffffffffc0b00000 d some_data\t[nf_conntrack]\n");
  KernelSymbols::Hit hit{};
  ASSERT_TRUE(ks.lookup(0xffffffffc0a00010, &hit));
  EXPECT_STREQ(hit.name, "nf_conntrack_in");
  EXPECT_STREQ(hit.module, "nf_conntrack");
  ASSERT_TRUE(ks.lookup(0xffffffff81100008, &hit));
  EXPECT_STREQ(hit.name, "schedule");
  EXPECT_STREQ(hit.module, "");

  // Modules are runs of symbols: the kernel image's symbols after one are
  // the kernel's again.
  ks.load("ffffffff81000000 T _stext\n"
          "ffffffffc0a00000 t nf_conntrack_in\t[nf_conntrack]\n"
          "ffffffffc0b00000 t ext4_lookup\t[ext4]\n"
          "ffffffffc0c00000 T late_kernel_text\n");
  ASSERT_TRUE(ks.lookup(0xffffffffc0a00010, &hit));
  EXPECT_STREQ(hit.module, "nf_conntrack");
  ASSERT_TRUE(ks.lookup(0xffffffffc0b00010, &hit));
  EXPECT_STREQ(hit.module, "ext4");
  ASSERT_TRUE(ks.lookup(0xffffffffc0c00010, &hit));
  EXPECT_STREQ(hit.name, "late_kernel_text");
  EXPECT_STREQ(hit.module, "");
  ASSERT_TRUE(ks.lookup(0xffffffff81000010, &hit));
  EXPECT_STREQ(hit.module, "");

  // And live, when this kernel does have modules loaded.
  auto entry = find_kallsyms([](const KallsymsEntry& e) { return !e.module.empty() && e.addr != 0; });
  if (entry) {
    Symbolizer sym;
    auto frames = sym.symbolize_kernel({entry->addr});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].module, "[" + entry->module + "]");
    EXPECT_FALSE(frames[0].function.empty());
  }
}

// CONFIG_FUNCTION_PADDING kernels name the padding before each function
// "__pfx_NAME"; the table stores NAME once for both and still answers the
// padding's own name.
TEST(SymbolizeKernel, PaddingSymbolsKeepTheirName) {
  KernelSymbols ks;
  ks.load("ffffffff81100000 t __pfx_schedule\n"
          "ffffffff81100010 T schedule\n"
          "ffffffff81100200 t __pfx_io_schedule\n"
          "ffffffff81100210 T io_schedule\n");
  ASSERT_EQ(ks.size(), 4u);
  KernelSymbols::Hit hit{};
  ASSERT_TRUE(ks.lookup(0xffffffff81100004, &hit));
  EXPECT_EQ(std::string(hit.prefix) + hit.name, "__pfx_schedule");
  EXPECT_EQ(hit.symbol_address, 0xffffffff81100000u);
  ASSERT_TRUE(ks.lookup(0xffffffff81100020, &hit));
  EXPECT_EQ(std::string(hit.prefix) + hit.name, "schedule");
  ASSERT_TRUE(ks.lookup(0xffffffff81100210, &hit));
  EXPECT_EQ(std::string(hit.prefix) + hit.name, "io_schedule");
  EXPECT_EQ(hit.symbol_address, 0xffffffff81100210u);

  // Live: a padding symbol of this kernel, when it has them.
  auto entry = find_kallsyms([](const KallsymsEntry& e) { return e.name.rfind("__pfx_", 0) == 0 && e.addr != 0; });
  if (entry) {
    Symbolizer sym;
    auto frames = sym.symbolize_kernel({entry->addr}, /*leaf_is_exact_ip=*/true);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].module_offset, 0u);
    EXPECT_EQ(frames[0].function.rfind("__pfx_", 0), 0u) << frames[0].function;
  }
}

// --- caches ------------------------------------------------------------------

TEST(SymbolizerCache, SecondLookupOfABinaryIsAHit) {
  Symbolizer sym;
  ASSERT_TRUE(sym.find_symbol_address(fixture_path("symbolize_fixture"), "main").has_value());
  auto first = sym.stats();
  EXPECT_EQ(first.binary_cache_misses, 1u);
  EXPECT_EQ(first.binary_cache_hits, 0u);
  ASSERT_TRUE(sym.find_symbol_address(fixture_path("symbolize_fixture"), "main").has_value());
  auto second = sym.stats();
  EXPECT_EQ(second.binary_cache_misses, 1u);
  EXPECT_EQ(second.binary_cache_hits, 1u);
  EXPECT_EQ(second.binaries_cached, 1u);

  // Re-snapshotting a process re-uses its binaries.
  ASSERT_TRUE(sym.snapshot_process(self_pid()));
  auto after_snapshot = sym.stats();
  sym.forget_process(self_pid());
  ASSERT_TRUE(sym.snapshot_process(self_pid()));
  auto again = sym.stats();
  EXPECT_EQ(again.binary_cache_misses, after_snapshot.binary_cache_misses);
  EXPECT_GT(again.binary_cache_hits, after_snapshot.binary_cache_hits);
  EXPECT_EQ(again.processes_cached, 1u);
}

TEST(SymbolizerCache, LruEvictionWithOneBinary) {
  SymbolizerOptions opts;
  opts.max_binaries = 1;
  Symbolizer sym(opts);
  ASSERT_TRUE(sym.find_symbol_address(fixture_path("symbolize_fixture"), "main").has_value());
  ASSERT_TRUE(sym.find_symbol_address(self_exe(), kTargetMangled).has_value());
  auto s = sym.stats();
  EXPECT_EQ(s.binary_evictions, 1u);
  EXPECT_EQ(s.binaries_cached, 1u);
  // The evicted one is parsed again: a miss, and another eviction.
  ASSERT_TRUE(sym.find_symbol_address(fixture_path("symbolize_fixture"), "main").has_value());
  s = sym.stats();
  EXPECT_EQ(s.binary_cache_misses, 3u);
  EXPECT_EQ(s.binary_evictions, 2u);
}

TEST(SymbolizerCache, ProcessSnapshotsAreBounded) {
  SymbolizerOptions opts;
  opts.max_processes = 1;
  Symbolizer sym(opts);
  FixtureProcess a(fixture_path("symbolize_fixture"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(sym.snapshot_process(self_pid()));
  ASSERT_TRUE(sym.snapshot_process(a.pid()));
  auto s = sym.stats();
  EXPECT_EQ(s.processes_cached, 1u);
  EXPECT_EQ(s.process_evictions, 1u);
}

TEST(SymbolizerThreads, ConcurrentCallersGetTheSameAnswers) {
  SymbolizerOptions opts;
  opts.max_binaries = 2;  // force evictions and reloads while others read
  Symbolizer sym(opts);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto frames = sym.symbolize_user(self_pid(), {target_address(), reinterpret_cast<uint64_t>(&getpid)});
        if (frames.size() != 2 || frames[0].function != kTargetDemangled) ++wrong;
        if (t % 2 == 0) sym.forget_process(self_pid());
        if (!sym.find_symbol_address(fixture_path("symbolize_fixture"), "main")) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(SymbolizerStats, CountsResolvedAndUnknown) {
  Symbolizer sym;
  sym.symbolize_user(self_pid(), {target_address(), 0x10});
  auto s = sym.stats();
  EXPECT_EQ(s.resolved_frames, 1u);
  EXPECT_EQ(s.unknown_frames, 1u);
}

}  // namespace
}  // namespace tickprobe
