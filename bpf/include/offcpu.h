/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Off-CPU family: time target threads spend switched out, per stack and state. */
#ifndef TICKPROBE_OFFCPU_H
#define TICKPROBE_OFFCPU_H

#define TP_COMM_LEN 16

enum offcpu_state {
	OFFCPU_RUNNABLE = 0,        /* preempted: waiting for a CPU ("R") */
	OFFCPU_SLEEPING = 1,        /* TASK_INTERRUPTIBLE ("S") */
	OFFCPU_UNINTERRUPTIBLE = 2, /* TASK_UNINTERRUPTIBLE ("D") */
	OFFCPU_OTHER = 3,           /* stopped, traced, parked, ... */
};

/* Bits for the state_mask tunable: 1 << enum offcpu_state. */
#define OFFCPU_MASK_ALL 0xf

struct offcpu_key {
	__u32 tgid;
	__u32 pid;
	__u64 user_stack;   /* hash in the stacks map; 0 = none */
	__u64 kernel_stack; /* hash in the stacks map; 0 = none */
	__u32 state;        /* enum offcpu_state */
	__u32 pad;
	char comm[TP_COMM_LEN];
};

struct offcpu_value {
	__u64 total_ns;
	__u64 count;
	__u64 max_ns;
};

#define OFFCPU_START_SEEDED 1u /* written by user space at start, not by a switch-out */

/* Per-thread switch-out record, keyed by thread id. */
struct offcpu_start {
	__u64 ts_ns;
	__u64 user_stack;
	__u64 kernel_stack;
	__u32 tgid;
	__u32 state;
	char comm[TP_COMM_LEN];
	__u32 flags; /* OFFCPU_START_* */
	__u32 pad;
};

/* One thread of iter_tgid, written by the dump_threads task iterator when
 * a recording starts: threads blocked since before it never switch out
 * while it runs, so their state, saved user registers (the syscall entry's
 * pt_regs) and kernel stack come from here. */
#define OFFCPU_ITER_KSTACK 64
struct offcpu_thread_dump {
	__u32 tid;
	__u32 tgid;
	__u32 state;     /* enum offcpu_state; OFFCPU_RUNNABLE also for running */
	__u32 kstack_len;
	__u64 switches;  /* nvcsw + nivcsw: changes once the thread ran */
	__u64 ip, sp, bp;
	char comm[TP_COMM_LEN];
	__u64 kstack[OFFCPU_ITER_KSTACK];
};

#endif /* TICKPROBE_OFFCPU_H */
