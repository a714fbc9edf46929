/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Alternating count maps that user space drains without losing updates.
 *
 * A family keeps two aggregation maps (counts_0, counts_1). Writers add to
 * the one `active_slot` names; user space flips the slot and then reads and
 * deletes the other. Flipping alone is not enough: a program that read the
 * old slot index just before the flip may still be adding to that map while
 * it is read, and an increment through a pointer to an entry that was just
 * read and deleted is lost. So every writer announces itself in
 * slot_writers[slot] for the duration of its update, and user space waits
 * after the flip until the old slot has no writers (collector/core/
 * count_slots.h). The enter path re-reads active_slot after announcing
 * itself (a Dekker-style handshake: x86 locked adds are full barriers), so
 * either the writer sees the flip and moves to the new slot, or user space
 * sees the writer and waits for it.
 */
#ifndef TICKPROBE_COUNT_SLOTS_BPF_H
#define TICKPROBE_COUNT_SLOTS_BPF_H

#include "common.bpf.h"

__u32 active_slot = 0;
__u64 slot_writers[2] = {};

#define TP_SLOT_NONE (-1)

static __always_inline __s32 tp_slot_enter(void)
{
	__u32 s = *(volatile __u32 *)&active_slot & 1;

	__sync_fetch_and_add(&slot_writers[s], 1);
	if ((*(volatile __u32 *)&active_slot & 1) == s)
		return s;
	__sync_fetch_and_add(&slot_writers[s], (__u64)-1);
	s ^= 1;
	__sync_fetch_and_add(&slot_writers[s], 1);
	if ((*(volatile __u32 *)&active_slot & 1) == s)
		return s;
	/* Two flips during one program run: only when user space drains far
	 * faster than programs run. Counted, not silently lost. */
	__sync_fetch_and_add(&slot_writers[s], (__u64)-1);
	tp_count_error(TP_ERR_SLOT_RACE);
	return TP_SLOT_NONE;
}

static __always_inline void tp_slot_exit(__s32 s)
{
	if (s == TP_SLOT_NONE)
		return;
	__sync_fetch_and_add(&slot_writers[s & 1], (__u64)-1);
}

#endif /* TICKPROBE_COUNT_SLOTS_BPF_H */
