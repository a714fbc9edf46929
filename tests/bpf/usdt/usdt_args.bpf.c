// SPDX-License-Identifier: GPL-2.0
// Test program: records what <bpf/usdt.bpf.h> reads at a USDT site, to
// compare tickprobe's uprobe_multi USDT path (core/usdt_multi.h) with
// libbpf's bpf_program__attach_usdt. The usdt cookie is the probe's index.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "GPL";

#define USDT_TEST_PROBES 4
#define USDT_TEST_ARGS 6

struct usdt_seen {
	__u64 hits;
	__s64 arg_cnt;
	__s64 args[USDT_TEST_ARGS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, USDT_TEST_PROBES);
	__type(key, __u32);
	__type(value, struct usdt_seen);
} seen SEC(".maps");

const volatile __u32 target_tgid = 0;

SEC("usdt")
int record(struct pt_regs *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	__u32 k = (__u32)bpf_usdt_cookie(ctx);
	struct usdt_seen *s = bpf_map_lookup_elem(&seen, &k);
	if (!s)
		return 0;
	s->arg_cnt = bpf_usdt_arg_cnt(ctx);
	for (int i = 0; i < USDT_TEST_ARGS; i++) {
		long v = 0;
		if (bpf_usdt_arg(ctx, i, &v) == 0)
			s->args[i] = v;
	}
	__sync_fetch_and_add(&s->hits, 1);
	return 0;
}
