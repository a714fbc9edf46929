// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Runtime family: coroutine lifecycles, pauses and tick frames from USDT.
 *
 * One generic program per event type; user space attaches it to whichever
 * probes the runtime description names, with the argument positions and the
 * pause kind in the cookie (bpf/include/runtime.h). The attachment decides
 * the scope (one pid, or every process running a binary), so these programs
 * do not consult the target map.
 *
 * Coroutines are keyed by (tgid, coroutine id), never by thread: a coroutine
 * may be resumed on another thread than the one that created it.
 *
 * Tick frames: a frame runs from one tick begin to the next on the same
 * thread. Within it the program sums pause time per kind (wall time between
 * begin and end), off-CPU time outside pauses per blocking reason (thread
 * state, syscall, fd kind), and the tick's own begin -> end time; the rest
 * of the frame is on-CPU time. Each closed frame of at least
 * frame_event_min_ns goes to user space, which decides which were hitches. */
#include "common.bpf.h"
#include "unwind.bpf.h"
#include "hist.bpf.h"
#include "offcpu.h"
#include "task_state.bpf.h"
#include "runtime.h"
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool coro_stacks = true;  /* unwind at coroutine create */
const volatile bool pause_stacks = true; /* unwind at pause begin */

/* Writable at run time by user space (bss). */
__u64 frame_event_min_ns = 0;
__u64 pause_event_min_ns = 0;
/* Goroutine ticks: where the goroutine id is (an RT_FN cookie's id bits,
 * e.g. *(r14+152) in Go 1.19 ABIInternal code). */
__u64 goroutine_key_cookie = 0;

#ifndef RT_MAX_COROS
#define RT_MAX_COROS 65536
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RT_MAX_COROS);
	__type(key, struct rt_coro_key);
	__type(value, struct rt_coro);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} coros SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct rt_coro_counts);
} coro_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rt_name_key);
	__type(value, struct rt_name_counts);
} coro_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rt_hist_key);
	__type(value, struct tp_hist);
} hists SEC(".maps");

/* Preallocated: updated from sched_switch. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rt_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct rt_gc_state);
} gc_state SEC(".maps");

/* Goroutines with an open tick frame: few (the tick loops). LRU: a tick
 * goroutine that exits mid-frame is evicted in time. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rt_coro_key);
	__type(value, struct rt_gframe);
} gframes SEC(".maps");

/* Zeroed templates for inserts (too big for the BPF stack). */
struct rt_zero {
	struct tp_hist hist;
	struct rt_thread thread;
	struct rt_coro coro;
	struct rt_gframe gframe;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_zero);
} zero SEC(".maps");

static __always_inline struct rt_zero *zeroed(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&zero, &k);
}

static __always_inline void hist_add(__u32 tgid, __u32 kind, __u64 v)
{
	struct rt_hist_key key = {.tgid = tgid, .kind = kind};
	struct tp_hist *h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		struct rt_zero *z = zeroed();
		if (!z)
			return;
		bpf_map_update_elem(&hists, &key, &z->hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			return;
		}
	}
	tp_hist_add(h, v);
}

static __always_inline struct rt_coro_counts *coro_counts_of(__u32 tgid)
{
	struct rt_coro_counts *c = bpf_map_lookup_elem(&coro_counts, &tgid), init = {};
	if (c)
		return c;
	bpf_map_update_elem(&coro_counts, &tgid, &init, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&coro_counts, &tgid);
	if (!c)
		tp_count_error(TP_ERR_COUNTS_FULL);
	return c;
}

static __always_inline struct rt_thread *thread_of(__u32 tid, __u32 tgid, bool create)
{
	struct rt_thread *t = bpf_map_lookup_elem(&threads, &tid);
	struct rt_zero *z;
	if (t || !create)
		return t;
	z = zeroed();
	if (!z)
		return NULL;
	z->thread.tgid = tgid;
	bpf_map_update_elem(&threads, &tid, &z->thread, BPF_NOEXIST);
	z->thread.tgid = 0;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t)
		tp_count_error(TP_ERR_START_FULL);
	return t;
}

