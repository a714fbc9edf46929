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
 *    short blocks never pay the kernel unwinder. A per-thread kernel-stack
 *    cache (struct offcpu_kcache below) reuses the last walk when every
 *    return address it found is still in its slot, so most blocks cost a
 *    bulk read of the stack instead of an ORC walk;
 *  - tp_btf arguments and bpf_task_pt_regs() are BTF pointers: their
 *    fields are plain loads, not bpf_probe_read_kernel calls (this alone
 *    took ~400 ns off every switch of a target);
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

/* One record per target thread, inserted at its first switch-out, written
 * in place after that and deleted at its exit: not preallocated (memory
 * follows the threads), bounded by --max-threads. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
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
 * kernel's unwinder. */
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

/*
 * Per-thread kernel-stack cache. The kernel's unwinder (ORC) walks a
 * blocked task from its saved stack pointer (thread.sp): each frame's CFA
 * is that frame's sp plus an offset fixed by its ip, and the next ip is
 * the return address just below the CFA. So the walk is fixed by where it
 * starts and by the return addresses it reads, and a walk that finds every
 * one of the last walk's return addresses in the same slot yields the same
 * frames. The miss path walks, then finds each reported return address in
 * the stack (scanning up from thread.sp) and keeps their slots; a hit is a
 * bulk read up to the outermost slot and a compare of those words. Only
 * the slots are compared: the rest of a blocked stack (locals, stale words
 * of deeper earlier calls) changes on nearly every block.
 *
 * Syscalls move the stack by a random amount at every entry
 * (CONFIG_RANDOMIZE_KSTACK_OFFSET: an alloca in do_syscall_64, whose CFA
 * comes from its frame pointer): the frames inside the syscall keep their
 * slots relative to thread.sp, the entry frames above the gap keep theirs
 * relative to the top (pt_regs). An entry starts anchored at thread.sp and
 * at one depth; when the same frames come back at another depth, the split
 * that explains both walks (frames [0, split) at the same distance from
 * thread.sp, [split, n) at the same distance from the top) is learned, and
 * later blocks are checked on both anchors at any depth. Not compared: the
 * saved frame pointers of frames whose CFA comes from one (do_syscall_64
 * and the kernel's few stack-realigning functions). Stacks whose slots are
 * not all found (return addresses rewritten by ftrace/kretprobe
 * trampolines), of more than OFFCPU_KCACHE_FRAMES frames or slots further
 * than OFFCPU_KCACHE_SPAN bytes from their anchor are walked every time
 * (kernel_stack_cache_uncacheable). Ways are picked by the block's user
 * stack, so a thread that blocks at a few places keeps each one's walk.
 */
#define OFFCPU_KCACHE_FRAMES 32
#define OFFCPU_KCACHE_SPAN 4096 /* bytes from an anchor to the furthest slot (power of 2) */
#define OFFCPU_KCACHE_WAYS 4

struct offcpu_kcache_way {
	__u64 stack;      /* the walk's stack hash; 0 = empty */
	__u64 user_stack; /* the tag: the block's user stack */
	__u32 depth;      /* top - thread.sp at the walk (not learned: must match) */
	__u32 nframes;
	__u32 split;      /* frames below it are anchored at thread.sp, the rest at the top */
	__u32 learned;    /* split learned: any depth */
	__u32 span_sp;    /* bytes from thread.sp past the last sp-anchored slot */
	__u32 span_top;   /* bytes from the first top-anchored slot to the top */
	__u16 off[OFFCPU_KCACHE_FRAMES]; /* sp-anchored: slot - thread.sp; top-anchored: top - slot */
	__u64 ip[OFFCPU_KCACHE_FRAMES];
};

struct offcpu_kcache {
	struct offcpu_kcache_way way[OFFCPU_KCACHE_WAYS];
	__u32 next; /* the way the next new user stack replaces */
	__u32 cur;  /* the way picked (read back: see tp_ucache.cur) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct offcpu_kcache);
} kcache SEC(".maps");

struct offcpu_kscratch {
	__u8 buf[OFFCPU_KCACHE_SPAN];     /* from thread.sp up */
	__u8 top[OFFCPU_KCACHE_SPAN];     /* the bytes below the top */
	__u16 off[OFFCPU_KCACHE_FRAMES];  /* the miss path's slots, from thread.sp */
	__u16 old_off[OFFCPU_KCACHE_FRAMES]; /* the way's slots before the miss */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_kscratch);
} kscratch SEC(".maps");

struct kscan_ctx {
	__u32 k;    /* frames found so far */
	__u32 n;    /* frames to find */
	__u32 span; /* bytes of kscratch.buf read */
};

/* bpf_loop step j: is word j (bytes 8j..8j+7 above thread.sp) the next
 * return address? */
