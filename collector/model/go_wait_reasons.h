#pragma once
// runtime.waitReason strings of Go 1.19 (runtime2.go waitReasonStrings; the
// numbers used by the hitch breakdown are stable since 1.17). The one copy
// for the hitch analyzer and the goroutine reader (which reads the array
// from the target instead when its .symtab names it).
#include <array>

namespace tickprobe {

inline constexpr std::array<const char*, 27> kGoWaitReasons119 = {
    "",
    "GC assist marking",
    "IO wait",
    "chan receive (nil chan)",
    "chan send (nil chan)",
    "dumping heap",
    "garbage collection",
    "garbage collection scan",
    "panicwait",
    "select",
    "select (no cases)",
    "GC assist wait",
    "GC sweep wait",
    "GC scavenge wait",
    "chan receive",
    "chan send",
    "finalizer wait",
    "force gc (idle)",
    "semacquire",
    "sleep",
    "sync.Cond.Wait",
    "timer goroutine (idle)",
    "trace reader (blocked)",
    "wait for GC cycle",
    "GC worker (idle)",
    "preempted",
    "debug call",
};

}  // namespace tickprobe
