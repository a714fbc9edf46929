// Placeholder family so the BPF build path is exercised from day one.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 hits = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int handle_getpid(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}
