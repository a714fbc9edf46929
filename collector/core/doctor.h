// `tickprobe doctor`: what this kernel and this process offer tickprobe.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

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

}  // namespace tickprobe
