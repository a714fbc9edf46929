// `tickprobe doctor`: what this kernel and this process offer tickprobe.
#pragma once

#include <string>
#include <vector>

namespace tickprobe {

struct DoctorCheck {
  std::string name;
  bool ok = false;
  bool required = true;  // tickprobe cannot work without it
  std::string detail;    // what was found
  std::string hint;      // what to do when !ok
};

std::vector<DoctorCheck> run_doctor_checks();

}  // namespace tickprobe
