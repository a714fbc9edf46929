/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Runtime family: coroutine lifecycles, pauses (GC, arena resets, ...) and
 * tick frames, from USDT probes the game server publishes.
 *
 * Which probes mean what is not compiled in: user space reads a runtime
 * description (collector/runtime/runtime_description.h) and attaches one
 * generic program per event type to each probe, passing the argument
 * positions and the pause kind in the attach cookie (RT_COOKIE_*).
 *
 * Plain C, fixed-width types: included by BPF and C++.
 */
#ifndef TICKPROBE_RUNTIME_H
#define TICKPROBE_RUNTIME_H

#ifndef __bpf__
#include <linux/types.h> /* user space; BPF gets the types from vmlinux.h */
#endif

#include "hist.h"

#define RT_MAX_PAUSE_KINDS 4   /* pause kinds per runtime description */
#define RT_NAME_LEN 32         /* coroutine name bytes kept */
#define RT_MAX_REASONS 6       /* off-CPU reasons kept per tick frame */
#define RT_MAX_ARGS 3          /* probe arguments captured per pause end */
#define RT_COMM_LEN 16

/* Attach cookie: which USDT arguments to read, 4 bits each (RT_ARG_NONE =
 * not captured), and the pause kind. */
#define RT_ARG_NONE 0xf
#define RT_COOKIE_KIND(c) ((__u32)((c) & 0xff))
#define RT_COOKIE_ID_ARG(c) ((__u32)(((c) >> 8) & 0xf))
#define RT_COOKIE_NAME_ARG(c) ((__u32)(((c) >> 12) & 0xf))
#define RT_COOKIE_ARG(c, i) ((__u32)(((c) >> (16 + 4 * (i))) & 0xf))

/* Function probes (uprobes on a symbol's entry or on each of its RET
 * instructions): the cookie holds the pause kind and where the id is:
 *  bits 0-7  pause kind
 *  bits 8-11 register (RT_REG_*), bit 12: read the u64 at register + offset,
 *  bit 13    an id is given
 *  bits 32-63 offset (s32) */
enum rt_reg {
	RT_REG_RAX = 0, RT_REG_RBX, RT_REG_RCX, RT_REG_RDX, RT_REG_RSI, RT_REG_RDI, RT_REG_RBP, RT_REG_RSP,
	RT_REG_R8, RT_REG_R9, RT_REG_R10, RT_REG_R11, RT_REG_R12, RT_REG_R13, RT_REG_R14, RT_REG_R15,
};
#define RT_FN_REG(c) ((__u32)(((c) >> 8) & 0xf))
#define RT_FN_DEREF(c) ((__u32)(((c) >> 12) & 1))
#define RT_FN_HAS_ID(c) ((__u32)(((c) >> 13) & 1))
#define RT_FN_OFFSET(c) ((__s32)((c) >> 32))
/* bit 14: this pause stops the world (Go's stop-the-world): it counts in
 * the frame of every goroutine tick of the process, whichever thread ran it. */
#define RT_FN_STOPS_WORLD(c) ((__u32)(((c) >> 14) & 1))

/* Histograms, per (tgid, kind). */
enum rt_hist_kind {
	RT_HIST_TICK = 0,            /* tick begin -> tick end */
	RT_HIST_FRAME = 1,           /* tick begin -> next tick begin */
	RT_HIST_CORO_LIFETIME = 2,   /* create -> destroy */
	RT_HIST_CORO_RUN = 3,        /* resume -> suspend (optional tracing) */
	RT_HIST_CORO_SUSPENDED = 4,  /* suspend -> resume (optional tracing) */
	RT_HIST_GC_CYCLE = 5,        /* stop-the-world time of one GC cycle (Go: both pauses) */
	RT_HIST_PAUSE_BASE = 8,      /* + pause kind index */
};

struct rt_hist_key {
	__u32 tgid;
	__u32 kind; /* enum rt_hist_kind */
};

/* Per-process coroutine counters. */
struct rt_coro_counts {
	__u64 created;             /* creates seen (tracked or not) */
	__u64 destroyed;           /* destroys of tracked coroutines */
	__u64 destroyed_untracked; /* destroys of coroutines created before attach (or untracked) */
	__u64 adopted;             /* seen first at resume/suspend: created before attach */
	__u64 untracked;           /* creates not tracked: coroutine map full */
	__u64 resumes;
	__u64 suspends;
};

struct rt_coro_key {
	__u32 tgid;
	__u32 pad;
	__u64 id;
};

#define RT_CORO_ADOPTED 1u /* birth unknown: created before tracing began */
#define RT_CORO_RUNNING 2u

struct rt_coro {
	__u64 birth_ns;   /* 0 if adopted */
	__u64 user_stack; /* creation stack hash (stacks map), 0 = none */
	__u64 last_ns;    /* last resume or suspend */
	__u64 run_ns;     /* total time running (resume tracing only) */
	__u32 resumes;
	__u32 flags;      /* RT_CORO_* */
	__u32 creator_tid;
	__u32 pad;
	char name[RT_NAME_LEN];
};

struct rt_name_key {
	__u32 tgid;
	__u32 pad;
	char name[RT_NAME_LEN];
};

struct rt_name_counts {
	__u64 created;
	__u64 destroyed;
};

