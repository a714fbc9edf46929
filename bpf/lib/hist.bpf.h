/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Filling struct tp_hist (bpf/include/hist.h) from BPF. */
#ifndef TICKPROBE_HIST_BPF_H
#define TICKPROBE_HIST_BPF_H

#include "hist.h"

/* Index of the highest set bit (v > 0), without a loop. */
static __always_inline __u32 tp_log2_u64(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xffffffffULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 tp_hist_slot(__u64 v)
{
	__u32 msb, idx;
	if (v < 4)
		return v;
	msb = tp_log2_u64(v);
	idx = msb * 4 + ((v >> (msb - 2)) & 3) - 4;
	return idx < TP_HIST_SLOTS ? idx : TP_HIST_SLOTS - 1;
}

static __always_inline void tp_hist_add(struct tp_hist *h, __u64 v)
{
	__u64 slot = tp_hist_slot(v);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum, v);
	if (v > h->max)
		h->max = v;
	/* Keep the bound check where the verifier sees it. */
	asm volatile("" : "+r"(slot));
	if (slot < TP_HIST_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
}

#endif /* TICKPROBE_HIST_BPF_H */
