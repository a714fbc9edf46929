// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Off-CPU time: at switch-out a target thread's user stack and state are
 * noted; at switch-in the blocked time is added to its (thread, stacks,
 * state) slot if it reaches min_block_ns.
 *
 * Where the cost goes (bpf_stats on a pipe ping-pong, docs/benchmarks.md):
 *  - the user stack must be taken at switch-out, in the blocking thread's
 *    own context, where its user memory is readable (at switch-in `current`
 *    is the previous task). A thread usually blocks where it blocked last
 *    time: the per-thread unwind cache (TP_UNWIND_CACHE, unwind.bpf.h)
 *    reuses the last walk when the registers and every word it read are
 *    unchanged, so most switch-outs cost one bulk read instead of a walk;
 *  - the kernel stack is taken at switch-in, from the switched-out task
 *    (bpf_get_task_stack(next)), and only for blocks that reach
 *    min_block_ns: its frames cannot change while the task is off-CPU, and
 *    short blocks never pay the kernel unwinder;
 *  - the start record is written in place (no hash update or delete per
 *    switch): a consumed record has ts_ns == 0.
 *
 * tp_btf only: CO-RE already requires kernel BTF, so a raw_tp variant
 * could never be the one that runs. */
#define TP_UNWIND_CACHE 1
#include "common.bpf.h"
#include "unwind.bpf.h"
#include "count_slots.bpf.h"
#include "offcpu.h"
#include "task_state.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 min_block_ns = 1000;
const volatile __u64 max_block_ns = ~0ULL;
const volatile __u32 state_mask = OFFCPU_MASK_ALL;
const volatile bool collect_kernel = true;

#ifndef TP_MAX_COUNTS
#define TP_MAX_COUNTS 16384
#endif
#ifndef TP_MAX_THREADS
#define TP_MAX_THREADS 16384
#endif

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_COUNTS);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_value);
};
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct offcpu_start);
} start SEC(".maps");


