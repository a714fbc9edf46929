/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A switched-out task's state as enum offcpu_state (bpf/include/offcpu.h). */
#ifndef TICKPROBE_TASK_STATE_BPF_H
#define TICKPROBE_TASK_STATE_BPF_H

#include "common.bpf.h"
#include "offcpu.h"

/* The state field was renamed state -> __state in v5.14 (2f064a59a11f). */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_state(struct task_struct *t)
{
	long s;
	if (bpf_core_field_exists(t->__state))
		s = t->__state; /* callers pass BTF pointers (tp_btf, iter/task) */
	else
		s = BPF_CORE_READ((struct task_struct___pre514 *)t, state);
	if (s == 0)
		return OFFCPU_RUNNABLE;
	if (s & 1) /* TASK_INTERRUPTIBLE */
		return OFFCPU_SLEEPING;
	if (s & 2) /* TASK_UNINTERRUPTIBLE */
		return OFFCPU_UNINTERRUPTIBLE;
	return OFFCPU_OTHER;
}

#endif /* TICKPROBE_TASK_STATE_BPF_H */
