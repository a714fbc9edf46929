#include "agent_metrics.h"

#include <string>

namespace tickprobe {
namespace {

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, MetricLabels labels, double value) {
  MetricSample s;
  s.labels = std::move(labels);
  s.value = value;
  f.samples.push_back(std::move(s));
}

}  // namespace

MetricsSnapshot agent_metrics(const AgentStats& st) {
  MetricsSnapshot out;

  auto up = family("tickprobe_uptime_seconds", "Seconds since the agent started.", MetricType::kGauge);
  add(up, {}, st.uptime_seconds);
  out.push_back(up);

  auto info = family("tickprobe_cpu_sampling_info", "CPU sampling setup (value is always 1).", MetricType::kGauge);
  add(info, {{"event", st.cpu_event}, {"frequency_hz", std::to_string(st.cpu_frequency)}}, 1);
  out.push_back(info);

  auto targets = family("tickprobe_targets", "Processes currently traced.", MetricType::kGauge);
  add(targets, {}, static_cast<double>(st.targets_attached));
  out.push_back(targets);
  auto added = family("tickprobe_targets_attached_total", "Processes the agent started tracing.",
                      MetricType::kCounter);
  add(added, {}, static_cast<double>(st.targets_added));
  out.push_back(added);
  auto removed = family("tickprobe_targets_detached_total", "Traced processes that exited or changed image.",
                        MetricType::kCounter);
  add(removed, {}, static_cast<double>(st.targets_removed));
  out.push_back(removed);
  auto terr = family("tickprobe_target_errors_total", "Matching processes that could not be traced.",
                     MetricType::kCounter);
  add(terr, {}, static_cast<double>(st.target_errors));
  out.push_back(terr);

  auto samples = family("tickprobe_cpu_samples_total", "CPU samples taken of traced threads.", MetricType::kCounter);
  add(samples, {}, static_cast<double>(st.cpu_samples));
  out.push_back(samples);
  auto blocks = family("tickprobe_offcpu_blocks_total", "Off-CPU intervals recorded for traced threads.",
                       MetricType::kCounter);
  add(blocks, {}, static_cast<double>(st.offcpu_blocks));
  out.push_back(blocks);
  auto drains = family("tickprobe_drains_total", "Reads of the in-kernel aggregation maps.", MetricType::kCounter);
  add(drains, {}, static_cast<double>(st.drains));
  out.push_back(drains);

  // Self-accounting: every drop or failure the BPF side counted.
  auto errs = family("tickprobe_bpf_events_dropped_total",
                     "Events the BPF programs dropped or degraded, by probe family and reason.", MetricType::kCounter);
  for (const auto& [fam, counters] : st.family_counters)
    for (const auto& [name, v] : counters) {
      if (name == "samples" || name == "blocks" || name == "process_events") continue;
      add(errs, {{"family", fam}, {"reason", name}}, static_cast<double>(v));
    }
  out.push_back(errs);

  auto cpu = family("tickprobe_target_cpu_seconds_total",
                    "CPU time of a traced process, estimated from samples (samples / frequency).",
                    MetricType::kCounter);
  auto off = family("tickprobe_target_offcpu_seconds_total",
                    "Time threads of a traced process spent off-CPU, by thread state (R preempted, S sleeping, D "
                    "uninterruptible).",
                    MetricType::kCounter);
  for (const auto& t : st.targets) {
    MetricLabels l{{"pid", std::to_string(t.pid)}, {"comm", t.comm}};
    add(cpu, l, t.cpu_seconds);
    for (const char* state : {"R", "S", "D", "other"}) {
      auto it = t.offcpu_seconds.find(state);
      MetricLabels ls = l;
      ls["state"] = state;
      add(off, ls, it == t.offcpu_seconds.end() ? 0.0 : it->second);
    }
  }
  out.push_back(cpu);
  out.push_back(off);

  auto sym = family("tickprobe_symbolizer_events_total", "Symbolizer cache and resolution counters.",
                    MetricType::kCounter);
  auto symg = family("tickprobe_symbolizer_cached", "Entries in the symbolizer caches.", MetricType::kGauge);
  for (const auto& [k, v] : st.symbolizer) {
    if (k == "binaries_cached" || k == "processes_cached")
      add(symg, {{"cache", k.substr(0, k.find('_'))}}, static_cast<double>(v));
    else
      add(sym, {{"event", k}}, static_cast<double>(v));
  }
  out.push_back(sym);
  out.push_back(symg);

  auto uw = family("tickprobe_unwind_table_rows", "CFI unwind table rows loaded into the kernel, and capacity.",
                   MetricType::kGauge);
  auto uwb = family("tickprobe_unwind_table_binaries", "Binaries with a CFI unwind table loaded.",
                    MetricType::kGauge);
  auto uwd = family("tickprobe_unwind_rows_dropped_total", "Unwind rows that did not fit (those binaries fall "
                    "back to frame pointers).", MetricType::kCounter);
  for (const auto& [k, v] : st.unwind) {
    if (k == "rows_used") add(uw, {{"kind", "used"}}, static_cast<double>(v));
    if (k == "rows_capacity") add(uw, {{"kind", "capacity"}}, static_cast<double>(v));
    if (k == "binaries") add(uwb, {}, static_cast<double>(v));
    if (k == "rows_dropped") add(uwd, {}, static_cast<double>(v));
  }
  out.push_back(uw);
  out.push_back(uwb);
  out.push_back(uwd);

  auto stk = family("tickprobe_stack_store_events_total", "Stack store lookups, misses and prunes.",
                    MetricType::kCounter);
  for (const auto& [k, v] : st.stacks) add(stk, {{"event", k}}, static_cast<double>(v));
  out.push_back(stk);

  auto rss = family("process_resident_memory_bytes", "Resident memory of the agent process.", MetricType::kGauge);
  add(rss, {}, static_cast<double>(st.self_rss_bytes));
  out.push_back(rss);
  auto pcpu = family("process_cpu_seconds_total", "CPU time of the agent process.", MetricType::kCounter);
  add(pcpu, {}, st.self_cpu_seconds);
  out.push_back(pcpu);

  auto mem = family("tickprobe_bpf_map_bytes", "Kernel memory held by tickprobe's BPF maps.", MetricType::kGauge);
  add(mem, {}, static_cast<double>(st.bpf_map_bytes));
  out.push_back(mem);
  return out;
}

}  // namespace tickprobe
