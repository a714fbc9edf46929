/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Log-linear latency histograms, filled in the kernel and read by user space.
 *
 * Four buckets per power of two (quarter octaves): bucket i >= 4 covers
 * [(4 + i%4) << (i/4 - 1), (5 + i%4) << (i/4 - 1)), so each bucket is at most
 * 25% wide. In nanoseconds: buckets below 1 us are 64-256 ns wide, a 1 ms
 * pause lands in a 0.26 ms-wide bucket, a 100 ms GC in a 25 ms-wide one.
 * Buckets 0-3 hold the values 0-3. The slots reach 2^45 ns (~9.8 hours);
 * the last one, from 7 * 2^42 ns (~8.5 hours), also takes everything above.
 *
 * Plain C, fixed-width types: included by BPF and C++.
 */
#ifndef TICKPROBE_HIST_H
#define TICKPROBE_HIST_H

#ifndef __bpf__
#include <linux/types.h> /* user space; BPF gets the types from vmlinux.h */
#endif

#define TP_HIST_SLOTS 176 /* 4 per octave, up to 2^45 */

struct tp_hist {
	__u64 count;
	__u64 sum;  /* sum of values (ns) */
	__u64 max;  /* largest value seen (racy across CPUs: a statistic) */
	__u64 slots[TP_HIST_SLOTS];
};

#endif /* TICKPROBE_HIST_H */
