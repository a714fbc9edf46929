// A runtime description: which USDT probes of a program mark coroutine
// create/resume/suspend/destroy, tick begin/end and pause begin/end, and
// where their arguments are. tickgame's is built in; any other runtime that
// publishes USDT probes is described by a small JSON file (docs/runtimes.md):
//
//   {"name": "myengine", "provider": "myengine",
//    "coroutines": {"create":  {"probe": "task_spawn", "id_arg": 0, "name_arg": 1},
//                   "destroy": {"probe": "task_done", "id_arg": 0}},
//    "tick": {"begin": {"probe": "frame_start", "id_arg": 0}, "end": {"probe": "frame_end"}},
//    "pauses": [{"kind": "gc", "begin": {"probe": "gc_start"},
//                "end": {"probe": "gc_done", "args": ["cycle", "marked", "freed"]}}]}
//
// Every section is optional. Argument indexes are 0-based USDT argument
// positions; "args" names up to 3 end arguments (up to 1 begin argument)
// recorded with each pause.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

struct UsdtProbeRef {
  std::string provider;
  std::string name;
  int id_arg = -1;    // coroutine id, or tick number
  int name_arg = -1;  // coroutine name (const char*)
  std::vector<std::string> args;  // captured arguments, by position (pauses)
  bool present() const { return !name.empty(); }
  std::string describe() const { return provider + ":" + name; }
};

struct PauseDescription {
  std::string kind;  // "gc", "arena", ...: the `kind` label
  UsdtProbeRef begin, end;
};

struct RuntimeDescription {
  std::string name;
  std::string binary;  // optional: the ELF carrying the probes (default: the target's executable)
  UsdtProbeRef coro_create, coro_destroy, coro_resume, coro_suspend;
  UsdtProbeRef tick_begin, tick_end;
  std::vector<PauseDescription> pauses;  // at most RT_MAX_PAUSE_KINDS

  bool has_coroutines() const { return coro_create.present() && coro_destroy.present(); }
  bool has_ticks() const { return tick_begin.present(); }
};

// tickgame's probes (docs/usdt.md).
RuntimeDescription tickgame_runtime();
Result<RuntimeDescription> parse_runtime_description(const std::string& json_text);
Result<RuntimeDescription> load_runtime_description(const std::string& path);
// "tickgame" (built in) or a path to a JSON file.
Result<RuntimeDescription> runtime_description_from_arg(const std::string& arg);

// The attach cookie for a probe (bpf/include/runtime.h RT_COOKIE_*).
uint64_t runtime_cookie(const UsdtProbeRef& p, uint32_t pause_kind = 0);

}  // namespace tickprobe
