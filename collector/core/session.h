// A tracing session: the state every probe family shares — the shared BPF
// maps, the traced processes, their unwind tables, the stack store and the
// symbolizer. Families are created against a Session and read through it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/result.h"
#include "core/retention.h"
#include "core/ring_buffers.h"
#include "core/shared_maps.h"
#include "core/stack_store.h"
#include "symbolize/symbolizer.h"
#include "unwind/unwind_tables.h"

namespace tickprobe {

struct SessionOptions {
  SharedMapSizes map_sizes;
  SymbolizerOptions symbolizer;
  // How long families keep an exited process's per-process state (/metrics).
  RetentionOptions retention;
};

struct SessionStats {
  uint64_t targets = 0;
  uint64_t targets_added = 0;
  uint64_t targets_removed = 0;
  uint64_t target_errors = 0;  // targets that could not be set up
};

class Session {
 public:
  // `initial_targets`: the processes about to be added, so maps sized to
  // need (map_sizes.unwind_rows == 0) fit their binaries.
  static Result<std::unique_ptr<Session>> create(const SessionOptions& opts,
                                                 const std::vector<uint32_t>& initial_targets = {});

  // Starts tracing a process: unwind tables, target map, symbolizer snapshot.
  Status add_target(uint32_t pid);
  // Stops tracing it (after exit). The symbolizer keeps its snapshot.
  void remove_target(uint32_t pid);
  // Re-reads the memory maps of every target (catches dlopen); cheap when
  // nothing changed. Drops targets that are gone. With reread_maps false,
  // only drops the gone ones (one kill(pid, 0) each).
  void refresh_targets(bool reread_maps = true);
  std::set<uint32_t> targets() const;
  // Process name of a (possibly exited) target.
  std::string process_name(uint32_t pid);

  SharedMaps& maps() { return maps_; }
  StackStore& stacks() { return *stacks_; }
  Symbolizer& symbolizer() { return *symbolizer_; }
  UnwindTables& unwind() { return *unwind_; }
  // Every family's ring buffers, polled together by the run loop.
  RingBuffers& ringbufs() { return ringbufs_; }
  SessionStats stats() const;
  const SessionOptions& options() const { return opts_; }

 private:
  Session() = default;
  // Copies targets_ to the programs' one-line filter (mu_ held).
  void publish_target_filter_locked();
  SharedMaps maps_;
  std::unique_ptr<StackStore> stacks_;
  std::unique_ptr<Symbolizer> symbolizer_;
  std::unique_ptr<UnwindTables> unwind_;
  RingBuffers ringbufs_;
  mutable std::mutex mu_;
  std::set<uint32_t> targets_;
  std::map<uint32_t, std::string> names_;
  SessionStats stats_;
  SessionOptions opts_;
};

}  // namespace tickprobe
