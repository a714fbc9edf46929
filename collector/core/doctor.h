// `tickprobe doctor`: what this kernel and this process offer tickprobe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "unwind/unwind_tables.h"

namespace tickprobe {

struct DoctorCheck {
  std::string name;
  bool ok = false;
  bool required = true;  // tickprobe cannot work without it
  std::string detail;    // what was found
  std::string hint;      // what to do when !ok
};

std::vector<DoctorCheck> run_doctor_checks();

// `tickprobe doctor --pid P`: how well tickprobe can unwind that process,
// binary by binary (CFI rows, rows whose rule the BPF unwinder cannot
// evaluate, frame-pointer walking).
struct DoctorProcess {
  uint32_t pid = 0;
  std::string comm;
  std::vector<UnwindBinaryInfo> binaries;  // in map order
};
Result<DoctorProcess> inspect_process(uint32_t pid);

}  // namespace tickprobe