static __always_inline __u64 usdt_arg(struct pt_regs *ctx, __u32 idx)
{
	long v = 0;
	if (idx == RT_ARG_NONE)
		return 0;
	bpf_usdt_arg(ctx, idx, &v);
	return (__u64)v;
}

static __always_inline __u64 stack_here(struct pt_regs *ctx, __u32 tgid)
{
	return tp_user_stack(tgid, PT_REGS_IP(ctx), PT_REGS_SP(ctx), PT_REGS_FP(ctx));
}

/* ---------------------------------------------------------- coroutines */

static __always_inline void name_count(__u32 tgid, const char *name, bool created)
{
	struct rt_name_key key = {.tgid = tgid};
	struct rt_name_counts *c, init = {};
	__builtin_memcpy(key.name, name, RT_NAME_LEN);
	c = bpf_map_lookup_elem(&coro_names, &key);
	if (!c) {
		bpf_map_update_elem(&coro_names, &key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&coro_names, &key);
		if (!c) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			return;
		}
	}
	if (created)
		__sync_fetch_and_add(&c->created, 1);
	else
		__sync_fetch_and_add(&c->destroyed, 1);
}

/* Function probes: the id from a register or the word at register + offset. */
/* Offset of a register in pt_regs. Read through a helper: the verifier
 * refuses a load from ctx at a variable offset, which is what a switch of
 * direct ctx loads compiles to. */
static __always_inline __u64 reg_of(struct pt_regs *ctx, __u32 reg)
{
	unsigned long off;
	__u64 v = 0;

	switch (reg) {
	case RT_REG_RAX: off = __builtin_offsetof(struct pt_regs, ax); break;
	case RT_REG_RBX: off = __builtin_offsetof(struct pt_regs, bx); break;
	case RT_REG_RCX: off = __builtin_offsetof(struct pt_regs, cx); break;
	case RT_REG_RDX: off = __builtin_offsetof(struct pt_regs, dx); break;
	case RT_REG_RSI: off = __builtin_offsetof(struct pt_regs, si); break;
	case RT_REG_RDI: off = __builtin_offsetof(struct pt_regs, di); break;
	case RT_REG_RBP: off = __builtin_offsetof(struct pt_regs, bp); break;
	case RT_REG_RSP: off = __builtin_offsetof(struct pt_regs, sp); break;
	case RT_REG_R8: off = __builtin_offsetof(struct pt_regs, r8); break;
	case RT_REG_R9: off = __builtin_offsetof(struct pt_regs, r9); break;
	case RT_REG_R10: off = __builtin_offsetof(struct pt_regs, r10); break;
	case RT_REG_R11: off = __builtin_offsetof(struct pt_regs, r11); break;
	case RT_REG_R12: off = __builtin_offsetof(struct pt_regs, r12); break;
	case RT_REG_R13: off = __builtin_offsetof(struct pt_regs, r13); break;
	case RT_REG_R14: off = __builtin_offsetof(struct pt_regs, r14); break;
	default: off = __builtin_offsetof(struct pt_regs, r15); break;
	}
	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + off);
	return v;
}

static __always_inline __u64 fn_id(struct pt_regs *ctx, __u64 cookie)
{
	__u64 v = 0, base;
	if (!RT_FN_HAS_ID(cookie))
		return 0;
	base = reg_of(ctx, RT_FN_REG(cookie));
	if (!RT_FN_DEREF(cookie))
		return base;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(base + (__s64)RT_FN_OFFSET(cookie))))
		tp_count_error(TP_ERR_ARG_READ_FAULT);
	return v;
}

