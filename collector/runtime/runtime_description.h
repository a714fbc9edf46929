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
//
// Instead of {"probe": ...}, an event may name a function:
//   {"symbol": "runtime.newproc1", "at": "ret", "id": "*(rax+152)"}
// ("at": "entry" (default), "ret", or "call:FUNC" = before every direct
// call of FUNC inside the function; "id": an argument expression, see
// ArgExpr). Unknown keys anywhere are an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

// An argument of a function probe: a register, or the 64-bit word at
// register + offset ("rax", "*(rax+152)", "*(r14+152)" = the current
// goroutine's id in Go 1.19 ABIInternal code).
struct ArgExpr {
  int reg = -1;  // RT_REG_* (bpf/include/runtime.h), -1: none
  bool deref = false;
  int32_t offset = 0;
  bool present() const { return reg >= 0; }
  std::string describe() const;
};
// "rax" | "*(REG)" | "*(REG+N)" | "*(REG-N)"; N decimal or 0x-hex, |N| < 2^19.
Result<ArgExpr> parse_arg_expr(const std::string& text);

// Where an event fires: a USDT probe (provider:name, arguments by position),
// or a plain function symbol (at its entry, or at each of its RET
// instructions: never a uretprobe, which crashes Go programs), whose id
// comes from an argument expression.
struct UsdtProbeRef {
  std::string provider;
  std::string name;
  int id_arg = -1;    // coroutine id, or tick number
  int name_arg = -1;  // coroutine name (const char*)
  std::vector<std::string> args;  // captured arguments, by position (pauses)
  // Function probes (name empty):
  std::string symbol;  // e.g. "runtime.newproc1"
  bool at_return = false;  // at every RET instead of the entry
  std::string at_call;     // or: at every direct call of this function inside `symbol`
  ArgExpr id;          // coroutine id (function probes)
  bool is_function() const { return !symbol.empty(); }
  bool present() const { return !name.empty() || !symbol.empty(); }
  std::string describe() const {
    if (!is_function()) return provider + ":" + name;
    return symbol + (at_return ? "@ret" : !at_call.empty() ? "@call:" + at_call : "@entry");
  }
};

struct PauseDescription {
  std::string kind;  // "gc", "arena", ...: the `kind` label
  UsdtProbeRef begin, end;
  // The pause stops every thread (Go's stop-the-world): it counts in every
  // goroutine tick frame of the process, whichever thread ran it
  // ("stops_world": true; function probes only).
  bool stops_world = false;
};

struct RuntimeDescription {
  std::string name;
  std::string binary;  // optional: the ELF carrying the probes (default: the target's executable)
  UsdtProbeRef coro_create, coro_destroy, coro_resume, coro_suspend;
  UsdtProbeRef tick_begin, tick_end;
  // Goroutine ticks ("tick": {"goroutine": "*(r14+152)", "park": {...}}):
  // the tick function's frames are keyed by this expression (the goroutine
  // id) instead of the thread, and the goroutine's parks (gopark entry ->
  // RET; "id": the wait reason) split them into blocking (inside the tick
  // body), idle (outside it), stop-the-world and CPU.
  ArgExpr tick_goroutine;
  UsdtProbeRef park_begin, park_end;
  // GC cycles ("gc": {"start": ..., "cycle_end": ...}): a cycle's pause is the
  // stop-the-world time from the first pause after `start` to the end of the
  // pause in which `cycle_end` runs (Go: gcStart, gcMarkTermination).
  UsdtProbeRef gc_start, gc_cycle_end;
  std::vector<PauseDescription> pauses;  // at most RT_MAX_PAUSE_KINDS

  bool has_coroutines() const { return coro_create.present() && coro_destroy.present(); }
  bool has_ticks() const { return tick_begin.present(); }
  bool has_goroutine_ticks() const { return tick_goroutine.present(); }
  bool has_gc_cycles() const { return gc_start.present() && gc_cycle_end.present(); }
};

// tickgame's probes (docs/usdt.md).
RuntimeDescription tickgame_runtime();
// Go (1.19 layout: goid at g+152): goroutines from runtime.newproc1's RETs
// (the new g in RAX) and runtime.goexit0's entry (the dying g in RAX);
// stop-the-world pauses ("stw") from stopTheWorldWithSema's entry to the
// nanotime call in startTheWorldWithSema that Go's PauseNs ends at (two per
// GC cycle, one per ReadMemStats).
RuntimeDescription go_runtime();
// Go's description plus a goroutine tick: frames from each entry of
// `symbol` (e.g. "main.(*Server).tick") to the next on the same goroutine,
// its RETs ending the tick body; `tick_id` (optional) an argument
// expression for the tick number (e.g. "rdi": the 4th integer argument).
Result<RuntimeDescription> with_goroutine_tick(RuntimeDescription d, const std::string& symbol,
                                               const std::string& tick_id = "");
Result<RuntimeDescription> parse_runtime_description(const std::string& json_text);
Result<RuntimeDescription> load_runtime_description(const std::string& path);
// "tickgame" or "go" (built in) or a path to a JSON file.
Result<RuntimeDescription> runtime_description_from_arg(const std::string& arg);

// The attach cookie for a probe (bpf/include/runtime.h RT_COOKIE_*, and
// RT_FN_* for function probes).
uint64_t runtime_cookie(const UsdtProbeRef& p, uint32_t pause_kind = 0, bool stops_world = false);

}  // namespace tickprobe
