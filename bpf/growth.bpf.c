// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Growth family (bpf/include/growth.h): memory growth by user stack from
 * first-touch page faults and brk/mmap syscalls of target processes. Nothing
 * runs per malloc; a fault of a non-target costs one hash lookup.
 *
 * Which faults are growth: a write to a page that is not present. That
 * allocates a new anonymous page (private anonymous memory, or the private
 * copy of a file page); a read of untouched anonymous memory maps the
 * shared zero page and a read of a file page is the page cache, neither of
 * which is the process's memory growing. (Writes to a shared file mapping
 * are counted too: rare in servers.) bpf_find_vma would tell anonymous from
 * file mappings exactly, but costs ~13 us a fault here (it takes mmap_lock
 * and defers the unlock to irq_work in this context): 6x the fault itself. */
#include "common.bpf.h"
#include "unwind.bpf.h"
#include "count_slots.bpf.h"
#include "growth.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 fault_sample_every = 1; /* 1 = every fault */
const volatile bool track_faults = true;
const volatile bool track_syscalls = true;

#ifndef TP_MAX_COUNTS
#define TP_MAX_COUNTS 16384
#endif

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_COUNTS);
	__type(key, struct growth_key);
	__type(value, struct growth_value);
};
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");

/* tid -> mm->brk at sys_enter_brk */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} brk_before SEC(".maps");

enum growth_source { GROWTH_FAULT, GROWTH_BRK, GROWTH_MMAP };

static __always_inline void add_growth(__u32 tgid, __u32 pid, __u32 source, __u64 bytes, __u64 weight)
{
	struct growth_key key = {.tgid = tgid, .pid = pid};
	struct growth_value *v, init = {};
	void *map;
	__s32 slot;

	key.user_stack = tp_current_user_stack(tgid);
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	slot = tp_slot_enter();
	if (slot == TP_SLOT_NONE)
		return;
	map = slot == 1 ? (void *)&counts_1 : (void *)&counts_0;
	v = bpf_map_lookup_elem(map, &key);
	if (!v) {
		bpf_map_update_elem(map, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(map, &key);
		if (!v) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			tp_slot_exit(slot);
			return;
		}
	}
	if (source == GROWTH_FAULT) {
		__sync_fetch_and_add(&v->fault_bytes, bytes);
		__sync_fetch_and_add(&v->faults, weight);
	} else if (source == GROWTH_BRK) {
		__sync_fetch_and_add(&v->brk_bytes, bytes);
	} else {
		__sync_fetch_and_add(&v->mmap_bytes, bytes);
	}
	tp_slot_exit(slot);
}

SEC("tracepoint/exceptions/page_fault_user")
int growth_page_fault(struct growth_fault_record *rec)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u64 weight = 1;

	if (!track_faults || !tp_is_target(tgid))
		return 0;
	if (rec->error_code & (GROWTH_PF_PROT | GROWTH_PF_INSTR))
		return 0; /* present page (COW of a page already counted, protection) or code */
	if (!(rec->error_code & GROWTH_PF_WRITE)) {
		tp_count_add(TP_CTR_GROWTH_READ_FAULTS, 1);
		return 0; /* zero page or page cache */
	}
	if (fault_sample_every > 1) {
		if (bpf_get_prandom_u32() % fault_sample_every) {
			tp_count_error(TP_ERR_EVENTS_SAMPLED_OUT);
			return 0;
		}
		weight = fault_sample_every;
	}
	tp_count_add(TP_CTR_GROWTH_FAULTS, 1);
	add_growth(tgid, (__u32)pid_tgid, GROWTH_FAULT, weight * GROWTH_PAGE_SIZE, weight);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int growth_brk_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct task_struct *task;
	__u64 brk;

	if (!tp_is_target(pid_tgid >> 32))
		return 0;
	task = bpf_get_current_task_btf();
	brk = BPF_CORE_READ(task, mm, brk);
	if (bpf_map_update_elem(&brk_before, &tid, &brk, BPF_ANY))
		tp_count_error(TP_ERR_START_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_brk")
int growth_brk_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct task_struct *task;
	__u64 *before, after;

	before = bpf_map_lookup_elem(&brk_before, &tid);
	if (!before)
		return 0;
	task = bpf_get_current_task_btf();
	after = BPF_CORE_READ(task, mm, brk);
	if (after > *before) {
		tp_count_add(TP_CTR_GROWTH_SYSCALLS, 1);
		add_growth(pid_tgid >> 32, tid, GROWTH_BRK, after - *before, 1);
	}
	bpf_map_delete_elem(&brk_before, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int growth_mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!tp_is_target(pid_tgid >> 32))
		return 0;
	if (!(ctx->args[3] & 0x20 /* MAP_ANONYMOUS */) || ctx->args[1] == 0)
		return 0;
	tp_count_add(TP_CTR_GROWTH_SYSCALLS, 1);
	add_growth(pid_tgid >> 32, (__u32)pid_tgid, GROWTH_MMAP, ctx->args[1], 1);
	return 0;
}
