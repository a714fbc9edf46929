// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Allocation family: outstanding allocations by stack, for leak hunts.
 *
 * Entry uprobes note the request (and, when the allocation is sampled, the
 * stack: unwound from the entry registers with CFI, so the allocator's
 * caller is the second frame even in code without frame pointers); return
 * uprobes record address -> (size, time, stack) and add to the stack's
 * totals; free looks the address up and subtracts. Anonymous mmaps made
 * outside the allocator are tracked the same way through the syscall
 * tracepoints; the allocator's own mmaps are not (they would count twice).
 *
 * Sampling (sample_bytes > 0): like tcmalloc's heap profiler, each thread
 * draws the distance to its next sampled byte from an exponential
 * distribution with that mean, so an allocation of s bytes is sampled with
 * probability 1 - exp(-s / sample_bytes). Unsampled allocations cost one
 * map lookup and no stack walk; their frees are a miss in `allocs`. */
#include "common.bpf.h"
#include "unwind.bpf.h"
#include "uprobe_args.bpf.h"
#include "alloc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 sample_bytes = 0; /* 0 = track every allocation */
const volatile bool track_mmap = true;
const volatile bool glibc_chunks = true; /* chunk headers may be read (and the probe's cookie says glibc) */

#ifndef ALLOC_MAX_TRACKED
#define ALLOC_MAX_TRACKED 262144
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ALLOC_MAX_TRACKED);
	__type(key, struct alloc_key);
	__type(value, struct alloc_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct alloc_stack_key);
	__type(value, struct alloc_stack_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} stack_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct alloc_thread);
} alloc_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct alloc_untracked_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} untracked_frees SEC(".maps");


/* log2(1 + x/16) * 1024 for x in 0..15, within 1%: a linear term plus a
 * parabola (no table: static const arrays upset BTF on this toolchain). */
static __always_inline __u32 log2_frac(__u32 x)
{
	return x * 64 + (x * (16 - x) * 11) / 8;
}

/* An exponential draw with mean sample_bytes: -ln(U) * mean, in integers. */
static __always_inline __s64 next_sample_distance(void)
{
	__u32 r = bpf_get_prandom_u32() | 1;
	__u32 msb = 0, v = r, frac;
	__u64 neg_log2, d;
	for (int i = 16; i > 0; i >>= 1) {
		if (v >> i) {
			v >>= i;
			msb += i;
		}
	}
	frac = msb >= 4 ? (r >> (msb - 4)) & 15 : (r << (4 - msb)) & 15;
	neg_log2 = (32 << 10) - ((msb << 10) + log2_frac(frac & 15)); /* -log2(r / 2^32) * 1024 */
	d = sample_bytes * neg_log2 * 710 >> 20;                        /* * ln(2) = 710/1024 */
	return d ? (__s64)d : 1;
}

static __always_inline struct alloc_thread *thread_state(__u32 tid)
{
	struct alloc_thread *t = bpf_map_lookup_elem(&alloc_threads, &tid), init = {};
	if (t)
		return t;
	if (sample_bytes)
		init.until_sample = next_sample_distance();
	bpf_map_update_elem(&alloc_threads, &tid, &init, BPF_NOEXIST);
	t = bpf_map_lookup_elem(&alloc_threads, &tid);
	if (!t)
		tp_count_error(TP_ERR_START_FULL);
	return t;
}

static __always_inline void stack_account(__u32 tgid, struct alloc_info *info, bool alloc)
{
	struct alloc_stack_key key = {.tgid = tgid, .kind = info->kind, .user_stack = info->user_stack};
	struct alloc_stack_value *v = bpf_map_lookup_elem(&stack_totals, &key), init = {};
	if (!v) {
		bpf_map_update_elem(&stack_totals, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&stack_totals, &key);
		if (!v) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			return;
		}
	}
	if (alloc) {
		__sync_fetch_and_add(&v->outstanding_bytes, (__s64)info->size);
		__sync_fetch_and_add(&v->outstanding_count, 1);
		__sync_fetch_and_add(&v->allocs, 1);
		__sync_fetch_and_add(&v->alloc_bytes, info->size);
	} else {
		__sync_fetch_and_add(&v->outstanding_bytes, -(__s64)info->size);
		__sync_fetch_and_add(&v->outstanding_count, -1);
		__sync_fetch_and_add(&v->frees, 1);
	}
}

static __always_inline bool untrack(__u32 tgid, __u64 addr)
{
	struct alloc_key key = {.tgid = tgid, .addr = addr};
	struct alloc_info *info = bpf_map_lookup_elem(&allocs, &key);
	struct alloc_info copy;
	if (!info)
		return false;
	copy = *info;
	if (bpf_map_delete_elem(&allocs, &key))
		return false; /* a concurrent free of the same address won */
	stack_account(tgid, &copy, false);
	return true;
}

