/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Where a uprobe placed past a function's entry finds the arguments.
 *
 * A uprobe on an instruction the kernel emulates (push, jcc, jmp, call,
 * nop) costs ~1 us a hit here; one it must single-step out of line (cmp,
 * mov, test, lea, ...) ~20 us. So a probe may sit on the first cheap
 * instruction every call executes instead of the entry
 * (collector/core/uprobe_site.h chooses it). The prologue before it may
 * have moved an argument to another register (mimalloc's malloc starts
 * `mov %rdi,%rsi; mov %fs:(%rax),%rdi`): the attach cookie then says, per
 * argument, which register holds it at the probed instruction.
 *
 * Cookie bits UPROBE_ARGS_SHIFT + 5*i .. +4: argument i's register number
 * plus one (x86 encoding order: 0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp, 5 rbp,
 * 6 rsi, 7 rdi, 8..15 r8..r15), or 0: still in its System V register.
 * The low UPROBE_ARGS_SHIFT bits belong to the family.
 *
 * Plain C: included by BPF and C++.
 */
#ifndef TICKPROBE_UPROBE_ARGS_H
#define TICKPROBE_UPROBE_ARGS_H

#define UPROBE_ARGS_SHIFT 32
#define UPROBE_ARGS_MAX 6 /* rdi, rsi, rdx, rcx, r8, r9 */
#define UPROBE_ARGS_BITS 5

#define UPROBE_ARG_FIELD(cookie, i) (((cookie) >> (UPROBE_ARGS_SHIFT + UPROBE_ARGS_BITS * (i))) & 31)
#define UPROBE_ARG_ENCODE(i, regno) ((unsigned long long)((regno) + 1) << (UPROBE_ARGS_SHIFT + UPROBE_ARGS_BITS * (i)))

#endif /* TICKPROBE_UPROBE_ARGS_H */
