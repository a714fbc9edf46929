/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* BPF-only helpers shared by every tickprobe family: the target set and the
 * self-accounting counters. */
#ifndef TICKPROBE_COMMON_BPF_H
#define TICKPROBE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "unwind.h"

#ifndef TP_MAX_TARGETS
#define TP_MAX_TARGETS 1024
#endif

/* tgid -> 1 for every traced process. Shared by all families (user space
 * reuses one map fd), so attaching a target is one map update. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

/* The same set as one cache line (struct tp_target_filter), shared too. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tp_target_filter);
} target_filter SEC(".maps");

/* Per-family self-accounting, indexed by enum tp_counter (counters.def). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} errors SEC(".maps");

static __always_inline void tp_count_add(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&errors, &which);
	if (v)
		*v += n; /* per-CPU slot: no atomics needed */
}

static __always_inline void tp_count_error(__u32 which)
{
	tp_count_add(which, 1);
}

static __always_inline bool tp_is_target(__u32 tgid)
{
	__u32 zero = 0, seq, n;
	struct tp_target_filter *f;
	bool found = false;

	if (tgid == 0)
		return false;
	f = bpf_map_lookup_elem(&target_filter, &zero);
	if (f && *(volatile __u32 *)&f->enabled) {
		seq = *(volatile __u32 *)&f->seq;
		n = *(volatile __u32 *)&f->count;
		if (!(seq & 1) && n <= TP_FILTER_TGIDS) {
			for (int i = 0; i < TP_FILTER_TGIDS; i++) {
				if (i < n && *(volatile __u32 *)&f->tgids[i] == tgid)
					found = true;
			}
			/* x86 keeps loads in order: an unchanged even seq means
			 * no rewrite overlapped the reads. */
			if (*(volatile __u32 *)&f->seq == seq)
				return found;
		}
	}
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

#endif /* TICKPROBE_COMMON_BPF_H */