static __always_inline void add_block(void *map, struct offcpu_key *key, __u64 delta)
{
	struct offcpu_value *v = bpf_map_lookup_elem(map, key), init = {};
	if (!v) {
		init.total_ns = delta;
		init.count = 1;
		init.max_ns = delta;
		if (bpf_map_update_elem(map, key, &init, BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(map, key);
		if (!v) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->total_ns, delta);
	__sync_fetch_and_add(&v->count, 1);
	if (delta > v->max_ns)
		v->max_ns = delta; /* racy max: fine for a statistic */
}

/* The kernel stack of a switched-out task, at its switch-in: the frames
 * cannot change while it is off-CPU, and short blocks never pay for the
 * kernel's unwinder. (A per-thread cache that compared the blocked task's
 * kernel stack words with its last walk's was tried: on a pipe ping-pong
 * stale words below the live frames differ nearly every time, 0.3% hits.) */
static __always_inline __u64 blocked_task_kernel_stack(struct task_struct *task)
{
	struct tp_unwind_scratch *sc = tp_scratch();
	long ret;
	if (!sc)
		return 0;
	ret = bpf_get_task_stack(task, sc->kern.ips, sizeof(sc->kern.ips), 0);
	if (ret <= 0) {
		tp_count_error(TP_ERR_KERNEL_STACK_FAIL);
		return 0;
	}
	sc->kern.len = ret / sizeof(__u64);
	sc->kern.flags = 0;
	return tp_store_stack(&sc->kern, 0x6b65726e656cULL /* "kernel" */);
}

static __always_inline int on_switch(void *ctx, bool preempt, struct task_struct *prev,
				     struct task_struct *next)
{
	__u32 prev_tgid = BPF_CORE_READ(prev, tgid), prev_pid = BPF_CORE_READ(prev, pid);
	__u32 next_tgid = BPF_CORE_READ(next, tgid), next_pid = BPF_CORE_READ(next, pid);
	__u64 now = bpf_ktime_get_ns();

	/* Switch-out: prev is current, so its user memory is readable here. */
	if (prev_pid && tp_is_target(prev_tgid)) {
		__u32 state = preempt ? OFFCPU_RUNNABLE : task_state(prev);
		if (state_mask & (1u << state)) {
			struct offcpu_start *s = bpf_map_lookup_elem(&start, &prev_pid), init = {};
			if (!s) {
				if (bpf_map_update_elem(&start, &prev_pid, &init, BPF_NOEXIST) &&
				    !bpf_map_lookup_elem(&start, &prev_pid)) {
					tp_count_error(TP_ERR_START_FULL);
					goto switch_in;
				}
				s = bpf_map_lookup_elem(&start, &prev_pid);
				if (!s)
					goto switch_in;
			}
			s->tgid = prev_tgid;
			s->state = state;
			s->flags = 0;
			bpf_get_current_comm(s->comm, sizeof(s->comm));
			s->user_stack = tp_current_user_stack_cached(prev_tgid, prev_pid);
			s->kernel_stack = 0; /* at switch-in, if the block is long enough */
			s->ts_ns = now;      /* last: a record with ts_ns set is complete */
		}
	}

switch_in:
	/* Switch-in: account the time next spent off-CPU. */
	if (next_pid && tp_is_target(next_tgid)) {
		struct offcpu_start *s = bpf_map_lookup_elem(&start, &next_pid);
		struct offcpu_key key = {};
		__u64 delta, ts;
		if (!s)
			return 0;
		ts = s->ts_ns;
		if (!ts || ts > now)
			return 0;
		s->ts_ns = 0; /* consumed */
		delta = now - ts;
		if (delta >= min_block_ns && delta <= max_block_ns) {
			key.tgid = s->tgid;
			key.pid = next_pid;
			key.user_stack = s->user_stack;
			key.kernel_stack = s->kernel_stack;
			if (collect_kernel && !key.kernel_stack && !(s->flags & OFFCPU_START_SEEDED))
				key.kernel_stack = blocked_task_kernel_stack(next);
			key.state = s->state;
			__builtin_memcpy(key.comm, s->comm, sizeof(key.comm));
			__s32 slot = tp_slot_enter();
			if (slot == 1)
				add_block(&counts_1, &key, delta);
			else if (slot == 0)
				add_block(&counts_0, &key, delta);
			tp_slot_exit(slot);
		}
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, preempt, prev, next);
}

/* The thread dump at start (struct offcpu_thread_dump): user space sets
 * iter_tgid, then reads one record per thread of that process. */
__u32 iter_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_thread_dump);
} dump_scratch SEC(".maps");

SEC("iter/task")
int dump_threads(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct offcpu_thread_dump *d;
	struct pt_regs *regs;
	__u32 zero = 0;
	long n;

	if (!task || task->tgid != iter_tgid || !iter_tgid)
		return 0;
	d = bpf_map_lookup_elem(&dump_scratch, &zero);
	if (!d)
		return 0;
	d->tid = task->pid;
	d->tgid = task->tgid;
	d->state = task_state(task);
	d->switches = task->nvcsw + task->nivcsw;
	BPF_CORE_READ_STR_INTO(&d->comm, task, comm);
	/* A task blocked in a syscall: its user registers at syscall entry. */
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	d->ip = regs ? BPF_CORE_READ(regs, ip) : 0;
	d->sp = regs ? BPF_CORE_READ(regs, sp) : 0;
	d->bp = regs ? BPF_CORE_READ(regs, bp) : 0;
	n = bpf_get_task_stack(task, d->kstack, sizeof(d->kstack), 0);
	d->kstack_len = n > 0 ? n / sizeof(__u64) : 0;
	bpf_seq_write(seq, d, sizeof(*d));
	return 0;
}

/* Threads that exit while switched out leave no stale start records. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_thread_exit, struct task_struct *task)
{
	__u32 pid = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&start, &pid);
	return 0;
}
