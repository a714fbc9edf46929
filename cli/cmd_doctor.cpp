#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/doctor.h"

namespace tickprobe::cli {
namespace {
// "DENIED" (a capability is missing) is not "MISSING" (the kernel lacks it).
const char* status_word(const DoctorCheck& c, const char* failed) {
  if (c.ok) return "ok";
  if (c.hint.rfind("not permitted", 0) == 0) return "DENIED";
  return c.required ? failed : "absent";
}
}  // namespace

void register_doctor(CLI::App& app, GlobalOptions& g, Action& run) {
  auto* cmd = app.add_subcommand("doctor", "check what this kernel offers tickprobe; with --pid, also how well that process unwinds");
  auto json = std::make_shared<bool>(false);
  auto pid = std::make_shared<uint32_t>(0);
  cmd->add_flag("--json", *json, "machine-readable output");
  cmd->add_option("-p,--pid", *pid,
                  "also check how well this process can be unwound: per mapped binary, CFI rows, rows the BPF "
                  "unwinder cannot evaluate, frame-pointer walking");
  cmd->callback([&run, json, pid] {
    run = [json, pid]() -> Status {
      auto checks = run_doctor_checks();
      std::optional<DoctorProcess> proc;
      if (*pid) {
        auto p = inspect_process(*pid);
        if (!p) return p.error();
        proc = p.take();
      }
      bool all_ok = true;
      for (const auto& c : checks)
        if (c.required && !c.ok) all_ok = false;
      if (proc)
        for (const auto& c : proc->checks)
          if (c.required && !c.ok) all_ok = false;
      if (*json) {
        nlohmann::ordered_json j;
        j["ok"] = all_ok;
        for (const auto& c : checks)
          j["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"required", c.required}, {"detail", c.detail},
                                 {"hint", c.ok ? "" : c.hint}});
        if (proc) {
          nlohmann::ordered_json pj;
          pj["pid"] = proc->pid;
          pj["comm"] = proc->comm;
          for (const auto& c : proc->checks)
            pj["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"required", c.required}, {"detail", c.detail},
                                    {"hint", c.ok ? "" : c.hint}});
          pj["binaries"] = nlohmann::ordered_json::array();
          for (const auto& b : proc->binaries)
            pj["binaries"].push_back({{"path", b.path},
                                      {"cfi_rows", b.rows},
                                      {"unsupported_rows", b.unsupported_rows},
                                      {"deref_rows", b.deref_rows},
                                      {"rbp_expression_rows", b.rbp_unsupported},
                                      {"frame_pointers", b.frame_pointers},
                                      {"debug_frame", b.from_debug_frame},
                                      {"error", b.error}});
          j["process"] = pj;
        }
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        for (const auto& c : checks) {
          std::printf("%-6s %-38s %s\n", status_word(c, "MISSING"), c.name.c_str(), c.detail.c_str());
          if (!c.ok && !c.hint.empty()) std::printf("       hint: %s\n", c.hint.c_str());
        }
        if (proc) {
          std::printf("\nprocess %u (%s):\n", proc->pid, proc->comm.c_str());
          for (const auto& c : proc->checks) {
            std::printf("%-6s %-38s %s\n", status_word(c, "FAILED"), c.name.c_str(), c.detail.c_str());
            if (!c.ok && !c.hint.empty()) std::printf("       hint: %s\n", c.hint.c_str());
          }
        }
        std::printf("\n%s\n", all_ok ? "everything tickprobe needs is available"
                                     : "some required features are missing or not permitted (see hints above)");
        if (proc) {
          std::printf("\nunwinding pid %u (%s):\n", proc->pid, proc->comm.c_str());
          std::printf("  %9s %11s %6s %s\n", "cfi rows", "unsupported", "fp", "binary");
          for (const auto& b : proc->binaries) {
            if (!b.error.empty()) {
              std::printf("  %9s %11s %6s %s (%s)\n", "-", "-", "-", b.path.c_str(), b.error.c_str());
              continue;
            }
            std::printf("  %9zu %11zu %6s %s%s\n", b.rows, b.unsupported_rows, b.frame_pointers ? "yes" : "no",
                        b.path.c_str(), b.rows == 0 ? " (no CFI: frame pointers only)" : "");
          }
          std::printf("  unsupported: CFA rules the BPF unwinder cannot evaluate (it falls back to the frame "
                      "pointer there; counted at run time as unwind_expr_unsupported)\n");
        }
      }
      if (!all_ok) return Error("required features are missing or not permitted", "see the hints above");
      return {};
    };
  });
}

TP_CLI_COMMAND(register_doctor, 10);

}  // namespace tickprobe::cli
