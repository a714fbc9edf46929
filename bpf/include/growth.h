/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Growth family: memory growth by user stack, at no cost per malloc. Three
 * sources, each its own value:
 *   - first touches: user page faults writing a page that is not present
 *     (exceptions:page_fault_user, error code WRITE without PROT or INSTR),
 *     each a new private page: resident memory growing;
 *   - brk growth: the heap's break moving up (mm->brk before and after the
 *     syscall);
 *   - anonymous mmap: bytes of address space mapped (sys_enter_mmap with
 *     MAP_ANONYMOUS).
 * Faults can be sampled (fault_sample_every = N: one in N on average, the
 * kept ones weighted by N).
 *
 * Plain C, fixed-width types: included by BPF and C++.
 */
#ifndef TICKPROBE_GROWTH_H
#define TICKPROBE_GROWTH_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define GROWTH_COMM_LEN 16
#define GROWTH_PAGE_SIZE 4096

struct growth_key {
	__u32 tgid;
	__u32 pid;
	__u64 user_stack; /* hash in the stacks map; 0 = none */
	char comm[GROWTH_COMM_LEN];
};

struct growth_value {
	__u64 fault_bytes; /* first-touch anonymous page faults x page size (x sampling weight) */
	__u64 faults;      /* those faults (x sampling weight) */
	__u64 brk_bytes;   /* heap break growth */
	__u64 mmap_bytes;  /* anonymous mmap lengths */
};

/* The page_fault_user tracepoint's record (tracefs format of
 * exceptions/page_fault_user; its trace_event_raw struct is not in BTF). */
struct growth_fault_record {
	__u64 common; /* common_type, flags, preempt_count, pid */
	__u64 address;
	__u64 ip;
	__u64 error_code;
};

#define GROWTH_PF_PROT 0x1  /* the page was present: a protection fault, not a first touch */
#define GROWTH_PF_WRITE 0x2  /* a write: a not-present page gets a new page */
#define GROWTH_PF_INSTR 0x10 /* instruction fetch: code, file-backed */

#endif /* TICKPROBE_GROWTH_H */
