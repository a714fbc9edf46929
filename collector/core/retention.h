// Retention of exited processes' per-process state (see TargetTotals in
// core/stack_family.h): one setting shared by the session's families and the
// agent.
#pragma once

#include <cstddef>

namespace tickprobe {

// How long an exited process's per-process series stay on /metrics
// (`tickprobe agent --forget-exited-after`), and how many exited processes
// are kept at most meanwhile. The cardinality of per-process series is
// bounded by (live targets + max_exited) x series per process.
struct RetentionOptions {
  double forget_exited_after_s = 180;
  size_t max_exited = 64;
};

}  // namespace tickprobe
