/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* CPU profile family: perf_event samples counted per (thread, stacks). */
#ifndef TICKPROBE_PROFILE_H
#define TICKPROBE_PROFILE_H

#define TP_COMM_LEN 16

struct profile_key {
	__u32 tgid;
	__u32 pid;          /* thread id */
	__u64 user_stack;   /* hash in the stacks map; 0 = none */
	__u64 kernel_stack; /* hash in the stacks map; 0 = none (user mode) */
	char comm[TP_COMM_LEN]; /* thread name */
};

#endif /* TICKPROBE_PROFILE_H */