static __always_inline void track(__u32 tgid, __u64 addr, __u64 size, __u64 stack, __u32 kind)
{
	struct alloc_key key = {.tgid = tgid, .addr = addr};
	struct alloc_info info = {.size = size, .ts_ns = bpf_ktime_get_ns(), .user_stack = stack, .kind = kind};
	if (bpf_map_update_elem(&allocs, &key, &info, BPF_NOEXIST)) {
		/* Address reused: its free was missed (or it was never seen). */
		if (!untrack(tgid, addr) || bpf_map_update_elem(&allocs, &key, &info, BPF_NOEXIST)) {
			tp_count_error(TP_ERR_TRACK_FULL);
			return;
		}
	}
	stack_account(tgid, &info, true);
	tp_count_add(TP_CTR_ALLOCS_TRACKED, 1);
	tp_count_add(TP_CTR_ALLOCS_TRACKED_BYTES, size);
}

static __always_inline int on_alloc_enter(struct pt_regs *ctx, __u64 size, __u64 memptr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct alloc_thread *t;

	if (!tp_is_target(tgid))
		return 0;
	t = thread_state((__u32)pid_tgid);
	if (!t)
		return 0;
	if (t->active) {
		tp_count_add(TP_CTR_ALLOC_NESTED, 1);
		return 0;
	}
	tp_count_add(TP_CTR_ALLOC_CALLS, 1);
	tp_count_add(TP_CTR_ALLOC_BYTES, size);
	t->active = 1;
	t->size = size;
	t->memptr = memptr;
	t->sampled = 0;
	if (sample_bytes) {
		t->until_sample -= (__s64)size;
		if (t->until_sample > 0) {
			tp_count_error(TP_ERR_EVENTS_SAMPLED_OUT);
			return 0;
		}
		t->until_sample = next_sample_distance();
	}
	t->sampled = 1;
	t->user_stack = tp_user_stack(tgid, PT_REGS_IP(ctx), PT_REGS_SP(ctx), PT_REGS_FP(ctx));
	return 0;
}

static __always_inline int on_alloc_exit(__u64 addr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct alloc_thread *t = bpf_map_lookup_elem(&alloc_threads, &tid);

	if (!t || t->active != 1)
		return 0;
	t->active = 0;
	if (!addr) {
		tp_count_add(TP_CTR_ALLOCS_FAILED, 1);
		return 0;
	}
	if (t->sampled)
		track(pid_tgid >> 32, addr, t->size, t->user_stack, ALLOC_KIND_HEAP);
	return 0;
}

static __always_inline void count_untracked_free(__u32 tgid, __u64 ptr, __u64 cookie)
{
	struct alloc_untracked_key key = {.tgid = tgid};
	__u64 *n, one = 1, hdr = 0;
	if (glibc_chunks && (cookie & ALLOC_COOKIE_GLIBC) && bpf_probe_read_user(&hdr, sizeof(hdr), (void *)(ptr - 8)) == 0)
		key.chunk_size = hdr & ~7ULL;
	n = bpf_map_lookup_elem(&untracked_frees, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(&untracked_frees, &key, &one, BPF_NOEXIST))
		tp_count_error(TP_ERR_COUNTS_FULL);
}

/* free(ptr), or the old block of realloc(ptr, n). The cookie says which
 * allocator the probe sits in (ALLOC_COOKIE_*). */
static __always_inline void on_free(__u64 ptr, __u64 cookie)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!ptr || !tp_is_target(tgid))
		return;
	tp_count_add(TP_CTR_FREE_CALLS, 1);
	if (untrack(tgid, ptr))
		tp_count_add(TP_CTR_FREES_MATCHED, 1);
	else if (!sample_bytes)
		count_untracked_free(tgid, ptr, cookie);
}

/* The entry programs read their arguments through tp_uprobe_arg: the probe
 * may sit on the first cheap instruction past the entry, where an argument
 * can be in another register (the cookie says which; bpf/include/uprobe_args.h). */
#define ARG(i) tp_uprobe_arg(ctx, cookie, (i))

SEC("uprobe")
int malloc_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	return on_alloc_enter(ctx, ARG(0), 0);
}

SEC("uprobe")
int calloc_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	return on_alloc_enter(ctx, ARG(0) * ARG(1), 0);
}

/* realloc(ptr, n), rallocx(ptr, n, flags): frees ptr, allocates n. A
 * realloc made inside another allocator call (reallocarray calling realloc)
 * is left to the outer one, which frees the same block. */
static __always_inline int on_realloc_enter(struct pt_regs *ctx, __u64 ptr, __u64 size, __u64 cookie)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct alloc_thread *t = bpf_map_lookup_elem(&alloc_threads, &tid);
	if (t && t->active)
		return on_alloc_enter(ctx, size, 0); /* counts it as nested */
	on_free(ptr, cookie);
	return on_alloc_enter(ctx, size, 0);
}

SEC("uprobe")
int realloc_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	return on_realloc_enter(ctx, ARG(0), ARG(1), cookie);
}