static __always_inline int coro_create(struct pt_regs *ctx, __u64 id, const char *name_ptr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct rt_coro_key key = {.tgid = tgid, .id = id};
	struct rt_coro_counts *cnt = coro_counts_of(tgid);
	struct rt_zero *z = zeroed();
	struct rt_coro *c;

	if (!z)
		return 0;
	if (cnt)
		__sync_fetch_and_add(&cnt->created, 1);
	c = &z->coro;
	c->birth_ns = bpf_ktime_get_ns();
	c->last_ns = 0;
	c->run_ns = 0;
	c->resumes = 0;
	c->flags = 0;
	c->creator_tid = (__u32)pid_tgid;
	__builtin_memset(c->name, 0, sizeof(c->name));
	if (name_ptr)
		bpf_probe_read_user_str(c->name, sizeof(c->name), name_ptr);
	/* The stack store uses the per-CPU unwind scratch, not z. */
	c->user_stack = coro_stacks ? stack_here(ctx, tgid) : 0;
	if (bpf_map_update_elem(&coros, &key, c, BPF_ANY)) {
		tp_count_error(TP_ERR_TRACK_FULL);
		if (cnt)
			__sync_fetch_and_add(&cnt->untracked, 1);
	}
	name_count(tgid, c->name, true);
	return 0;
}

SEC("usdt")
int rt_coro_create(struct pt_regs *ctx)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u32 name_arg = RT_COOKIE_NAME_ARG(cookie);
	const char *name = name_arg != RT_ARG_NONE ? (const char *)usdt_arg(ctx, name_arg) : NULL;
	return coro_create(ctx, usdt_arg(ctx, RT_COOKIE_ID_ARG(cookie)), name);
}

SEC("uprobe")
int rt_fn_coro_create(struct pt_regs *ctx)
{
	return coro_create(ctx, fn_id(ctx, bpf_get_attach_cookie(ctx)), NULL);
}

static __always_inline int coro_destroy(__u64 id)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct rt_coro_key key = {.tgid = tgid, .id = id};
	struct rt_coro_counts *cnt = coro_counts_of(tgid);
	struct rt_coro *c = bpf_map_lookup_elem(&coros, &key);
	__u64 now = bpf_ktime_get_ns();

	if (!c) {
		if (cnt)
			__sync_fetch_and_add(&cnt->destroyed_untracked, 1);
		return 0;
	}
	if (c->birth_ns)
		hist_add(tgid, RT_HIST_CORO_LIFETIME, now - c->birth_ns);
	if ((c->flags & RT_CORO_RUNNING) && c->last_ns)
		hist_add(tgid, RT_HIST_CORO_RUN, now - c->last_ns);
	if (!(c->flags & RT_CORO_ADOPTED))
		name_count(tgid, c->name, false);
	if (cnt)
		__sync_fetch_and_add(&cnt->destroyed, 1);
	bpf_map_delete_elem(&coros, &key);
	return 0;
}

SEC("usdt")
int rt_coro_destroy(struct pt_regs *ctx)
{
	return coro_destroy(usdt_arg(ctx, RT_COOKIE_ID_ARG(bpf_usdt_cookie(ctx))));
}

SEC("uprobe")
int rt_fn_coro_destroy(struct pt_regs *ctx)
{
	return coro_destroy(fn_id(ctx, bpf_get_attach_cookie(ctx)));
}

/* Resume/suspend: optional (each hit costs a trap). A coroutine first seen
 * here was created before tracing began; it is adopted with an unknown birth. */
static __always_inline struct rt_coro *coro_seen(struct pt_regs *ctx, struct rt_coro_key *key,
						 struct rt_coro_counts *cnt)
{
	struct rt_coro *c = bpf_map_lookup_elem(&coros, key);
	struct rt_zero *z;
	if (c)
		return c;
	z = zeroed();
	if (!z)
		return NULL;
	z->coro.birth_ns = 0;
	z->coro.user_stack = 0;
	z->coro.last_ns = 0;
	z->coro.run_ns = 0;
	z->coro.resumes = 0;
	z->coro.flags = RT_CORO_ADOPTED;
	z->coro.creator_tid = 0;
	__builtin_memset(z->coro.name, 0, sizeof(z->coro.name));
	if (bpf_map_update_elem(&coros, key, &z->coro, BPF_NOEXIST)) {
		tp_count_error(TP_ERR_TRACK_FULL);
		return NULL;
	}
	if (cnt)
		__sync_fetch_and_add(&cnt->adopted, 1);
	return bpf_map_lookup_elem(&coros, key);
}

