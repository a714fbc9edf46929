#include "probes/alloc.h"

#include "core/uprobe_multi.h"

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "core/map_read.h"
#include "core/log.h"
#include "core/session.h"
#include "targets/target_spec.h"
#include "bpf/include/alloc.h"
#include "alloc.skel.h"
#include "runtime/function_sites.h"
#include "core/uprobe_site.h"
#include "unwind/go_layout.h"
#include "symbolize/elf_info.h"
#include "symbolize/link_order.h"

#include <fcntl.h>

namespace tickprobe {

namespace {

}  // namespace

Result<std::unique_ptr<AllocProbe>> AllocProbe::create(Session& session, const AllocOptions& opts) {
  std::unique_ptr<AllocProbe> p(new AllocProbe(session, opts));
  alloc_bpf* skel = alloc_bpf__open();
  if (!skel) return Error::from_errno("failed to open the alloc BPF object", errno);
  p->skel_ = skel;
  skel->rodata->sample_bytes = opts.sample_bytes;
  skel->rodata->track_mmap = opts.track_mmap;
  skel->rodata->glibc_chunks = opts.allocator_prefix.empty();
  bpf_map__set_max_entries(skel->maps.allocs, opts.max_tracked);
  bpf_map__set_max_entries(skel->maps.stack_totals, opts.max_stacks);
  for (bpf_program* prog : {skel->progs.alloc_mmap_enter, skel->progs.alloc_mmap_exit, skel->progs.alloc_munmap_enter})
    bpf_program__set_autoload(prog, opts.track_mmap);
  if (auto st = session.maps().reuse_in(skel->obj); !st) return st.error();
  // uprobe_multi links where the kernel has them: each detach then costs
  // one grace period and detaches overlap (core/uprobe_multi.h).
  bool multi = use_uprobe_multi(skel->obj);
  TP_LOG_DEBUG("alloc: %s", multi ? "uprobe_multi links" : "perf-event uprobes (no uprobe_multi)");
  if (int err = alloc_bpf__load(skel))
    return Error::from_errno("failed to load the alloc BPF program", err,
                             "run `tickprobe doctor`; rerun with -v for the verifier log");
  for (bpf_program* prog : {skel->progs.alloc_mmap_enter, skel->progs.alloc_mmap_exit, skel->progs.alloc_munmap_enter,
                            skel->progs.alloc_thread_exit}) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* l = bpf_program__attach(prog);
    if (!l)
      return Error::from_errno(std::string("failed to attach ") + bpf_program__name(prog), errno,
                               "is tracefs mounted? run `tickprobe doctor`");
    p->global_links_.emplace_back(l);
  }
  return p;
}

AllocProbe::~AllocProbe() {
  release_links();
  if (skel_) alloc_bpf__destroy(skel_);
}

void AllocProbe::release_links() {
  std::vector<BpfLink> all;
  for (auto& [pid, links] : links_)
    for (auto& l : links) all.push_back(std::move(l));
  for (auto& l : global_links_) all.push_back(std::move(l));
  links_.clear();
  global_links_.clear();
  destroy_links_concurrently(all);
}

namespace {
// One uprobe: a uprobe_multi link when the program was loaded for them
// (use_uprobe_multi), else a perf-event uprobe. 0 or an errno.
int attach_site(bpf_program* prog, uint32_t pid, const std::string& path, uint64_t off, uint64_t cookie, bool ret,
                std::vector<BpfLink>& out) {
  if (loaded_for_uprobe_multi(prog)) {
    BpfLink l;
    int err = attach_uprobe_multi(prog, pid, path, off, cookie, ret, &l);
    if (!err) out.push_back(std::move(l));
    return err;
  }
  LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie, .retprobe = ret);
  bpf_link* l = bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), path.c_str(), off, &uo);
  if (!l) return errno;
  out.emplace_back(l);
  return 0;
}
}  // namespace

