/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Target-following family: process exec and exit events, so the agent picks
 * up new matching processes and follows restarts without polling. */
#ifndef TICKPROBE_TARGETS_H
#define TICKPROBE_TARGETS_H

#define TP_COMM_LEN 16
#define TP_PATH_LEN 256

enum target_event_type {
	TARGET_EVENT_EXEC = 1,
	TARGET_EVENT_EXIT = 2,
};

struct target_event {
	__u32 type; /* enum target_event_type */
	__u32 tgid;
	__u32 ppid;
	__u32 pad;
	char comm[TP_COMM_LEN];
	char filename[TP_PATH_LEN]; /* exec only */
};

#endif /* TICKPROBE_TARGETS_H */