static __always_inline int coro_switch(struct pt_regs *ctx, bool resume)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct rt_coro_key key = {.tgid = tgid, .id = usdt_arg(ctx, RT_COOKIE_ID_ARG(cookie))};
	struct rt_coro_counts *cnt = coro_counts_of(tgid);
	struct rt_coro *c = coro_seen(ctx, &key, cnt);
	__u64 now = bpf_ktime_get_ns();
	bool running;

	if (cnt)
		__sync_fetch_and_add(resume ? &cnt->resumes : &cnt->suspends, 1);
	if (!c)
		return 0;
	running = c->flags & RT_CORO_RUNNING;
	if (resume) {
		if (!running && c->last_ns)
			hist_add(tgid, RT_HIST_CORO_SUSPENDED, now - c->last_ns);
		c->flags |= RT_CORO_RUNNING;
		c->resumes++;
	} else {
		if (running && c->last_ns) {
			c->run_ns += now - c->last_ns;
			hist_add(tgid, RT_HIST_CORO_RUN, now - c->last_ns);
		}
		c->flags &= ~RT_CORO_RUNNING;
	}
	c->last_ns = now;
	return 0;
}

SEC("usdt")
int rt_coro_resume(struct pt_regs *ctx)
{
	return coro_switch(ctx, true);
}

SEC("usdt")
int rt_coro_suspend(struct pt_regs *ctx)
{
	return coro_switch(ctx, false);
}

/* ---------------------------------------------------------- tick frames */

static __always_inline void close_frame(struct rt_thread *t, __u32 tid, __u64 now)
{
	__u64 frame_ns = now - t->frame_start_ns;
	struct rt_frame_event *e;

	hist_add(t->tgid, RT_HIST_FRAME, frame_ns);
	if (frame_ns < frame_event_min_ns)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
		return;
	}
	e->type = RT_EVENT_FRAME;
	e->tgid = t->tgid;
	e->tid = tid;
	e->pad = 0;
	e->tick = t->tick;
	e->start_ns = t->frame_start_ns;
	e->frame_ns = frame_ns;
	e->tick_ns = t->tick_ns;
	__builtin_memcpy(e->pause_ns, t->frame_pause_ns, sizeof(e->pause_ns));
	e->off_other_ns = t->frame_off_other_ns;
	__builtin_memcpy(e->reasons, t->reasons, sizeof(e->reasons));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

SEC("usdt")
int rt_tick_begin(struct pt_regs *ctx)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct rt_thread *t = thread_of(tid, pid_tgid >> 32, true);
	__u64 now = bpf_ktime_get_ns();

	if (!t)
		return 0;
	if (t->frame_start_ns)
		close_frame(t, tid, now);
	t->frame_start_ns = now;
	t->tick_start_ns = now;
	t->tick_ns = 0;
	t->tick = usdt_arg(ctx, RT_COOKIE_ID_ARG(cookie));
	__builtin_memset(t->frame_pause_ns, 0, sizeof(t->frame_pause_ns));
	__builtin_memset(t->reasons, 0, sizeof(t->reasons));
	t->frame_off_other_ns = 0;
	return 0;
}

SEC("usdt")
int rt_tick_end(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct rt_thread *t = thread_of(tid, pid_tgid >> 32, false);
	__u64 now = bpf_ktime_get_ns();

	if (!t || !t->tick_start_ns) {
		tp_count_error(TP_ERR_UNMATCHED_END);
		return 0;
	}
	t->tick_ns = now - t->tick_start_ns;
	t->tick_start_ns = 0;
	hist_add(t->tgid, RT_HIST_TICK, t->tick_ns);
	return 0;
}

/* ---------------------------------------------------------- pauses */

