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

// Explicit feature probes (libbpf_probe_bpf_helper) for the BPF helpers the
// families depend on. There are no fallbacks for them: a kernel without one
// gets one clear error at start (require_bpf_features) instead of a
// verifier log.
struct BpfFeature {
  std::string name;
  bool ok = false;
  bool denied = false;  // the probe itself was not permitted
  std::string detail;
  std::string used_for;
  std::string min_kernel;
};
std::vector<BpfFeature> bpf_features();
Status require_bpf_features();

// `tickprobe doctor --pid P`: how well tickprobe can unwind that process,
// binary by binary (CFI rows, rows whose rule the BPF unwinder cannot
// evaluate, frame-pointer walking).
struct DoctorProcess {
  uint32_t pid = 0;
  std::string comm;
  // Can tickprobe reach this process (each with a hint when not): its
  // executable readable, a uprobe creatable on it, its USDT probes, its
  // runtime kind. "not permitted" and "missing" are told apart.
  std::vector<DoctorCheck> checks;
  std::vector<UnwindBinaryInfo> binaries;  // in map order
};
Result<DoctorProcess> inspect_process(uint32_t pid);

}  // namespace tickprobe