// Go's heap: the runtime's own sampled memory profile (bpf/alloc.bpf.c).
// Go allocates outside malloc, so the allocator probes would see nothing.
Result<AllocAttachReport> AllocProbe::attach_go(uint32_t pid, const std::string& exe) {
  AllocAttachReport rep;
  rep.allocator_object = process_exe(pid);
  std::vector<BpfLink> links;
  for (auto [symbol, prog] : {std::pair{"runtime.mProf_Malloc", skel_->progs.alloc_go_sampled},
                              std::pair{"runtime.freeSpecial", skel_->progs.alloc_go_free_special}}) {
    auto sites = find_function_sites(exe, symbol);
    if (!sites)
      return Error("cannot find " + std::string(symbol) + " in Go program " + rep.allocator_object + ": " +
                       sites.error().message,
                   "tickprobe reads Go's heap through its sampled memory profile (Go 1.17+)");
    if (int err = attach_site(prog, pid, exe, sites->entry_offset, 0, false, links))
      return Error::from_errno("cannot attach a uprobe to " + std::string(symbol) + " in " + rep.allocator_object,
                               err, uprobe_attach_hint(err));
    rep.attached.push_back(std::string(symbol) + " in " + rep.allocator_object);
    rep.attachments.push_back({symbol, rep.allocator_object, "Go runtime (sampled heap profile)", false});
  }
  // The runtime samples one allocation per MemProfileRate bytes (default
  // 512 KiB) as the BPF side would: the values are scaled by
  // options().sample_bytes, which the hunts set to that rate for a Go
  // target. One probe serves many processes in the agent, so it is not
  // changed here: a different setting mis-scales this process (warned).
  if (opts_.sample_bytes != kGoMemProfileRate)
    TP_LOG_WARN(
        "Go process %u: its heap samples are scaled by %llu bytes, not Go's MemProfileRate (%llu); pass "
        "--sample-bytes %llu",
        pid, static_cast<unsigned long long>(opts_.sample_bytes), static_cast<unsigned long long>(kGoMemProfileRate),
        static_cast<unsigned long long>(kGoMemProfileRate));
  auto& slot = links_[pid];
  for (auto& l : links) slot.push_back(std::move(l));
  return rep;
}