/* USDT pauses start after the unwind (the runtime's own probe brackets its
 * pause); function-probe pauses (Go's stopTheWorldWithSema) start at the
 * probe, as the runtime's own clock does, which also runs through it. */
static __always_inline int pause_begin(struct pt_regs *ctx, __u64 cookie, __u64 begin_arg, bool start_at_probe)
{
	__u64 probe_ns = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
	__u32 kind = RT_COOKIE_KIND(cookie) & (RT_MAX_PAUSE_KINDS - 1);
	struct rt_thread *t = thread_of(tid, tgid, true);

	if (!t)
		return 0;
	if (t->open_pauses & (1u << kind))
		tp_count_error(TP_ERR_NESTING_LOST);
	t->open_pauses |= 1u << kind;
	t->pause_begin_arg[kind] = begin_arg;
	t->pause_stack[kind] = pause_stacks ? stack_here(ctx, tgid) : 0;
	t->pause_start_ns[kind] = start_at_probe ? probe_ns : bpf_ktime_get_ns(); /* after the unwind */
	return 0;
}

SEC("usdt")
int rt_pause_begin(struct pt_regs *ctx)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	return pause_begin(ctx, cookie, usdt_arg(ctx, RT_COOKIE_ARG(cookie, 0)), false);
}

/* ---------------------------------------------------------- stop-the-world, GC cycles */

static __always_inline struct rt_gc_state *gc_state_of(__u32 tgid, bool create)
{
	struct rt_gc_state *g = bpf_map_lookup_elem(&gc_state, &tgid), init = {};
	if (g || !create)
		return g;
	bpf_map_update_elem(&gc_state, &tgid, &init, BPF_NOEXIST);
	g = bpf_map_lookup_elem(&gc_state, &tgid);
	if (!g)
		tp_count_error(TP_ERR_COUNTS_FULL);
	return g;
}

/* The process's stop-the-world clock: closed pauses plus the open one. */
static __always_inline __u64 stw_clock(__u32 tgid, __u64 now)
{
	struct rt_gc_state *g = gc_state_of(tgid, false);
	if (!g)
		return 0;
	return g->stw_total_ns + (g->stw_open_since_ns && now > g->stw_open_since_ns ? now - g->stw_open_since_ns : 0);
}

static __always_inline void world_stops(__u32 tgid, __u32 kind, __u64 now)
{
	struct rt_gc_state *g = gc_state_of(tgid, true);
	if (!g)
		return;
	g->stw_kind = kind;
	g->stw_open_since_ns = now;
	/* The first pause after gcStart's entry opens a GC cycle. */
	if (g->cycle_ending == 2) {
		g->cycle_base_ns = g->stw_total_ns;
		g->cycle_ending = 0;
	}
}

static __always_inline void world_starts(__u32 tgid, __u64 now)
{
	struct rt_gc_state *g = gc_state_of(tgid, false);
	if (!g || !g->stw_open_since_ns)
		return;
	if (now > g->stw_open_since_ns)
		g->stw_total_ns += now - g->stw_open_since_ns;
	g->stw_open_since_ns = 0;
	/* The pause after mark termination's entry ends the cycle. */
	if (g->cycle_ending == 1) {
		hist_add(tgid, RT_HIST_GC_CYCLE, g->stw_total_ns - g->cycle_base_ns);
		g->cycles++;
		g->cycle_ending = 0;
		g->cycle_base_ns = g->stw_total_ns;
	}
}

/* runtime.gcStart's entry (cycle_ending = 2: the next pause starts a
 * cycle; an early return of gcStart is undone by the next real start). */
SEC("uprobe")
int rt_fn_gc_start(struct pt_regs *ctx)
{
	struct rt_gc_state *g = gc_state_of(bpf_get_current_pid_tgid() >> 32, true);
	if (g && g->cycle_ending != 1)
		g->cycle_ending = 2;
	return 0;
}

/* runtime.gcMarkTermination's entry: runs inside the cycle's last pause. */
SEC("uprobe")
int rt_fn_gc_cycle_end(struct pt_regs *ctx)
{
	struct rt_gc_state *g = gc_state_of(bpf_get_current_pid_tgid() >> 32, true);
	if (g)
		g->cycle_ending = 1;
	return 0;
}

