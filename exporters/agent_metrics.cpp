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

void add_hist(MetricFamily& f, MetricLabels labels, const LatencyHistogram& h) {
  MetricSample s;
  s.labels = std::move(labels);
  s.histogram = HistogramData::with_bounds(latency_bucket_bounds_seconds());
  double prev = 0;
  const auto& bounds = s.histogram.upper_bounds;
  for (size_t i = 0; i < bounds.size(); i++) {
    double below = h.count_below(bounds[i] * 1e9);
    s.histogram.bucket_counts[i] = static_cast<uint64_t>(below - prev + 0.5);
    prev = below;
  }
  double total = static_cast<double>(h.count());
  s.histogram.bucket_counts[bounds.size()] = total > prev ? static_cast<uint64_t>(total - prev + 0.5) : 0;
  s.histogram.sum = static_cast<double>(h.sum()) / 1e9;
  f.samples.push_back(std::move(s));
}

// Game-runtime families: coroutines, ticks, pauses, hitches, leak suspects.
void runtime_metrics(const AgentStats& st, MetricsSnapshot& out) {
  auto live = family("tickprobe_coroutines_live",
                     "Coroutines alive now among those created (or first resumed) since tickprobe attached.",
                     MetricType::kGauge);
  auto created = family("tickprobe_coroutines_created_total", "Coroutines created since tickprobe attached.",
                        MetricType::kCounter);
  auto destroyed = family("tickprobe_coroutines_destroyed_total",
                          "Coroutines destroyed since tickprobe attached (including ones created before).",
                          MetricType::kCounter);
  auto lifetime = family("tickprobe_coroutine_lifetime_seconds", "Lifetime of destroyed coroutines (create to destroy).",
                         MetricType::kHistogram);
  auto tick = family("tickprobe_tick_duration_seconds", "Tick duration (tick begin to tick end).",
                     MetricType::kHistogram);
  auto frame = family("tickprobe_tick_interval_seconds", "Time from one tick begin to the next (the tick's frame).",
                      MetricType::kHistogram);
  auto pause = family("tickprobe_pause_seconds", "Runtime pauses (GC, arena resets, ...) by kind.",
                      MetricType::kHistogram);
  auto budget = family("tickprobe_tick_budget_seconds",
                       "Tick budget used for hitch detection (given, or inferred from the tick rate).",
                       MetricType::kGauge);
  auto ticks = family("tickprobe_ticks_total", "Tick frames observed.", MetricType::kCounter);
  auto hitches = family("tickprobe_hitches_total",
                        "Ticks whose frame ran over budget, by dominant cause (gc, arena, cpu, socket_write, "
                        "runqueue, lock, ...).",
                        MetricType::kCounter);
  auto heap = family("tickprobe_heap_outstanding_bytes",
                     "Heap bytes allocated since tickprobe attached and not freed (with --leaks).", MetricType::kGauge);
  auto suspects = family("tickprobe_leak_suspects", "Allocation stacks whose outstanding bytes grow steadily.",
                         MetricType::kGauge);
  auto sbytes = family("tickprobe_leak_suspect_bytes", "Outstanding bytes of a leak-suspect stack, by allocation site.",
                       MetricType::kGauge);
  auto srate = family("tickprobe_leak_suspect_growth_bytes_per_second",
                      "Growth rate of a leak-suspect stack, by allocation site.", MetricType::kGauge);
  for (const auto& t : st.targets) {
    if (!t.runtime) continue;
    const RuntimeTargetStats& r = *t.runtime;
    MetricLabels l{{"pid", std::to_string(t.pid)}, {"comm", t.comm}};
    if (r.has_coroutines) {
      add(live, l, static_cast<double>(r.coroutines.live()));
      add(created, l, static_cast<double>(r.coroutines.created));
      add(destroyed, l, static_cast<double>(r.coroutines.destroyed + r.coroutines.destroyed_untracked));
    }
    for (const auto& [series, h] : r.histograms) {
      if (series == "coro_lifetime") add_hist(lifetime, l, h);
      else if (series == "tick") add_hist(tick, l, h);
      else if (series == "frame") add_hist(frame, l, h);
      else if (series.rfind("pause:", 0) == 0 || series == "gc_cycle") {
        // gc_cycle: the stop-the-world time of one whole GC cycle (Go).
        MetricLabels lk = l;
        lk["kind"] = series == "gc_cycle" ? series : series.substr(6);
        add_hist(pause, lk, h);
      }
    }
    if (r.frames) {
      add(ticks, l, static_cast<double>(r.frames));
      add(budget, l, static_cast<double>(r.budget_ns) / 1e9);
      for (const char* cause : {"gc", "cpu"}) {  // always present, so rate() works from the start
        MetricLabels lc = l;
        lc["cause"] = cause;
        auto it = r.hitches_by_cause.find(cause);
        add(hitches, lc, it == r.hitches_by_cause.end() ? 0.0 : static_cast<double>(it->second));
      }
      for (const auto& [cause, n] : r.hitches_by_cause) {
        if (cause == "gc" || cause == "cpu") continue;
        MetricLabels lc = l;
        lc["cause"] = cause;
        add(hitches, lc, static_cast<double>(n));
      }
    }
    if (r.leaks_enabled) {
      add(heap, l, r.heap_outstanding_bytes);
      add(suspects, l, static_cast<double>(r.leak_suspects.size()));
      for (const auto& ls : r.leak_suspects) {
        MetricLabels lsite = l;
        lsite["site"] = ls.site;
        add(sbytes, lsite, ls.bytes);
        add(srate, lsite, ls.verdict.growth_bytes_per_s);
      }
    }
  }
  auto calls = family("tickprobe_allocator_calls_total", "Allocator calls seen (with --leaks), by kind.",
                      MetricType::kCounter);
  if (auto it = st.family_counters.find("alloc"); it != st.family_counters.end()) {
    add(calls, {{"kind", "alloc"}}, static_cast<double>(it->second[TP_CTR_ALLOC_CALLS]));
    add(calls, {{"kind", "free"}}, static_cast<double>(it->second[TP_CTR_FREE_CALLS]));
  }
  out.push_back(std::move(calls));
  for (auto* f : {&live, &created, &destroyed, &lifetime, &tick, &frame, &pause, &budget, &ticks, &hitches, &heap,
                  &suspects, &sbytes, &srate})
    out.push_back(std::move(*f));
}

}  // namespace