static long kscan_step(__u64 j, void *arg)
{
	struct kscan_ctx *c = arg;
	struct offcpu_kscratch *ks;
	struct tp_unwind_scratch *sc = tp_scratch();
	__u32 zero = 0, k = c->k;
	__u64 v;
	ks = bpf_map_lookup_elem(&kscratch, &zero);
	if (!ks || !sc || j * 8 + 8 > c->span || k >= c->n || k >= OFFCPU_KCACHE_FRAMES)
		return 1;
	__builtin_memcpy(&v, &ks->buf[(j * 8) & (OFFCPU_KCACHE_SPAN - 8)], sizeof(v));
	if (v == sc->kern.ips[k & (TP_MAX_FRAMES - 1)]) {
		ks->off[k & (OFFCPU_KCACHE_FRAMES - 1)] = j * 8;
		c->k = k + 1;
	}
	return 0;
}

/* Whether way w still describes the blocked stack at (sp, top). */
static __always_inline bool kcache_valid(struct offcpu_kscratch *ks, struct offcpu_kcache_way *w, __u64 sp,
					 __u64 top)
{
	__u64 n = w->nframes, split = w->split, span_sp = w->span_sp, span_top = w->span_top;
	if (!w->stack || n == 0 || n > OFFCPU_KCACHE_FRAMES || split > n)
		return false;
	if (!w->learned && w->depth != top - sp)
		return false;
	if (split > 0 && (span_sp < 8 || span_sp > OFFCPU_KCACHE_SPAN || sp + span_sp > top ||
			  bpf_probe_read_kernel(ks->buf, span_sp, (void *)sp)))
		return false;
	if (split < n && (span_top < 8 || span_top > OFFCPU_KCACHE_SPAN || top - span_top < sp ||
			  bpf_probe_read_kernel(ks->top, span_top, (void *)(top - span_top))))
		return false;
	for (int i = 0; i < OFFCPU_KCACHE_FRAMES; i++) {
		__u64 v;
		if (i >= n)
			break;
		if (i < split)
			__builtin_memcpy(&v, &ks->buf[w->off[i] & (OFFCPU_KCACHE_SPAN - 8)], sizeof(v));
		else
			__builtin_memcpy(&v, &ks->top[(span_top - w->off[i]) & (OFFCPU_KCACHE_SPAN - 8)], sizeof(v));
		if (v != w->ip[i])
			return false;
	}
	/* The stack must still be stored (user space prunes). */
	return bpf_map_lookup_elem(&stacks, &w->stack) != NULL;
}

struct ksplit_ctx {
	__u64 n;
	__u64 old_depth, depth;
	__u32 split; /* n = not found yet */
	__u32 bad;
};

/* bpf_loop step i of finding the split (see kcache_fill); a callback so
 * that the verifier does not walk the rest of the program once per split. */
static long ksplit_step(__u64 i, void *arg)
{
	struct ksplit_ctx *c = arg;
	struct offcpu_kscratch *ks;
	__u32 zero = 0;
	__u64 o, nw;
	ks = bpf_map_lookup_elem(&kscratch, &zero);
	if (!ks || i >= c->n || i >= OFFCPU_KCACHE_FRAMES)
		return 1;
	o = ks->old_off[i & (OFFCPU_KCACHE_FRAMES - 1)];
	nw = ks->off[i & (OFFCPU_KCACHE_FRAMES - 1)];
	if (c->split == c->n && o != nw)
		c->split = i;
	if (c->split != c->n && c->old_depth - o != c->depth - nw)
		c->bad = 1;
	return 0;
}

/* After a miss: the walk just done (sc->kern, slots in ks->off, at depth)
 * replaces way w. If w held the same frames unlearned at another depth,
 * the split that explains both walks is learned. */
static __always_inline void kcache_fill(struct offcpu_kscratch *ks, struct tp_unwind_scratch *sc,
					struct offcpu_kcache_way *w, __u64 n, __u64 depth, __u64 h,
					__u64 user_stack)
{
	__u64 split = n, i;
	bool same = w->stack == h && !w->learned && w->nframes == n && w->depth != depth;
	if (same) {
		/* split = the first frame not at the same distance from thread.sp;
		 * every frame from there must be at the same distance from the top. */
		struct ksplit_ctx c = {.n = n, .old_depth = w->depth, .depth = depth, .split = n};
		__builtin_memcpy(ks->old_off, w->off, sizeof(ks->old_off));
		bpf_loop(OFFCPU_KCACHE_FRAMES, ksplit_step, &c, 0);
		split = c.split;
		same = split < n && !c.bad;
	}
	if (!same)
		split = n;
	for (i = 0; i < OFFCPU_KCACHE_FRAMES; i++) {
		if (i >= n)
			break;
		w->ip[i] = sc->kern.ips[i];
		w->off[i] = i < split ? ks->off[i] : depth - ks->off[i];
	}
	w->nframes = n;
	w->split = split;
	w->learned = split < n;
	w->depth = depth;
	w->span_sp = split > 0 ? ks->off[(split - 1) & (OFFCPU_KCACHE_FRAMES - 1)] + 8 : 0;
	w->span_top = split < n ? w->off[split & (OFFCPU_KCACHE_FRAMES - 1)] : 0;
	w->user_stack = user_stack;
	w->stack = h;
}

