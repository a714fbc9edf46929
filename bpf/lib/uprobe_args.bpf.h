/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A uprobe's arguments where the probe sits past the function's entry: the
 * attach cookie names the register each one is in (bpf/include/uprobe_args.h,
 * chosen by collector/core/uprobe_site.h). */
#ifndef TICKPROBE_UPROBE_ARGS_BPF_H
#define TICKPROBE_UPROBE_ARGS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_tracing.h>
#include "uprobe_args.h"

/* x86 register number (encoding order) -> its value at the probe. The
 * register is known at run time only, and the verifier refuses a ctx access
 * at a variable offset (which is what clang makes of a switch over ctx
 * fields), so the value is read from the pt_regs by offset. */
static __always_inline __u64 tp_reg_by_number(struct pt_regs *ctx, __u32 regno)
{
	__u32 off;
	__u64 v = 0;
	switch (regno) {
	case 0: off = __builtin_offsetof(struct pt_regs, ax); break;
	case 1: off = __builtin_offsetof(struct pt_regs, cx); break;
	case 2: off = __builtin_offsetof(struct pt_regs, dx); break;
	case 3: off = __builtin_offsetof(struct pt_regs, bx); break;
	case 4: off = __builtin_offsetof(struct pt_regs, sp); break;
	case 5: off = __builtin_offsetof(struct pt_regs, bp); break;
	case 6: off = __builtin_offsetof(struct pt_regs, si); break;
	case 7: off = __builtin_offsetof(struct pt_regs, di); break;
	case 8: off = __builtin_offsetof(struct pt_regs, r8); break;
	case 9: off = __builtin_offsetof(struct pt_regs, r9); break;
	case 10: off = __builtin_offsetof(struct pt_regs, r10); break;
	case 11: off = __builtin_offsetof(struct pt_regs, r11); break;
	case 12: off = __builtin_offsetof(struct pt_regs, r12); break;
	case 13: off = __builtin_offsetof(struct pt_regs, r13); break;
	case 14: off = __builtin_offsetof(struct pt_regs, r14); break;
	case 15: off = __builtin_offsetof(struct pt_regs, r15); break;
	default: return 0;
	}
	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + off);
	return v;
}

/* Integer argument i (0-based, System V order) of the probed call. */
static __always_inline __u64 tp_uprobe_arg(struct pt_regs *ctx, __u64 cookie, __u32 i)
{
	__u32 field = UPROBE_ARG_FIELD(cookie, i);
	if (field)
		return tp_reg_by_number(ctx, field - 1);
	switch (i) {
	case 0: return PT_REGS_PARM1(ctx);
	case 1: return PT_REGS_PARM2(ctx);
	case 2: return PT_REGS_PARM3(ctx);
	case 3: return ctx->cx;
	case 4: return PT_REGS_PARM5(ctx);
	case 5: return ctx->r9; /* PT_REGS_PARM6 is newer than libbpf 1.1 */
	}
	return 0;
}

#endif /* TICKPROBE_UPROBE_ARGS_BPF_H */