MetricsSnapshot agent_metrics(const AgentStats& st) {
  MetricsSnapshot out;

  auto up = family("tickprobe_uptime_seconds", "Seconds since the agent started.", MetricType::kGauge);
  add(up, {}, st.uptime_seconds);
  out.push_back(up);


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

  // The cardinality bound: per-process series exist for at most
  // max_targets live + max_exited_targets exited processes, each exited one
  // for at most forget_exited_after seconds (docs/metrics.md).
  auto bound = family("tickprobe_tracked_processes_limit",
                      "Most processes with per-process series at once, by state (live: --max-targets; exited: kept "
                      "until --forget-exited-after).",
                      MetricType::kGauge);
  add(bound, {{"state", "live"}}, static_cast<double>(st.max_targets));
  add(bound, {{"state", "exited"}}, static_cast<double>(st.max_exited_targets));
  out.push_back(bound);
  auto tracked = family("tickprobe_tracked_processes", "Processes with per-process series now, by state.",
                        MetricType::kGauge);
  add(tracked, {{"state", "live"}}, static_cast<double>(st.targets_attached));
  add(tracked, {{"state", "exited"}}, static_cast<double>(st.exited_targets));
  out.push_back(tracked);
  auto retention = family("tickprobe_exited_process_retention_seconds",
                          "How long an exited process's series stay before they are dropped.", MetricType::kGauge);
  add(retention, {}, st.forget_exited_after_s);
  out.push_back(retention);
  auto forgotten = family("tickprobe_forgotten_processes_total",
                          "Exited processes whose per-process series were dropped (their counts stay in the "
                          "tickprobe_targets_* totals).",
                          MetricType::kCounter);
  add(forgotten, {}, static_cast<double>(st.forgotten_targets));
  out.push_back(forgotten);
  auto all_ticks = family("tickprobe_targets_ticks_total",
                          "Tick frames of all traced processes together, forgotten ones included.",
                          MetricType::kCounter);
  add(all_ticks, {}, static_cast<double>(st.all_ticks));
  out.push_back(all_ticks);
  auto all_hitches = family("tickprobe_targets_hitches_total",
                            "Hitches of all traced processes together (forgotten ones included), by cause.",
                            MetricType::kCounter);
  for (const char* cause : {"gc", "cpu"})
    if (!st.all_hitches_by_cause.count(cause)) add(all_hitches, {{"cause", cause}}, 0);
  for (const auto& [cause, n] : st.all_hitches_by_cause) add(all_hitches, {{"cause", cause}}, static_cast<double>(n));
  out.push_back(all_hitches);

  // Features lost on some target: never silent (issue 11.3).
  auto af = family("tickprobe_attach_failures_total",
                   "Per-process attaches of a probe family that failed, by family and reason.", MetricType::kCounter);
  for (const auto& [key, n] : st.attach_failures) add(af, {{"family", key.first}, {"reason", key.second}}, static_cast<double>(n));
  out.push_back(af);

  auto logs = family("tickprobe_log_messages_suppressed_total",
                     "Log messages not printed by the rate limit (each call site prints at most 5 lines per 10 s, "
                     "then one summary).",
                     MetricType::kCounter);
  add(logs, {}, static_cast<double>(st.log_messages_suppressed));
  out.push_back(logs);
  auto printed = family("tickprobe_log_lines_total", "Log lines written (summaries included).", MetricType::kCounter);
  add(printed, {}, static_cast<double>(st.log_lines_printed));
  out.push_back(printed);

  auto drains = family("tickprobe_drains_total", "Reads of the in-kernel aggregation maps.", MetricType::kCounter);
  add(drains, {}, static_cast<double>(st.drains));
  out.push_back(drains);

  // Self-accounting, from the one counter table (bpf/include/counters.def):
  // every drop row as a reason (zeros too, so rate() works from the start),
  // the work rows that moved as events.
  auto errs = family("tickprobe_bpf_events_dropped_total",
                     "Events the probe families dropped or degraded, by family and reason (bpf/include/counters.def).",
                     MetricType::kCounter);
  auto work = family("tickprobe_family_events_total", "Work done by the probe families, by family and event.",
                     MetricType::kCounter);
  for (const auto& [fam, counters] : st.family_counters)
    for (const auto& c : counter_table()) {
      uint64_t v = counters.get(c.id);
      if (c.kind == CounterKind::kDrop)
        add(errs, {{"family", fam}, {"reason", c.name}}, static_cast<double>(v));
      else if (v)
        add(work, {{"family", fam}, {"event", c.name}}, static_cast<double>(v));
    }
  out.push_back(errs);
  out.push_back(work);

  // Per-process CPU and off-CPU time and everything else the families
  // export themselves.
  for (const auto& f : st.family_metrics) out.push_back(f);
  runtime_metrics(st, out);

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

std::string agent_health_text(const AgentStats& st) {
  if (st.degraded.empty()) return "ok\n";
  std::string out = "degraded:";
  for (size_t i = 0; i < st.degraded.size(); i++) {
    const std::string& fam = st.degraded[i];
    out += (i ? "; " : " ") + fam + " family not attached (";
    bool first = true;
    for (const auto& [key, n] : st.attach_failures) {
      if (key.first != fam) continue;
      out += (first ? "" : ", ") + key.second + " x" + std::to_string(n);
      first = false;
    }
    out += ")";
  }
  return out + "\n";
}

}  // namespace tickprobe
