/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared definitions for tickprobe's in-kernel stack unwinder.
 *
 * A plain frame-pointer walk is wrong at two places that matter to us:
 *  - inside code built without frame pointers (Debian's libc, libstdc++,
 *    OpenSSL): a thread blocked in read()/epoll_wait() loses the function
 *    that called into libc;
 *  - at a uprobe on a function's entry, before `push rbp; mov rbp,rsp`:
 *    the immediate caller is skipped.
 * So user space compiles each mapped binary's .eh_frame (DWARF CFI) into a
 * compact, sorted row table (struct tp_unwind_row), and the BPF side unwinds
 * with it: per frame, find the row covering the PC, compute the CFA from rsp
 * or rbp, read the return address at CFA-8 and restore rbp. Binaries whose
 * code keeps frame pointers (tp_mapping.flags & TP_MAPPING_FP) are walked
 * by frame pointer except at the leaf, which is always unwound by CFI.
 *
 * Plain C, fixed-width types, explicit padding: included by BPF and C++.
 */
#ifndef TICKPROBE_UNWIND_H
#define TICKPROBE_UNWIND_H

#define TP_MAX_FRAMES 64          /* user or kernel frames kept per stack */
#define TP_MAX_PROC_MAPPINGS 256  /* executable mappings tracked per process */

enum tp_cfa_type {
	TP_CFA_INVALID = 0, /* no CFI here (gap between FDEs): fall back to FP */
	TP_CFA_RSP = 1,     /* CFA = rsp + cfa_offset */
	TP_CFA_RBP = 2,     /* CFA = rbp + cfa_offset */
	TP_CFA_PLT = 3,     /* PLT stub: CFA = rsp + 8 + ((pc & 15) >= cfa_offset ? 8 : 0) */
	TP_CFA_END = 4,     /* return address undefined: outermost frame */
	/* CFA given by a DWARF expression of the form
	 *   DW_OP_breg7/6 inner; DW_OP_deref; DW_OP_plus_uconst outer
	 * i.e. CFA = *(rsp|rbp + inner) + outer: OpenSSL's assembly after it
	 * realigns the stack (`and $-64,%rsp`) and saves the old rsp in the
	 * frame. cfa_offset packs both (TP_CFA_DEREF_PACK). */
	TP_CFA_DEREF_RSP = 5,
	TP_CFA_DEREF_RBP = 6,
	/* Some other CFA expression: the BPF side falls back to the frame
	 * pointer, like TP_CFA_INVALID, and counts unwind_expr_unsupported. */
	TP_CFA_UNSUPPORTED = 7,
};

/* TP_CFA_DEREF_*: inner offset in the low 16 bits of cfa_offset, outer
 * addend in the high 16 (both signed). Keeps the row at 12 bytes. */
#define TP_CFA_DEREF_PACK(inner, outer) \
	((__s32)((((__u32)(__u16)(__s16)(outer)) << 16) | (__u32)(__u16)(__s16)(inner)))
#define TP_CFA_DEREF_INNER(cfa_offset) ((__s16)((__u32)(cfa_offset) & 0xffff))
#define TP_CFA_DEREF_OUTER(cfa_offset) ((__s16)((__u32)(cfa_offset) >> 16))

enum tp_rbp_rule {
	TP_RBP_SAME = 0,   /* caller's rbp == current rbp */
	TP_RBP_OFFSET = 1, /* caller's rbp saved at CFA + rbp_offset */
	TP_RBP_UNDEF = 2,  /* not recoverable */
};

/* One row of an unwind table: valid from pc up to the next row's pc. */
struct tp_unwind_row {
	__u32 pc;         /* ELF virtual address (file-relative) */
	__s32 cfa_offset;
	__u8 cfa_type;    /* enum tp_cfa_type */
	__u8 rbp_rule;    /* enum tp_rbp_rule */
	__s16 rbp_offset;
};
/* unwind_rows is an array of these (shared_maps.cpp sizes it by sizeof):
 * 1 Mi rows are 12 MiB. */
#ifdef __cplusplus
static_assert(sizeof(struct tp_unwind_row) == 12, "tp_unwind_row must stay 12 bytes");
#else
_Static_assert(sizeof(struct tp_unwind_row) == 12, "tp_unwind_row must stay 12 bytes");
#endif

#define TP_MAPPING_FP 1u /* binary keeps frame pointers: FP-walk non-leaf frames */

