// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* CPU profile: one sample per perf_event tick (cpu-clock or cycles) of a
 * target thread, counted in the kernel per (thread, user stack, kernel stack).
 * Two count maps alternate (active_slot) so user space drains one while the
 * other fills: reads are lossless without per-key delete races. */
#include "common.bpf.h"
#define TP_FRAME_CACHE /* outer frames repeat every sample: bpf/lib/unwind.bpf.h */
#include "unwind.bpf.h"
#include "count_slots.bpf.h"
#include "profile.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool collect_kernel = true;

#ifndef TP_MAX_COUNTS
#define TP_MAX_COUNTS 16384
#endif

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_COUNTS);
	__type(key, struct profile_key);
	__type(value, __u64);
};
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");


static __always_inline void count_sample(void *map, struct profile_key *key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == -17 /* EEXIST */) {
		v = bpf_map_lookup_elem(map, key);
		if (v)
			__sync_fetch_and_add(v, 1);
	} else if (!bpf_map_lookup_elem(map, key)) {
		tp_count_error(TP_ERR_COUNTS_FULL);
	}
}

/* Target samples taken, ever: user space reads it through the mmapped .bss
 * to drain and prune only when the maps could be filling (each sample adds
 * at most one count key and two stacks). */
__u64 samples_taken = 0;

/* The work for a target's sample, out of line: the program itself stays a
 * few instructions (the target test and this call), so the runs on every
 * other process's ticks, nearly all of them and each with cold caches, touch
 * one line of code instead of the start and the far end of a large body. */
static __noinline int tp_profile_sample(struct bpf_perf_event_data *ctx, __u64 id)
{
	__u32 tgid = id >> 32;
	struct profile_key key = {};
	__s32 slot;
	/* perf_event contexts only allow 8-byte loads, so instead of regs.cs use
	 * the address half: x86-64 kernel addresses have the top bit set. */
	bool user_mode = (long)ctx->regs.ip >= 0;

	__sync_fetch_and_add(&samples_taken, 1);
	key.tgid = tgid;
	key.pid = (__u32)id;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	if (user_mode)
		key.user_stack = tp_user_stack(tgid, ctx->regs.ip, ctx->regs.sp, ctx->regs.bp);
	else
		key.user_stack = tp_current_user_stack(tgid);
	if (!user_mode && collect_kernel)
		key.kernel_stack = tp_kernel_stack(ctx);

	slot = tp_slot_enter();
	if (slot == 1)
		count_sample(&counts_1, &key);
	else if (slot == 0)
		count_sample(&counts_0, &key);
	tp_slot_exit(slot);
	return 0;
}

SEC("perf_event")
int handle_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (__builtin_expect(!tp_is_target(id >> 32), 1))
		return 0;
	return tp_profile_sample(ctx, id);
}