SEC("uprobe")
int rt_fn_pause_begin(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	if (RT_FN_STOPS_WORLD(cookie))
		world_stops(bpf_get_current_pid_tgid() >> 32, RT_COOKIE_KIND(cookie) & (RT_MAX_PAUSE_KINDS - 1),
			    bpf_ktime_get_ns());
	return pause_begin(ctx, cookie, fn_id(ctx, cookie), true);
}

/* Function probes capture no end arguments. */
static __always_inline int pause_end(struct pt_regs *ctx, __u64 cookie, bool usdt)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u32 kind = RT_COOKIE_KIND(cookie) & (RT_MAX_PAUSE_KINDS - 1);
	struct rt_thread *t = thread_of(tid, pid_tgid >> 32, false);
	struct rt_pause_event *e;
	__u64 dur;

	if (!t || !(t->open_pauses & (1u << kind))) {
		tp_count_error(TP_ERR_UNMATCHED_END);
		return 0;
	}
	t->open_pauses &= ~(1u << kind);
	dur = now - t->pause_start_ns[kind];
	hist_add(t->tgid, RT_HIST_PAUSE_BASE + kind, dur);
	if (t->frame_start_ns)
		t->frame_pause_ns[kind] += dur;
	if (dur < pause_event_min_ns)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
		return 0;
	}
	e->type = RT_EVENT_PAUSE;
	e->tgid = t->tgid;
	e->tid = tid;
	e->kind = kind;
	e->start_ns = t->pause_start_ns[kind];
	e->duration_ns = dur;
	e->tick = t->frame_start_ns ? t->tick : 0;
	e->user_stack = t->pause_stack[kind];
	e->begin_arg = t->pause_begin_arg[kind];
	e->end_args[0] = usdt ? usdt_arg(ctx, RT_COOKIE_ARG(cookie, 0)) : 0;
	e->end_args[1] = usdt ? usdt_arg(ctx, RT_COOKIE_ARG(cookie, 1)) : 0;
	e->end_args[2] = usdt ? usdt_arg(ctx, RT_COOKIE_ARG(cookie, 2)) : 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("usdt")
int rt_pause_end(struct pt_regs *ctx)
{
	return pause_end(ctx, bpf_usdt_cookie(ctx), true);
}

SEC("uprobe")
int rt_fn_pause_end(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	if (RT_FN_STOPS_WORLD(cookie))
		world_starts(bpf_get_current_pid_tgid() >> 32, bpf_ktime_get_ns());
	return pause_end(ctx, cookie, false);
}

/* ---------------------------------------------------------- goroutine tick frames (Go) */

/* A goroutine's frame: the stop-the-world time inside it (whichever thread
 * stopped the world), its parks (gopark entry -> RET, less the
 * stop-the-world time inside them) inside the tick body (blocking) and
 * outside it (idle: the loop's wait for the next tick); the rest is CPU. */
static __always_inline void add_go_reason(struct rt_gframe *f, __u32 reason, __u64 ns)
{
	for (int i = 0; i < RT_MAX_REASONS; i++) {
		if (f->reasons[i].reason == reason && f->reasons[i].ns) {
			f->reasons[i].ns += ns;
			return;
		}
		if (f->reasons[i].ns == 0) {
			f->reasons[i].reason = reason;
			f->reasons[i].fd_plus1 = 0;
			f->reasons[i].ns = ns;
			return;
		}
	}
	f->off_other_ns += ns;
}

