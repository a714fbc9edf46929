// The family registry: one line per family. Each family's header declares
// `FamilySpec <name>_family_spec();` (see core/family.h).
#include "core/family.h"

#define TP_FAMILY(name) ::tickprobe::FamilySpec name##_family_spec();
#include "probes/families.def"
#undef TP_FAMILY

namespace tickprobe {

const std::vector<FamilySpec>& family_registry() {
  static const std::vector<FamilySpec> registry = {
#define TP_FAMILY(name) ::name##_family_spec(),
#include "probes/families.def"
#undef TP_FAMILY
  };
  return registry;
}

}  // namespace tickprobe
