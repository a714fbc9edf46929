// uprobe_multi links (BPF_TRACE_UPROBE_MULTI, Linux 6.6+) through raw
// bpf(2): libbpf 1.1 has no API for them (libbpf 1.3 added one).
//
// Why: a perf-event uprobe (what bpf_program__attach_uprobe_opts makes)
// costs ~90 ms to close and the kernel serializes those closes under its
// event_mutex, so an agent with 20 allocator uprobes needs ~2 s to stop.
// A uprobe_multi link costs one grace period (~40 ms) and closes of several
// links overlap when issued from several threads
// (scripts/bench_uprobe_detach.sh, docs/agent.md "Shutdown").
//
// A program attached this way must be loaded with expected_attach_type
// BPF_TRACE_UPROBE_MULTI (use_uprobe_multi before load) and can then no
// longer be attached as a perf-event uprobe.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/result.h"

namespace tickprobe {

// Probed once: can this kernel load and link a uprobe_multi program?
// (false when TICKPROBE_NO_UPROBE_MULTI=1 is set: the fallback everywhere)
bool uprobe_multi_supported();

// Before load: every uprobe/uretprobe program of `obj` (and, with `usdt`,
// every SEC("usdt") one: attach those with usdt_multi.h) gets
// expected_attach_type BPF_TRACE_UPROBE_MULTI when the kernel has it.
// Returns whether it did (then attach with attach_uprobe_multi).
bool use_uprobe_multi(bpf_object* obj, bool usdt = false);

// Was `prog` loaded for uprobe_multi (by use_uprobe_multi)?
bool loaded_for_uprobe_multi(const bpf_program* prog);

// One link, one site: `retprobe` makes it a return probe. 0, or the errno.
int attach_uprobe_multi(const bpf_program* prog, uint32_t pid, const std::string& path, uint64_t offset,
                        uint64_t cookie, bool retprobe, BpfLink* out);

// One link, many sites of one file: offsets (file offsets), per-site
// cookies (empty: all 0) and per-site reference-counter (USDT semaphore)
// file offsets (empty: none), all of offsets' size. `pid` 0: every process
// that maps `path`. 0, or the errno.
int attach_uprobe_multi(const bpf_program* prog, uint32_t pid, const std::string& path,
                        const std::vector<uint64_t>& offsets, const std::vector<uint64_t>& cookies,
                        const std::vector<uint64_t>& ref_ctr_offsets, bool retprobe, BpfLink* out);

// Detaches the links a skeleton attached (bpf_object__attach_skeleton)
// from several threads; the skeleton's destroy then finds none.
void detach_skeleton_concurrently(bpf_object_skeleton* s);

// Destroys links from several threads, so that the kernel's detach waits
// overlap (uprobe_multi); returns when all are gone.
// With `fds`, each link's perf event (fds[i] after links[i]) is closed by
// the same thread: a sampling perf event with a BPF program costs ~75 ms to
// close here (measured in the agent's shutdown), and those closes overlap too.
void destroy_links_concurrently(std::vector<BpfLink>& links, std::vector<UniqueFd>* fds = nullptr);

}  // namespace tickprobe