static __always_inline void close_gframe(struct rt_gframe *f, __u32 tgid, __u64 now)
{
	__u64 frame_ns = now - f->frame_start_ns, stw;
	struct rt_gc_state *g;
	struct rt_frame_event *e;

	hist_add(tgid, RT_HIST_FRAME, frame_ns);
	if (frame_ns < frame_event_min_ns)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
		return;
	}
	stw = stw_clock(tgid, now) - f->stw_at_start;
	g = gc_state_of(tgid, false);
	e->type = RT_EVENT_FRAME;
	e->tgid = tgid;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->pad = 0;
	e->tick = f->tick;
	e->start_ns = f->frame_start_ns;
	e->frame_ns = frame_ns;
	e->tick_ns = f->body_ns;
	__builtin_memset(e->pause_ns, 0, sizeof(e->pause_ns));
	e->pause_ns[(g ? g->stw_kind : 0) & (RT_MAX_PAUSE_KINDS - 1)] = stw > frame_ns ? frame_ns : stw;
	e->off_other_ns = f->off_other_ns;
	__builtin_memcpy(e->reasons, f->reasons, sizeof(e->reasons));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline struct rt_coro_key goroutine_key(struct pt_regs *ctx)
{
	struct rt_coro_key k = {.tgid = bpf_get_current_pid_tgid() >> 32};
	k.id = fn_id(ctx, goroutine_key_cookie);
	return k;
}

SEC("uprobe")
int rt_fn_gtick_begin(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	struct rt_coro_key key = goroutine_key(ctx);
	struct rt_gframe *f = bpf_map_lookup_elem(&gframes, &key);
	struct rt_zero *z;

	if (!f) {
		z = zeroed();
		if (!z)
			return 0;
		bpf_map_update_elem(&gframes, &key, &z->gframe, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&gframes, &key);
		if (!f) {
			tp_count_error(TP_ERR_START_FULL);
			return 0;
		}
	}
	if (f->frame_start_ns)
		close_gframe(f, key.tgid, now);
	f->tick = fn_id(ctx, bpf_get_attach_cookie(ctx));
	f->frame_start_ns = now;
	f->body_ns = 0;
	f->stw_at_start = stw_clock(key.tgid, now);
	f->park_start_ns = 0;
	f->in_body = 1;
	f->off_other_ns = 0;
	__builtin_memset(f->reasons, 0, sizeof(f->reasons));
	return 0;
}

SEC("uprobe")
int rt_fn_gtick_end(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	struct rt_coro_key key = goroutine_key(ctx);
	struct rt_gframe *f = bpf_map_lookup_elem(&gframes, &key);

	if (!f || !f->frame_start_ns || !f->in_body) {
		tp_count_error(TP_ERR_UNMATCHED_END);
		return 0;
	}
	f->body_ns = now - f->frame_start_ns;
	f->in_body = 0;
	hist_add(key.tgid, RT_HIST_TICK, f->body_ns);
	return 0;
}

/* runtime.gopark's entry (the wait reason from the cookie's expression, e.g.
 * rcx) and its RETs (the goroutine runs again). Only tick goroutines count. */
SEC("uprobe")
int rt_fn_gpark_begin(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	struct rt_coro_key key = goroutine_key(ctx);
	struct rt_gframe *f = bpf_map_lookup_elem(&gframes, &key);

	if (!f || !f->frame_start_ns)
		return 0;
	f->park_start_ns = now;
	f->park_stw = stw_clock(key.tgid, now);
	f->park_reason = RT_REASON_GO(fn_id(ctx, bpf_get_attach_cookie(ctx)), !f->in_body);
	return 0;
}

SEC("uprobe")
int rt_fn_gpark_end(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), parked, stw;
	struct rt_coro_key key = goroutine_key(ctx);
	struct rt_gframe *f = bpf_map_lookup_elem(&gframes, &key);

	if (!f || !f->frame_start_ns || !f->park_start_ns || now < f->park_start_ns)
		return 0;
	parked = now - f->park_start_ns;
	stw = stw_clock(key.tgid, now) - f->park_stw;
	f->park_start_ns = 0;
	if (parked > stw)
		add_go_reason(f, f->park_reason, parked - stw);
	return 0;
}

/* ---------------------------------------------------------- off-CPU in frames */

