#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/doctor.h"

namespace tickprobe::cli {

void register_doctor(CLI::App& app, GlobalOptions& g, Action& run) {
  auto* cmd = app.add_subcommand("doctor", "check what this kernel and process offer tickprobe");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "machine-readable output");
  cmd->callback([&run, json] {
    run = [json]() -> Status {
      auto checks = run_doctor_checks();
      bool all_ok = true;
      for (const auto& c : checks)
        if (c.required && !c.ok) all_ok = false;
      if (*json) {
        nlohmann::ordered_json j;
        j["ok"] = all_ok;
        for (const auto& c : checks)
          j["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"required", c.required}, {"detail", c.detail},
                                 {"hint", c.ok ? "" : c.hint}});
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        for (const auto& c : checks) {
          std::printf("%-6s %-38s %s\n", c.ok ? "ok" : (c.required ? "MISSING" : "absent"), c.name.c_str(),
                      c.detail.c_str());
          if (!c.ok && !c.hint.empty()) std::printf("       hint: %s\n", c.hint.c_str());
        }
        std::printf("\n%s\n", all_ok ? "everything tickprobe needs is available"
                                     : "some required features are missing (see hints above)");
      }
      if (!all_ok) return Error("required kernel features are missing", "see the hints above");
      return {};
    };
  });
}

}  // namespace tickprobe::cli