Result<AllocAttachReport> AllocProbe::attach_process(uint32_t pid) {
  {
    std::string exe = "/proc/" + std::to_string(pid) + "/exe";
    if (is_go_executable(exe)) return attach_go(pid, exe);
  }
  enum Group { kCore, kStandard, kExtended, kCxx };
  struct EntryPoint {
    const char* name;
    bpf_program* enter;
    bpf_program* exit;  // nullptr: no return probe
    Group group;
  };
  bpf_program* const malloc_in = skel_->progs.malloc_enter;
  bpf_program* const free_in = skel_->progs.free_enter;
  bpf_program* const ret = skel_->progs.alloc_exit;
  // Every entry point whose first argument is the pointer freed is a free;
  // every one whose first argument is the size (operator new, mallocx) a
  // malloc. Aliases (tcmalloc's free = cfree = operator delete) are probed once.
  const EntryPoint points[] = {
      {"malloc", malloc_in, ret, kCore},
      {"free", free_in, nullptr, kCore},
      {"calloc", skel_->progs.calloc_enter, ret, kStandard},
      {"realloc", skel_->progs.realloc_enter, ret, kStandard},
      {"posix_memalign", skel_->progs.posix_memalign_enter, skel_->progs.posix_memalign_exit, kStandard},
      {"aligned_alloc", skel_->progs.memalign_enter, ret, kStandard},
      {"memalign", skel_->progs.memalign_enter, ret, kStandard},
      {"valloc", malloc_in, ret, kStandard},
      {"pvalloc", malloc_in, ret, kStandard},
      {"reallocarray", skel_->progs.reallocarray_enter, ret, kExtended},
      {"cfree", free_in, nullptr, kExtended},
      // Sized and flag-taking frees: jemalloc, tcmalloc, mimalloc, C23.
      {"sdallocx", free_in, nullptr, kExtended},
      {"dallocx", free_in, nullptr, kExtended},
      {"free_sized", free_in, nullptr, kExtended},
      {"free_aligned_sized", free_in, nullptr, kExtended},
      {"tc_free_sized", free_in, nullptr, kExtended},
      {"mi_free_size", free_in, nullptr, kExtended},
      {"mi_free_aligned", free_in, nullptr, kExtended},
      {"mi_free_size_aligned", free_in, nullptr, kExtended},
      // jemalloc's extended API: mallocx(size, flags), rallocx(ptr, size, flags).
      {"mallocx", malloc_in, ret, kExtended},
      {"rallocx", skel_->progs.realloc_enter, ret, kExtended},
      // C++ (only where the allocator itself defines them).
      {"_Znwm", malloc_in, ret, kCxx},
      {"_Znam", malloc_in, ret, kCxx},
      {"_ZnwmRKSt9nothrow_t", malloc_in, ret, kCxx},
      {"_ZnamRKSt9nothrow_t", malloc_in, ret, kCxx},
      {"_ZnwmSt11align_val_t", malloc_in, ret, kCxx},
      {"_ZnamSt11align_val_t", malloc_in, ret, kCxx},
      {"_ZnwmSt11align_val_tRKSt9nothrow_t", malloc_in, ret, kCxx},
      {"_ZnamSt11align_val_tRKSt9nothrow_t", malloc_in, ret, kCxx},
      {"_ZdlPv", free_in, nullptr, kCxx},
      {"_ZdaPv", free_in, nullptr, kCxx},
      {"_ZdlPvm", free_in, nullptr, kCxx},
      {"_ZdaPvm", free_in, nullptr, kCxx},
      {"_ZdlPvRKSt9nothrow_t", free_in, nullptr, kCxx},
      {"_ZdaPvRKSt9nothrow_t", free_in, nullptr, kCxx},
      {"_ZdlPvSt11align_val_t", free_in, nullptr, kCxx},
      {"_ZdaPvSt11align_val_t", free_in, nullptr, kCxx},
      {"_ZdlPvmSt11align_val_t", free_in, nullptr, kCxx},
      {"_ZdaPvmSt11align_val_t", free_in, nullptr, kCxx},
      {"_ZdlPvSt11align_val_tRKSt9nothrow_t", free_in, nullptr, kCxx},
      {"_ZdaPvSt11align_val_tRKSt9nothrow_t", free_in, nullptr, kCxx},
  };
  auto symbol_name = [&](const EntryPoint& ep) {
    return ep.group == kCxx ? std::string(ep.name) : opts_.allocator_prefix + ep.name;
  };

  auto order = process_lookup_order(pid);
  if (!order) return order.error();
  std::string root = "/proc/" + std::to_string(pid) + "/root";
  std::vector<std::string> wanted;
  for (const auto& ep : points) wanted.push_back(symbol_name(ep));
  // Each object's definitions, read once (the executable's .symtab counts:
  // its own calls bind to a statically linked allocator at link time).
  std::map<std::string, std::map<std::string, uint64_t>> defined;
  auto definitions = [&](const LinkOrderEntry& obj) -> const std::map<std::string, uint64_t>& {
    auto it = defined.find(obj.path);
    if (it != defined.end()) return it->second;
    std::string path = access((root + obj.path).c_str(), R_OK) == 0 ? root + obj.path : obj.path;
    return defined[obj.path] = find_defined_functions(path, wanted, obj.reason == "executable");
  };
  auto resolve = [&](const std::string& fname) -> const LinkOrderEntry* {
    // The global scope first; a definition only outside it (an allocator
    // dlopen'ed locally) is the last resort.
    for (const auto& obj : *order)
      if (definitions(obj).count(fname)) return &obj;
    return nullptr;
  };

  // Integer arguments each entry program reads (bpf/alloc.bpf.c).
  auto args_of = [&](bpf_program* prog) -> uint32_t {
    if (prog == skel_->progs.calloc_enter || prog == skel_->progs.realloc_enter || prog == skel_->progs.memalign_enter)
      return 2;
    if (prog == skel_->progs.reallocarray_enter || prog == skel_->progs.posix_memalign_enter) return 3;
    return 1;  // malloc_enter (size), free_enter (ptr)
  };
  // One chooser per object: it reads the object's code once.
  std::map<std::string, std::unique_ptr<UprobeSiteChooser>> choosers;
  auto site_chooser = [&](const std::string& path) -> const UprobeSiteChooser* {
    auto it = choosers.find(path);
    if (it == choosers.end()) {
      auto c = UprobeSiteChooser::open(path);
      if (!c) TP_LOG_DEBUG("alloc: probing entries in %s: %s", path.c_str(), c.error().message.c_str());
      it = choosers.emplace(path, c ? c.take() : nullptr).first;
    }
    return it->second.get();
  };

  AllocAttachReport rep;
  std::vector<BpfLink> links;
  std::set<std::pair<std::string, uint64_t>> attached_at;  // aliases (aligned_alloc = memalign) once
  const LinkOrderEntry* malloc_obj = resolve(symbol_name(points[0]));
  if (malloc_obj) rep.allocator_object = malloc_obj->path;
  for (const auto& ep : points) {
    std::string fname = symbol_name(ep);
    const LinkOrderEntry* obj = resolve(fname);
    if (obj && ep.group == kCxx && obj != malloc_obj) obj = nullptr;  // libstdc++'s: calls malloc
    if (!obj) {
      if (ep.group == kCore || ep.group == kStandard) rep.missing.push_back(fname);
      continue;
    }
    const std::string& bin = obj->path;
    std::string path = access((root + bin).c_str(), R_OK) == 0 ? root + bin : bin;
    uint64_t addr = definitions(*obj).at(fname);
    if (!attached_at.insert({bin, addr}).second) {
      rep.attached.push_back(fname + " (alias) in " + bin);
      rep.attachments.push_back({fname, bin, obj->reason, true, 0, UprobeCost::kSingleStep});
      continue;
    }
    auto info = read_elf_load_info(path);
    std::optional<uint64_t> file_off;
    if (info) file_off = vaddr_to_file_offset(*info, addr);
    if (!file_off) return Error("cannot place a uprobe on " + fname + " in " + bin + ": no segment holds its address");
    // Cookie: the object is glibc, whose chunk headers say the size of a
    // block freed without a tracked allocation.
    uint64_t cookie = 0;
    if (auto dyn = read_dynamic_info(path); dyn && dyn->soname.rfind("libc.so", 0) == 0) cookie |= ALLOC_COOKIE_GLIBC;
    // The cheapest sound instruction for both probes (core/uprobe_site.h):
    // a single-stepped entry costs ~20 us a call, an emulated one ~1 us.
    UprobeSite site;
    if (const UprobeSiteChooser* chooser = site_chooser(path))
      site = chooser->choose(addr, {args_of(ep.enter), ep.exit != nullptr});
    cookie |= site.cookie_bits();
    const uint64_t at = *file_off + site.delta;
    TP_LOG_DEBUG("alloc: %s probed at +%llu (%s, %s; entry %s; %s)", fname.c_str(),
                 static_cast<unsigned long long>(site.delta), site.insn.c_str(), uprobe_cost_name(site.cost),
                 uprobe_cost_name(site.entry_cost), site.limited_by.c_str());
    auto attach = [&](bpf_program* prog, uint64_t off, bool ret) -> Status {
      int err = attach_site(prog, pid, path, off, cookie, ret, links);
      if (!err) return {};
      return Error::from_errno(std::string("cannot attach a ") + (ret ? "uretprobe" : "uprobe") + " to " + fname +
                                   " in " + bin,
                               err, uprobe_attach_hint(err));
    };
    if (auto st = attach(ep.enter, at, false); !st) return st.error();
    // The uretprobe shares the site (the chooser kept the return address at
    // [rsp] there): one trap serves both.
    if (ep.exit)
      if (auto st = attach(ep.exit, at, true); !st) return st.error();
    rep.attached.push_back(fname + " in " + bin);
    rep.attachments.push_back({fname, bin, obj->reason, false, site.delta, site.cost});
    TP_LOG_DEBUG("alloc: %s in %s (%s)", fname.c_str(), bin.c_str(), obj->reason.c_str());
  }
  for (const char* required : {"malloc", "free"}) {
    std::string fname = opts_.allocator_prefix + required;
    for (const auto& m : rep.missing)
      if (m == fname)
        return Error("no mapped binary of process " + std::to_string(pid) + " defines " + fname,
                     opts_.allocator_prefix.empty()
                         ? "is the allocator statically linked and stripped?"
                         : "check --allocator-prefix (e.g. je_ for a prefixed jemalloc build; Debian's jemalloc, "
                           "tcmalloc and mimalloc are unprefixed and need none)");
  }
  auto& slot = links_[pid];
  for (auto& l : links) slot.push_back(std::move(l));
  return rep;
}