static __always_inline __u64 blocked_task_kernel_stack_cached(struct task_struct *task, __u64 user_stack)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct offcpu_kcache_way *w;
	struct offcpu_kscratch *ks;
	struct tp_unwind_scratch *sc;
	struct offcpu_kcache *kc;
	__u32 zero = 0;
	__u64 depth, n, span; /* 64-bit: the verifier bounds what is passed */
	__u64 sp = task->thread.sp, top = 0, h;

	/* The stack's top is where its pt_regs are; their address as a number
	 * (the verifier does no arithmetic on that pointer). */
	if (!regs || bpf_probe_read_kernel(&top, sizeof(top), &regs))
		return blocked_task_kernel_stack(task);
	ks = bpf_map_lookup_elem(&kscratch, &zero);
	if (!ks || !sp || sp >= top || top - sp > (1u << 20))
		return blocked_task_kernel_stack(task);
	depth = top - sp;
	kc = bpf_task_storage_get(&kcache, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!kc)
		return blocked_task_kernel_stack(task);
	/* Fully associative by user stack: the way that holds this one, else
	 * an empty way, else the ways in turn. */
	__u32 victim = OFFCPU_KCACHE_WAYS, way = OFFCPU_KCACHE_WAYS;
	for (int i = 0; i < OFFCPU_KCACHE_WAYS; i++) {
		if (kc->way[i].stack && kc->way[i].user_stack == user_stack) {
			way = i;
			break;
		}
		if (!kc->way[i].stack && victim == OFFCPU_KCACHE_WAYS)
			victim = i;
	}
	if (way == OFFCPU_KCACHE_WAYS)
		way = victim < OFFCPU_KCACHE_WAYS ? victim : kc->next++;
	kc->cur = way;
	way = *(volatile __u32 *)&kc->cur;
	w = &kc->way[way & (OFFCPU_KCACHE_WAYS - 1)];
	if (w->user_stack == user_stack && kcache_valid(ks, w, sp, top)) {
		tp_count_error(TP_CTR_KSTACK_CACHE_HITS);
		return w->stack;
	}
	h = blocked_task_kernel_stack(task);
	sc = tp_scratch();
	if (!h || !sc)
		return h;
	n = sc->kern.len;
	span = depth < OFFCPU_KCACHE_SPAN ? depth : OFFCPU_KCACHE_SPAN;
	barrier_var(span);
	if (n == 0 || n > OFFCPU_KCACHE_FRAMES || span < 8 || span > OFFCPU_KCACHE_SPAN ||
	    bpf_probe_read_kernel(ks->buf, span, (void *)sp)) {
		tp_count_error(TP_CTR_KSTACK_CACHE_UNCACHEABLE);
		w->stack = 0;
		return h;
	}
	/* Each reported return address, in order, in the first slot above the
	 * previous one's. */
	struct kscan_ctx scan = {.k = 0, .n = n, .span = span};
	bpf_loop(OFFCPU_KCACHE_SPAN / 8, kscan_step, &scan, 0);
	if (scan.k != n) {
		tp_count_error(TP_CTR_KSTACK_CACHE_UNCACHEABLE);
		w->stack = 0;
		return h;
	}
	if (w->user_stack != user_stack)
		w->stack = 0;
	kcache_fill(ks, sc, w, n, depth, h, user_stack);
	return h;
}

static __always_inline int on_switch(void *ctx, bool preempt, struct task_struct *prev,
				     struct task_struct *next)
{
	/* tp_btf arguments are BTF pointers: plain (CO-RE relocated) loads,
	 * not bpf_probe_read_kernel calls, on every context switch. */
	__u32 prev_tgid = prev->tgid, prev_pid = prev->pid;
	__u32 next_tgid = next->tgid, next_pid = next->pid;
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
			/* The key takes the name at switch-in (next->comm); the
			 * record keeps the first one, for blocks still open at the
			 * end (account_still_blocked). */
			if (!s->comm[0])
				bpf_get_current_comm(s->comm, sizeof(s->comm));
			s->user_stack = tp_current_user_stack_cached(prev_tgid);
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
				key.kernel_stack = blocked_task_kernel_stack_cached(next, s->user_stack);
			key.state = s->state;
			__builtin_memcpy(key.comm, next->comm, sizeof(key.comm)); /* BTF loads */
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