struct tp_mapping {
	__u64 start;      /* runtime address range [start, end) */
	__u64 end;
	__u64 bias;       /* runtime address - ELF virtual address */
	__u32 row_start;  /* first row in the global row array */
	__u32 row_count;  /* 0: no table, walk by frame pointer */
	__u32 flags;      /* TP_MAPPING_* */
	__u32 file_id;    /* collector's id of the binary (for debugging) */
};

/*
 * Go: work on the system stack (runtime.systemstack, mcall, morestack,
 * asmcgocall) runs on the M's g0 stack, whose frame chain ends at the
 * switch. As Go's own traceback does, a walk that starts on g0 (the thread's
 * current g, read from TLS, is m.g0) continues at the
 * goroutine's saved context m.curg.sched (pc, sp, bp) when it reaches one
 * of the switch functions, or when its frame chain leaves the g0 stack.
 * After systemstack/asmcgocall (sched.pc = systemstack_switch) and
 * morestack (sched.pc = the function that needed more stack, before its
 * prologue), sched.sp points at the next return address (frameless).
 * Offsets come from the binary's DWARF, else a table keyed by Go version
 * (collector/unwind/go_layout.*); enabled = 0 when neither knows them.
 */
#define TP_GO_MAX_SWITCH 4

struct tp_go_switch_fn {
	__u64 start;     /* runtime address range [start, end) */
	__u64 end;
	__u32 frameless; /* 1: after the hop, the return address is at sched.sp */
	__u32 pad;
};

struct tp_go_info {
	__u32 enabled;
	__s32 tls_g;       /* offset of the current g from the thread pointer (fsbase) */
	__u16 g_stack_lo;  /* runtime.g: stack.lo, stack.hi, m, sched */
	__u16 g_stack_hi;
	__u16 g_m;
	__u16 g_sched;
	__u16 m_g0;        /* runtime.m: g0, curg, gsignal */
	__u16 m_curg;
	__u16 m_gsignal;   /* read by no walk yet: a signal's context is in its frame */
	__u16 gobuf_sp;    /* runtime.gobuf: sp, pc, bp */
	__u16 gobuf_pc;
	__u16 gobuf_bp;
	__u16 nswitch;     /* entries of sw in use */
	__u16 pad;
	struct tp_go_switch_fn sw[TP_GO_MAX_SWITCH];
};

struct tp_proc_maps {
	__u32 count;      /* mappings in use, sorted by start */
	__u32 generation; /* bumped by user space on every rewrite */
	struct tp_mapping maps[TP_MAX_PROC_MAPPINGS];
	struct tp_go_info go; /* the process's Go runtime, if it has one */
};

#define TP_STACK_TRUNCATED (1u << 0)  /* hit TP_MAX_FRAMES */
#define TP_STACK_READ_FAULT (1u << 1) /* a user-memory read failed mid-walk */
#define TP_STACK_NO_MAPPING (1u << 2) /* a PC outside every known mapping */
#define TP_STACK_USED_FP (1u << 3)    /* at least one frame-pointer step */

/* A stack, content-addressed by a 64-bit hash in the stacks map. */
struct tp_stack {
	__u32 len;
	__u32 flags; /* TP_STACK_* */
	__u64 ips[TP_MAX_FRAMES];
};

/* The target set as one cache line: the first test of every program's hot
 * path (tp_is_target). A sampling program runs on every CPU tick of every
 * process, and at 99 Hz each run finds the caches cold: the targets hash
 * costs a helper call and ~3 cold lines (its header, bucket, element; about
 * 1 us measured under load), this array one inlined lookup and one line.
 * User space rewrites it as a seqlock on the mmapped value (seq odd while
 * writing); a reader that sees seq odd or changed, enabled 0, or more
 * targets than fit (count > TP_FILTER_TGIDS), asks the targets hash. */
#define TP_FILTER_TGIDS 13

struct tp_target_filter {
	__u32 seq;
	__u32 enabled; /* 0: not maintained (a map nobody shares): use the hash */
	__u32 count;   /* targets; > TP_FILTER_TGIDS: the hash decides */
	__u32 tgids[TP_FILTER_TGIDS];
};
#ifdef __cplusplus
static_assert(sizeof(struct tp_target_filter) == 64, "tp_target_filter: one cache line");
#else
_Static_assert(sizeof(struct tp_target_filter) == 64, "tp_target_filter: one cache line");
#endif

/* Self-accounting counters, one per-CPU array slot each; the rows, names,
 * kinds and help texts are in counters.def. */
enum tp_counter {
#define TP_COUNTER(id, name, kind, help) id,
#include "counters.def"
#undef TP_COUNTER
	TP_COUNTER_MAX,
};
#define TP_ERR_MAX TP_COUNTER_MAX

#endif /* TICKPROBE_UNWIND_H */
