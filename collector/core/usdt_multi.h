// USDT probes attached as uprobe_multi links (core/uprobe_multi.h), for the
// BPF side of libbpf's <bpf/usdt.bpf.h> (BPF_USDT, bpf_usdt_arg,
// bpf_usdt_cookie): libbpf 1.1's bpf_program__attach_usdt makes one
// perf-event uprobe per site, whose close costs ~90 ms, serialized.
//
// What libbpf's USDT manager does, done here for one link per probe:
//  - read the probe's sites from the ELF notes (.note.stapsdt, type 3:
//    pc, base, semaphore, provider, name, argument string);
//  - parse each site's x86-64 argument string ("-4@%edi", "8@-8(%rbp)",
//    "4@$5") into a `struct __bpf_usdt_spec` and store it in the object's
//    __bpf_usdt_specs map under a spec id;
//  - attach one uprobe_multi link whose per-site cookie is that spec id
//    (usdt.bpf.h reads it with bpf_get_attach_cookie) and whose per-site
//    reference counter is the semaphore's file offset, so the kernel
//    enables guarded sites as libbpf does.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/result.h"

namespace tickprobe {

// libbpf's ABI of usdt.bpf.h (struct __bpf_usdt_arg_spec / __bpf_usdt_spec),
// which libbpf's own usdt.c mirrors the same way. Its size is checked
// against the map's value size at run time (UsdtSpecTable).
enum UsdtArgType : uint32_t { kUsdtArgConst = 0, kUsdtArgReg = 1, kUsdtArgRegDeref = 2 };
struct UsdtArgSpec {
  uint64_t val_off = 0;  // the constant, or the dereference's offset
  UsdtArgType arg_type = kUsdtArgConst;
  int16_t reg_off = 0;  // offsetof(struct pt_regs, reg)
  bool arg_signed = false;
  int8_t arg_bitshift = 0;  // 64 - 8 * size
};
constexpr int kUsdtMaxArgs = 12;  // BPF_USDT_MAX_ARG_CNT
struct UsdtSpec {
  UsdtArgSpec args[kUsdtMaxArgs] = {};
  uint64_t usdt_cookie = 0;
  int16_t arg_cnt = 0;
  uint8_t pad_[6] = {};
};
static_assert(sizeof(UsdtArgSpec) == 16 && sizeof(UsdtSpec) == 208, "the layout of usdt.bpf.h");

// One site of a USDT probe in an ELF file.
struct UsdtSite {
  std::string provider, name, args;
  uint64_t file_offset = 0;       // of the nop, to uprobe
  uint64_t semaphore_offset = 0;  // file offset of the semaphore, 0: none
};

// Every USDT site of `path` (all providers and names). An error when the
// file cannot be read as ELF; no notes is an empty list.
Result<std::vector<UsdtSite>> read_usdt_sites(const std::string& path);

// One x86-64 argument ("-4@%edi", "8@-8(%rbp)", "8@(%rax)", "-2@$-9").
Result<UsdtArgSpec> parse_usdt_arg(const std::string& arg);
// A site's argument string (space-separated arguments) into a spec.
Result<UsdtSpec> parse_usdt_args(const std::string& args, uint64_t usdt_cookie);

// Spec ids of one object's __bpf_usdt_specs map: equal specs share an id
// (reference-counted), released ids are reused.
class UsdtSpecTable {
 public:
  // Null map or a value size that is not sizeof(UsdtSpec): an error at use.
  explicit UsdtSpecTable(const bpf_map* specs);
  Result<uint32_t> acquire(const UsdtSpec& spec);
  void release(uint32_t id);
  size_t in_use() const { return by_key_.size(); }

 private:
  int fd_ = -1;
  uint32_t capacity_ = 0;
  bool layout_ok_ = false;
  std::map<std::string, std::pair<uint32_t, uint32_t>> by_key_;  // spec bytes -> (id, references)
  std::map<uint32_t, std::string> by_id_;
};

// A probe attached: its link and the spec ids it holds.
struct UsdtMultiAttachment {
  BpfLink link;
  std::vector<uint32_t> spec_ids;
};

// Attaches `prog` (loaded for uprobe_multi, see use_uprobe_multi(obj, true))
// to every site of provider:name in `path`, for process `pid` (<= 0: every
// process that maps it). The error's errno-like code is in `*err`: ENOENT
// when the probe is not in the file.
Result<UsdtMultiAttachment> attach_usdt_multi(const bpf_program* prog, UsdtSpecTable& specs, int pid,
                                              const std::string& path, const std::string& provider,
                                              const std::string& name, uint64_t usdt_cookie, int* err);

}  // namespace tickprobe
