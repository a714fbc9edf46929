// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Every exec (system-wide: user space decides whether it matches --comm or
 * --exe) and the exit of every traced process, sent over a ringbuf. Exec
 * rates are low, so streaming these is cheap. */
#include "common.bpf.h"
#include "targets.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} target_events SEC(".maps");

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct target_event *e;
	unsigned int off = ctx->__data_loc_filename & 0xffff;

	e = bpf_ringbuf_reserve(&target_events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
		return 0;
	}
	e->type = TARGET_EVENT_EXEC;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct target_event *e;

	if ((__u32)id != tgid || !tp_is_target(tgid)) /* only whole-process exits */
		return 0;
	e = bpf_ringbuf_reserve(&target_events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = TARGET_EVENT_EXIT;
	e->tgid = tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