void AllocProbe::detach_process(uint32_t pid) {
  auto it = links_.find(pid);
  if (it == links_.end()) return;
  std::vector<BpfLink> links = std::move(it->second);
  links_.erase(it);
  destroy_links_concurrently(links);
}

Status AllocProbe::attach(uint32_t pid) {
  if (links_.count(pid)) return {};
  auto rep = attach_process(pid);
  if (!rep) return rep.error();
  return {};
}

std::map<AllocStackKey, AllocStackTotals> AllocProbe::stack_totals() const {
  std::map<AllocStackKey, AllocStackTotals> out;
  for_each_map_entry<alloc_stack_key, alloc_stack_value>(
      bpf_map__fd(skel_->maps.stack_totals), [&](const alloc_stack_key& k, const alloc_stack_value& v) {
        AllocStackTotals& t = out[{k.tgid, k.kind, k.user_stack}];
        t.outstanding_bytes = v.outstanding_bytes;
        t.outstanding_count = v.outstanding_count;
        t.allocs = v.allocs;
        t.alloc_bytes = v.alloc_bytes;
        t.frees = v.frees;
      });
  return out;
}

std::map<AllocStackKey, AllocAge> AllocProbe::ages(uint32_t tgid) const {
  std::map<AllocStackKey, AllocAge> out;
  int fd = bpf_map__fd(skel_->maps.allocs);
  // Batched reads: one syscall per 4096 allocations instead of two each.
  constexpr uint32_t kBatch = 4096;
  std::vector<alloc_key> keys(kBatch);
  std::vector<alloc_info> vals(kBatch);
  alloc_key in{}, out_key{};
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out_key, keys.data(), vals.data(), &count, nullptr);
    int e = errno;
    for (uint32_t i = 0; i < count; i++) {
      if (tgid && keys[i].tgid != tgid) continue;
      AllocAge& a = out[{keys[i].tgid, vals[i].kind, vals[i].user_stack}];
      if (a.oldest_ns == 0 || vals[i].ts_ns < a.oldest_ns) a.oldest_ns = vals[i].ts_ns;
      a.count++;
      a.bytes += vals[i].size;
    }
    if (err) {
      if (e != ENOENT) TP_LOG_DEBUG("allocs batch read: %s", std::strerror(e));
      break;
    }
    in = out_key;
    first = false;
  }
  return out;
}