/* Syscalls whose first argument is a file descriptor worth classifying. */
static __always_inline bool fd_syscall(long nr)
{
	switch (nr) {
	case 0: case 1: case 16: case 17: case 18: case 19: case 20: /* read write ioctl pread pwrite readv writev */
	case 42: case 43: case 44: case 45: case 46: case 47:          /* connect accept sendto recvfrom sendmsg recvmsg */
	case 74: case 75: case 288: case 295: case 296: case 299: case 307: /* fsync fdatasync accept4 preadv pwritev recvmmsg sendmmsg */
		return true;
	}
	return false;
}

static __always_inline __u32 fd_kind(struct task_struct *task, long fd)
{
	struct file **fds;
	struct file *f = NULL;
	unsigned int max;
	__u16 mode;

	if (fd < 0)
		return RT_FD_NONE;
	max = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned long)fd >= max)
		return RT_FD_NONE;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return RT_FD_NONE;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	switch (mode & 0170000) {
	case 0140000: return RT_FD_SOCKET;
	case 0100000: return RT_FD_FILE;
	default: return RT_FD_OTHER;
	}
}

static __always_inline __u32 block_reason(struct task_struct *prev, bool preempt, __u32 *fd_plus1)
{
	struct pt_regs *regs;
	long nr, fd;
	__u32 kind, state = preempt ? OFFCPU_RUNNABLE : task_state(prev);

	*fd_plus1 = 0;
	if (state == OFFCPU_RUNNABLE)
		return RT_REASON(OFFCPU_RUNNABLE, RT_FD_NONE, 0);
	regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	if (!regs)
		return RT_REASON(state, RT_FD_NONE, 0);
	nr = BPF_CORE_READ(regs, orig_ax);
	if (nr < 0 || nr > 0xfffe)
		return RT_REASON(state, RT_FD_NONE, 0);
	if (!fd_syscall(nr))
		return RT_REASON(state, RT_FD_NONE, nr + 1);
	fd = BPF_CORE_READ(regs, di);
	kind = fd_kind(prev, fd);
	/* The socket is kept so user space can name the peer that blocked
	 * the tick (hitch attribution). */
	if (kind == RT_FD_SOCKET && fd >= 0 && fd < 0x7fffffff)
		*fd_plus1 = (__u32)fd + 1;
	return RT_REASON(state, kind, nr + 1);
}

static __always_inline void add_reason(struct rt_thread *t, __u32 reason, __u32 fd_plus1, __u64 ns)
{
	for (int i = 0; i < RT_MAX_REASONS; i++) {
		if (t->reasons[i].reason == reason && t->reasons[i].fd_plus1 == fd_plus1 && t->reasons[i].ns) {
			t->reasons[i].ns += ns;
			return;
		}
		if (t->reasons[i].ns == 0) {
			t->reasons[i].reason = reason;
			t->reasons[i].fd_plus1 = fd_plus1;
			t->reasons[i].ns = ns;
			return;
		}
	}
	t->frame_off_other_ns += ns;
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 prev_pid = prev->pid, next_pid = next->pid; /* BTF pointers: plain loads */
	struct rt_thread *t;
	__u64 now;

	if (prev_pid) {
		t = bpf_map_lookup_elem(&threads, &prev_pid);
		/* Off-CPU time inside a pause is part of the pause. */
		if (t && t->frame_start_ns && !t->open_pauses) {
			t->off_start_ns = bpf_ktime_get_ns();
			t->off_reason = block_reason(prev, preempt, &t->off_fd_plus1);
		}
	}
	if (next_pid) {
		t = bpf_map_lookup_elem(&threads, &next_pid);
		if (t && t->off_start_ns) {
			now = bpf_ktime_get_ns();
			if (t->frame_start_ns && now > t->off_start_ns && t->off_start_ns >= t->frame_start_ns)
				add_reason(t, t->off_reason, t->off_fd_plus1, now - t->off_start_ns);
			t->off_start_ns = 0;
		}
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rt_sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(preempt, prev, next);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rt_thread_exit, struct task_struct *task)
{
	__u32 tid = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&threads, &tid);
	return 0;
}