/* reallocarray(ptr, n, size) */
SEC("uprobe")
int reallocarray_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	return on_realloc_enter(ctx, ARG(0), ARG(1) * ARG(2), cookie);
}

/* memalign(align, size), aligned_alloc(align, size) */
SEC("uprobe")
int memalign_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	return on_alloc_enter(ctx, ARG(1), 0);
}

/* posix_memalign(void **memptr, size_t align, size_t size) */
SEC("uprobe")
int posix_memalign_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	return on_alloc_enter(ctx, ARG(2), ARG(0));
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_exit, __u64 ret)
{
	return on_alloc_exit(ret);
}

SEC("uretprobe")
int BPF_KRETPROBE(posix_memalign_exit, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct alloc_thread *t = bpf_map_lookup_elem(&alloc_threads, &tid);
	__u64 addr = 0;
	if (!t || t->active != 1)
		return 0;
	if (ret == 0 && t->memptr)
		bpf_probe_read_user(&addr, sizeof(addr), (void *)t->memptr);
	return on_alloc_exit(addr);
}

SEC("uprobe")
int free_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	on_free(ARG(0), cookie);
	return 0;
}

/* ---------------------------------------------------------- Go's sampled heap profile */

/* Go samples its own heap (runtime.MemProfileRate, default one sample per
 * 512 KiB allocated, drawn like ours) and records each sampled object by
 * calling runtime.mProf_Malloc(p, size) on the allocating goroutine's
 * stack: entry uprobe, p in RAX, size (its size class) in RBX. The sweeper
 * frees a sampled object through runtime.freeSpecial(s, p, size) with
 * s.kind == _KindSpecialProfile: p in RBX. Two probe hits per 512 KiB, and
 * none on Go's allocation fast path. */
#define ALLOC_GO_SPECIAL_KIND_OFF 10 /* runtime.special{next *special; offset uint16; kind byte} */
#define ALLOC_GO_KIND_SPECIAL_PROFILE 2

SEC("uprobe")
int alloc_go_sampled(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 stack;

	if (!tp_is_target(tgid))
		return 0;
	tp_count_add(TP_CTR_ALLOC_CALLS, 1);
	tp_count_add(TP_CTR_ALLOC_BYTES, ctx->bx);
	stack = tp_user_stack(tgid, PT_REGS_IP(ctx), PT_REGS_SP(ctx), PT_REGS_FP(ctx));
	track(tgid, ctx->ax, ctx->bx, stack, ALLOC_KIND_HEAP);
	return 0;
}

SEC("uprobe")
int alloc_go_free_special(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 kind = 0;

	if (!tp_is_target(tgid))
		return 0;
	if (bpf_probe_read_user(&kind, sizeof(kind), (void *)(ctx->ax + ALLOC_GO_SPECIAL_KIND_OFF)) ||
	    kind != ALLOC_GO_KIND_SPECIAL_PROFILE)
		return 0;
	tp_count_add(TP_CTR_FREE_CALLS, 1);
	if (untrack(tgid, ctx->bx))
		tp_count_add(TP_CTR_FREES_MATCHED, 1);
	return 0;
}

/* ---------------------------------------------------------- mmap/munmap */

#define ALLOC_ACTIVE_MMAP 2

SEC("tracepoint/syscalls/sys_enter_mmap")
int alloc_mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct alloc_thread *t;

	if (!track_mmap || !tp_is_target(tgid))
		return 0;
	if (!(ctx->args[3] & 0x20 /* MAP_ANONYMOUS */))
		return 0;
	t = thread_state((__u32)pid_tgid);
	if (!t || t->active) /* the allocator's own mmap */
		return 0;
	t->active = ALLOC_ACTIVE_MMAP;
	t->size = ctx->args[1];
	t->user_stack = tp_current_user_stack(tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int alloc_mmap_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct alloc_thread *t;
	long ret = ctx->ret;

	if (!track_mmap)
		return 0;
	t = bpf_map_lookup_elem(&alloc_threads, &tid);
	if (!t || t->active != ALLOC_ACTIVE_MMAP)
		return 0;
	t->active = 0;
	if (ret < 0 && ret > -4096)
		return 0;
	track(pid_tgid >> 32, (__u64)ret, t->size, t->user_stack, ALLOC_KIND_MMAP);
	tp_count_add(TP_CTR_MMAPS, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int alloc_munmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct alloc_thread *t;

	if (!track_mmap || !tp_is_target(tgid))
		return 0;
	t = bpf_map_lookup_elem(&alloc_threads, &tid);
	if (t && t->active)
		return 0;
	if (untrack(tgid, ctx->args[0]))
		tp_count_add(TP_CTR_MUNMAPS_MATCHED, 1);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(alloc_thread_exit, struct task_struct *task)
{
	__u32 tid = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&alloc_threads, &tid);
	return 0;
}