std::map<uint64_t, uint64_t> AllocProbe::untracked_frees(uint32_t tgid) const {
  std::map<uint64_t, uint64_t> out;
  for_each_map_entry<alloc_untracked_key, uint64_t>(
      bpf_map__fd(skel_->maps.untracked_frees), [&](const alloc_untracked_key& k, uint64_t n) {
        if (k.tgid == tgid) out[k.chunk_size] += n;
      });
  return out;
}

uint64_t AllocProbe::glibc_chunk_size(uint64_t bytes) {
  uint64_t sz = (bytes + 8 + 15) & ~uint64_t{15};
  return sz < 32 ? 32 : sz;
}

Counters AllocProbe::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  return c;
}

double AllocProbe::estimate_count(double bytes, double count) const {
  if (opts_.sample_bytes == 0 || count <= 0) return count;
  double mean = bytes / count;
  double p = 1.0 - std::exp(-mean / static_cast<double>(opts_.sample_bytes));
  return p > 0 ? count / p : count;
}

double AllocProbe::estimate_bytes(double bytes, double count) const {
  if (opts_.sample_bytes == 0 || count <= 0) return bytes;
  return estimate_count(bytes, count) * (bytes / count);
}

FamilySpec alloc_family_spec() {
  return {"alloc", "allocator calls and outstanding allocations per stack (uprobes; a trap per call)", false,
          {"sample_bytes", "allocator_prefix"},
          [](Session& s, const FamilySettings& set) -> Result<std::unique_ptr<Family>> {
            AllocOptions o;
            auto sb = set.get_u64("sample_bytes", o.sample_bytes, 0, 1ull << 40);
            if (!sb) return sb.error();
            o.sample_bytes = *sb;
            o.allocator_prefix = set.get_string("allocator_prefix", "");
            auto p = AllocProbe::create(s, o);
            if (!p) return p.error();
            return std::unique_ptr<Family>(p.take());
          }};
}

}  // namespace tickprobe
