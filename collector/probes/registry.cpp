// The family registry: one line per family in probes/families.def. Each
// family defines `FamilySpec <name>_family_spec()` in namespace tickprobe
// (collector/probes/<name>.cpp; see core/family.h).
#include "core/family.h"

namespace tickprobe {

#define TP_FAMILY(name) FamilySpec name##_family_spec();
#include "probes/families.def"
#undef TP_FAMILY

const std::vector<FamilySpec>& family_registry() {
  static const std::vector<FamilySpec> registry = {
#define TP_FAMILY(name) name##_family_spec(),
#include "probes/families.def"
#undef TP_FAMILY
  };
  return registry;
}

}  // namespace tickprobe