/* Why a thread was off-CPU: packed into a u32.
 *  bits 0-1  thread state (enum offcpu_state: R, S, D, other)
 *  bits 2-3  kind of the fd the syscall works on (RT_FD_*)
 *  bits 16-31 syscall number + 1 (0 = not in a syscall, e.g. a page fault) */
#define RT_FD_NONE 0
#define RT_FD_SOCKET 1
#define RT_FD_FILE 2
#define RT_FD_OTHER 3
#define RT_REASON(state, fdkind, nr_plus1) \
	((__u32)(state) | ((__u32)(fdkind) << 2) | ((__u32)(nr_plus1) << 16))
#define RT_REASON_STATE(r) ((r) & 3)
#define RT_REASON_FD(r) (((r) >> 2) & 3)
#define RT_REASON_SYSCALL(r) ((int)((r) >> 16) - 1)
/* A goroutine tick's park (Go's gopark): bit 4 set, bits 8-15 the wait
 * reason (runtime.waitReason), bit 5: parked outside the tick body (the
 * loop's wait for its next tick: idle). */
#define RT_REASON_GO_PARK 0x10u
#define RT_REASON_GO_IDLE 0x20u
#define RT_REASON_GO(wait, idle) (RT_REASON_GO_PARK | ((idle) ? RT_REASON_GO_IDLE : 0) | (((__u32)(wait) & 0xff) << 8))
#define RT_REASON_GO_WAIT(r) (((r) >> 8) & 0xff)

struct rt_reason_ns {
	__u32 reason;
	__u32 fd_plus1; /* the socket the syscall blocked on, + 1 (0 = none) */
	__u64 ns;
};

/* Per-thread state: the open tick frame and open pauses. */
struct rt_thread {
	__u32 tgid;
	__u32 open_pauses;     /* bit per pause kind */
	__u64 tick;            /* tick number of the open frame */
	__u64 frame_start_ns;  /* 0 = no frame open */
	__u64 tick_start_ns;   /* 0 = not inside tick begin/end */
	__u64 tick_ns;         /* work of this frame's tick (begin -> end) */
	__u64 pause_start_ns[RT_MAX_PAUSE_KINDS];
	__u64 pause_stack[RT_MAX_PAUSE_KINDS];
	__u64 pause_begin_arg[RT_MAX_PAUSE_KINDS];
	__u64 frame_pause_ns[RT_MAX_PAUSE_KINDS];
	__u64 off_start_ns;    /* 0 = on CPU (or off-CPU inside a pause) */
	__u32 off_reason;
	__u32 off_fd_plus1;    /* socket fd + 1 of the blocking syscall (0 = none) */
	__u64 frame_off_other_ns; /* off-CPU time that did not fit in reasons[] */
	struct rt_reason_ns reasons[RT_MAX_REASONS];
};

/* Per-process stop-the-world and GC cycle state (function-probe runtimes). */
struct rt_gc_state {
	__u64 stw_open_since_ns; /* 0 = the world runs */
	__u64 stw_total_ns;      /* closed stop-the-world time since attach */
	__u64 cycle_base_ns;     /* stw_total_ns when the current cycle started */
	__u64 cycles;            /* GC cycles completed (their last pause ended) */
	__u32 cycle_ending;      /* mark termination seen; its pause not ended yet */
	__u32 stw_kind;          /* pause kind index of the stopping pause */
};

/* A goroutine's tick frame (Go): from one entry of the tick function to the
 * next on the same goroutine, keyed by (tgid, goid) since goroutines move
 * between threads. */
struct rt_gframe {
	__u64 tick;
	__u64 frame_start_ns;  /* 0 = none open */
	__u64 body_ns;         /* tick function entry -> its RET */
	__u64 stw_at_start;    /* process stop-the-world clock at frame start */
	__u64 park_start_ns;   /* 0 = not parked */
	__u64 park_stw;        /* stop-the-world clock at park start */
	__u32 park_reason;     /* RT_REASON_GO(...) */
	__u32 in_body;
	__u64 off_other_ns;
	struct rt_reason_ns reasons[RT_MAX_REASONS];
};

enum rt_event_type {
	RT_EVENT_FRAME = 1,
	RT_EVENT_PAUSE = 2,
};

/* One closed tick frame: what the thread did between two tick begins. */
struct rt_frame_event {
	__u32 type; /* RT_EVENT_FRAME */
	__u32 tgid;
	__u32 tid;
	__u32 pad;
	__u64 tick;
	__u64 start_ns;
	__u64 frame_ns;  /* tick begin -> next tick begin */
	__u64 tick_ns;   /* tick begin -> tick end */
	__u64 pause_ns[RT_MAX_PAUSE_KINDS];
	__u64 off_other_ns;
	struct rt_reason_ns reasons[RT_MAX_REASONS];
	char comm[RT_COMM_LEN];
};

/* One pause at least pause_event_min_ns long. */
struct rt_pause_event {
	__u32 type; /* RT_EVENT_PAUSE */
	__u32 tgid;
	__u32 tid;
	__u32 kind; /* pause kind index */
	__u64 start_ns;
	__u64 duration_ns;
	__u64 tick;        /* tick number of the frame it fell in (0 = none) */
	__u64 user_stack;  /* at pause begin, 0 = not captured */
	__u64 begin_arg;   /* first captured begin argument */
	__u64 end_args[RT_MAX_ARGS];
};

#endif /* TICKPROBE_RUNTIME_H */
