/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Allocation family: outstanding heap memory by allocation stack, from
 * uprobes on the allocator's entry points and the mmap/munmap syscalls.
 *
 * In the kernel: every tracked allocation (address -> size, time, stack)
 * and, per (process, stack), running totals updated atomically, so user
 * space reads aggregates and only walks single allocations for their age.
 *
 * Plain C, fixed-width types: included by BPF and C++.
 */
#ifndef TICKPROBE_ALLOC_H
#define TICKPROBE_ALLOC_H

#ifndef __bpf__
#include <linux/types.h> /* user space; BPF gets the types from vmlinux.h */
#endif

enum alloc_kind {
	ALLOC_KIND_HEAP = 0, /* malloc and friends */
	ALLOC_KIND_MMAP = 1, /* anonymous mmap outside the allocator */
};

/* The uprobe's attach cookie (bpf_get_attach_cookie): facts about the
 * object the probed entry point lives in (low bits), and from bit
 * UPROBE_ARGS_SHIFT the registers holding the arguments at the probed
 * instruction (uprobe_args.h). */
#define ALLOC_COOKIE_GLIBC 1ULL /* glibc malloc: chunk headers are readable */

struct alloc_key {
	__u32 tgid;
	__u32 pad;
	__u64 addr;
};

struct alloc_info {
	__u64 size;       /* bytes requested */
	__u64 ts_ns;      /* bpf_ktime_get_ns() at allocation */
	__u64 user_stack; /* allocation stack hash (stacks map), 0 = unknown */
	__u32 kind;       /* enum alloc_kind */
	__u32 pad;
};

struct alloc_stack_key {
	__u32 tgid;
	__u32 kind;
	__u64 user_stack;
};

/* Per (process, stack). Outstanding values are signed: a free can be seen
 * on another CPU before the matching increment lands. */
struct alloc_stack_value {
	__s64 outstanding_bytes;
	__s64 outstanding_count;
	__u64 allocs;      /* tracked allocations, ever */
	__u64 alloc_bytes; /* their bytes */
	__u64 frees;       /* tracked frees, ever */
};

/* Per-thread allocator state. */
struct alloc_thread {
	__s64 until_sample; /* bytes left before the next sampled allocation */
	__u64 size;         /* pending allocation: requested size */
	__u64 user_stack;   /* pending allocation: stack at entry */
	__u64 memptr;       /* posix_memalign: where the result is written */
	__u32 active;       /* inside an allocator call (entry seen, return not yet) */
	__u32 sampled;      /* the pending allocation is tracked */
};

/* Frees of addresses tickprobe never saw allocated (allocated before attach,
 * or not sampled), by the allocator's chunk size (glibc: read from the chunk
 * header; 0 when the allocator is not glibc). Lets user space tell a stack
 * that replaces memory allocated before attach from one that leaks. */
struct alloc_untracked_key {
	__u32 tgid;
	__u32 pad;
	__u64 chunk_size;
};


#endif /* TICKPROBE_ALLOC_H */
