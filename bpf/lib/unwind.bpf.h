/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The user-stack unwinder (see bpf/include/unwind.h for why) and the
 * content-addressed stack store shared by every family.
 *
 * CFA rules: rsp/rbp + offset, the PLT expression, and *(rsp|rbp + a) + b
 * (OpenSSL's realigned frames; one more user read). Other expressions are
 * counted (unwind_expr_unsupported) and fall back to the frame pointer.
 *
 * Cost: per frame, one mapping binary search (<= 8 steps over the process's
 * sorted executable mappings) and, where CFI is used, one row binary search
 * (<= 21 steps over the binary's rows). Frames inside binaries that keep
 * frame pointers take the cheap FP step instead (two user reads). Families
 * that define TP_FRAME_CACHE (profile) look both searches' result up in a
 * per-CPU cache first (struct tp_frame_cache_entry): one cache line per
 * frame whose PC was seen before.
 */
#ifndef TICKPROBE_UNWIND_BPF_H
#define TICKPROBE_UNWIND_BPF_H

#include "common.bpf.h"

#ifndef TP_UNWIND_ROWS
#define TP_UNWIND_ROWS (1 << 20)
#endif
#ifndef TP_MAX_STACKS
#define TP_MAX_STACKS 16384
#endif

/* Every binary's rows, back to back; tp_mapping says where each starts. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TP_UNWIND_ROWS);
	__type(key, __u32);
	__type(value, struct tp_unwind_row);
} unwind_rows SEC(".maps");

/* tgid -> its executable mappings, written by user space from /proc/PID/maps. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct tp_proc_maps);
} proc_maps SEC(".maps");

/* 64-bit content hash -> stack. User space reads and prunes it; a stack
 * already pruned is found again in user space's own cache by its hash.
 * Preallocated: a non-preallocated insert from sched_switch (rq lock held)
 * can fail when bpf_mem_alloc's per-CPU cache is empty. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_STACKS);
	__type(key, __u64);
	__type(value, struct tp_stack);
} stacks SEC(".maps");

struct tp_unwind_scratch {
	__u64 ip, sp, bp;
	__u32 tgid;
	__u32 frame_gen;  /* tp_proc_maps.generation at the walk's start; 0 = no frame cache */
	__u64 uret_tramp; /* the task's uretprobe trampoline address, 0 = none */
	__u64 uret_next;  /* struct return_instance * of the next trampoline slot */
	/* Go: a walk that started on g0/gsignal (see struct tp_go_info) */
	__u64 go_lo, go_hi; /* that stack's bounds */
	__u64 go_sched;     /* address of m.curg.sched */
	__u32 go_armed;     /* 1 until the walk hopped to the goroutine */
	__u32 go_frameless; /* the next frame's return address is at sp */
	struct tp_go_info go; /* the process's, copied when armed */
	struct tp_stack user;
	struct tp_stack kern;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tp_unwind_scratch);
} unwind_scratch SEC(".maps");

static __always_inline struct tp_unwind_scratch *tp_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&unwind_scratch, &zero);
}

#ifdef TP_UNWIND_CACHE
/*
 * Per-thread unwind cache (families that define TP_UNWIND_CACHE: offcpu).
 * The walk is a pure function of the user registers (ip, sp, bp), the
 * process's mappings and row tables (tp_proc_maps.generation changes with
 * every rewrite) and the user-memory words it reads. So the walk records
 * each word it reads (address, value); a later walk of the same thread from
 * the same registers and generation re-reads those words (one bulk read of
 * the span they lie in) and, if every one is unchanged, the result is the
 * same stack: it is reused without walking. Walks that read anything else
 * (Go's TLS and g/m words, pending uretprobes' return instances), that
 * faulted, or whose words do not fit TP_UCACHE_WORDS / TP_UCACHE_SPAN are
 * not cached. A thread that blocks in the same call from two callers with
 * identical registers differs in a return address, so it misses: the
 * stacks stay right (tests/bpf/offcpu).
 */
#define TP_UCACHE_WORDS 64   /* words recorded per walk (power of 2) */
#define TP_UCACHE_SPAN 4096  /* bytes from the lowest to the highest word read (power of 2) */

struct tp_ucache_entry {
	__u64 ip, sp, bp;
	__u64 stack;      /* the walk's stack hash */
	__u64 lo;         /* lowest address read */
	__u32 tgid;
	__u32 generation; /* tp_proc_maps.generation at the walk */
	__u32 span;       /* bytes from lo past the highest word read */
	__u32 nwords;
	__u16 off[TP_UCACHE_WORDS]; /* word addresses - lo */
	__u64 val[TP_UCACHE_WORDS];
};

/* A thread's walks, in its task-local storage (allocated at its first
 * block, freed with the thread, so bounded by the target's threads). Fully
 * associative: a thread that blocks at a few places (a read here, a sleep
 * there) keeps one walk for each, found by its registers; a new place
 * takes an empty way, else the ways in turn. */
#define TP_UCACHE_WAYS 4
struct tp_ucache {
	struct tp_ucache_entry way[TP_UCACHE_WAYS];
	__u32 next; /* the way the next new place replaces */
	__u32 cur;  /* the way picked (read back, so the verifier does not
		     * walk the rest of the program once per way) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tp_ucache);
} ucache SEC(".maps");

/* What the current walk read, and the buffer of the re-read. */
struct tp_ucache_scratch {
	__u32 n;
	__u32 bad; /* a read faulted, or too many words: do not cache */
	__u64 addr[TP_UCACHE_WORDS];
	__u64 val[TP_UCACHE_WORDS];
	__u8 buf[TP_UCACHE_SPAN + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tp_ucache_scratch);
} ucache_scratch SEC(".maps");

static __always_inline struct tp_ucache_scratch *tp_ucache_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&ucache_scratch, &zero);
}
#endif

/* Reads one user word for the walk (and records it for the cache). */
static __always_inline long tp_read_word(__u64 *dst, __u64 addr)
{
	long err = bpf_probe_read_user(dst, sizeof(*dst), (void *)addr);
#ifdef TP_UNWIND_CACHE
	struct tp_ucache_scratch *c = tp_ucache_scratch();
	if (c) {
		__u32 n = c->n;
		if (err || n >= TP_UCACHE_WORDS) {
			c->bad = 1;
		} else {
			c->addr[n & (TP_UCACHE_WORDS - 1)] = addr;
			c->val[n & (TP_UCACHE_WORDS - 1)] = *dst;
			c->n = n + 1;
		}
	}
#endif
	return err;
}

/* The mapping that contains ip, or NULL. Mappings are sorted by start. */
static __always_inline struct tp_mapping *tp_find_mapping(struct tp_proc_maps *pm, __u64 ip)
{
	__u32 lo = 0, hi = pm->count;
	if (hi > TP_MAX_PROC_MAPPINGS)
		hi = TP_MAX_PROC_MAPPINGS;
	for (int i = 0; i < 9 && lo < hi; i++) { /* 2^8 = TP_MAX_PROC_MAPPINGS */
		__u32 mid = (lo + hi) / 2;
		struct tp_mapping *m = &pm->maps[mid & (TP_MAX_PROC_MAPPINGS - 1)];
		if (ip < m->start)
			hi = mid;
		else if (ip >= m->end)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

/* The last row with row.pc <= pc among [start, start+count), or NULL. */
static __always_inline struct tp_unwind_row *tp_find_row(__u32 start, __u32 count, __u64 pc)
{
	__u32 lo = start, hi = start + count; /* search [lo, hi) for upper bound */
	struct tp_unwind_row *row;
	if (pc > 0xffffffffULL)
		return NULL;
	for (int i = 0; i < 22 && lo < hi; i++) { /* 2^21 rows per binary */
		__u32 mid = lo + (hi - lo) / 2;
		row = bpf_map_lookup_elem(&unwind_rows, &mid);
		if (!row)
			return NULL;
		if (row->pc <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == start)
		return NULL;
	lo -= 1;
	return bpf_map_lookup_elem(&unwind_rows, &lo);
}

/* What a frame's unwind needs from the mapping and row searches: the CFI
 * row that covers its PC (cfa_type TP_CFA_INVALID: none, walk by frame
 * pointer), and whether the PC lay in no known mapping. */
struct tp_frame_rule {
	struct tp_unwind_row row;
	__u32 no_mapping;
};

/* The frame rule for PC ip, frame n, computed from the process's tables.
 * Returns the generation of the tables it used (0: none). */
static __always_inline __u32 tp_frame_rule_compute(struct tp_unwind_scratch *s, __u64 ip, __u32 n,
						   struct tp_frame_rule *rule)
{
	struct tp_proc_maps *pm = bpf_map_lookup_elem(&proc_maps, &s->tgid);
	struct tp_mapping *m = NULL;

	/* Whole, padding too: it is compared and copied into the cache. */
	__builtin_memset(rule, 0, sizeof(*rule));
	rule->row.cfa_type = TP_CFA_INVALID;
	if (pm)
		m = tp_find_mapping(pm, ip);
	rule->no_mapping = !m;
	/* The leaf's PC is exact; callers' PCs are return addresses, which may
	 * already lie past the end of the calling function: look up pc - 1. */
	if (m && m->row_count && (n == 0 || !(m->flags & TP_MAPPING_FP))) {
		__u64 rel = ip - m->bias - (n ? 1 : 0);
		struct tp_unwind_row *row = tp_find_row(m->row_start, m->row_count, rel);
		if (row)
			rule->row = *row;
	}
	return pm ? pm->generation : 0;
}

#ifdef TP_FRAME_CACHE
/*
 * Per-CPU frame cache (families that define TP_FRAME_CACHE: profile).
 * A frame's rule is a pure function of (process tables, PC, leaf or not):
 * tp_proc_maps is rewritten whole under a new generation (never reused
 * while running) and unwind_rows is append-only, so (tgid, generation, ip,
 * leaf) names one rule for good. Outer frames (main, the server loop) repeat
 * in every sample; their rules come from one cache line here instead of a
 * mapping search and a row binary search of up to 22 steps through a table
 * of megabytes (each step a cold cache and TLB miss at 99 Hz). Direct
 * mapped: a colliding frame overwrites the slot. The walk itself (the
 * registers and user memory) is never cached, so stacks stay exact.
 * frame_cache_mode (user space sets it): 0 off, 1 on, 2 verify (every hit
 * is recomputed and compared; differences are counted, the computed rule
 * is used: tests).
 */
#ifndef TP_FRAME_CACHE_SLOTS
#define TP_FRAME_CACHE_SLOTS 2048 /* power of 2; 32 bytes each, per CPU */
#endif
_Static_assert((TP_FRAME_CACHE_SLOTS & (TP_FRAME_CACHE_SLOTS - 1)) == 0, "TP_FRAME_CACHE_SLOTS: power of 2");

const volatile __u32 frame_cache_mode = 1;

struct tp_frame_cache_entry {
	__u64 ip;
	__u32 generation; /* 0: empty */
	__u32 tgid;
	struct tp_unwind_row row;
	__u8 leaf;
	__u8 no_mapping;
	__u16 pad;
};
_Static_assert(sizeof(struct tp_frame_cache_entry) == 32, "tp_frame_cache_entry: 32 bytes");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TP_FRAME_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct tp_frame_cache_entry);
} frame_cache SEC(".maps");

/* At a walk's start: the generation the walk's cache lookups must match. */
static __always_inline void tp_frame_cache_begin(struct tp_unwind_scratch *s)
{
	struct tp_proc_maps *pm;
	s->frame_gen = 0;
	if (!frame_cache_mode)
		return;
	pm = bpf_map_lookup_elem(&proc_maps, &s->tgid);
	if (pm)
		s->frame_gen = pm->generation;
}

static __always_inline bool tp_frame_rule_equal(struct tp_frame_rule *a, struct tp_frame_rule *b)
{
	if (a->no_mapping != b->no_mapping || a->row.cfa_type != b->row.cfa_type)
		return false;
	if (a->row.cfa_type == TP_CFA_INVALID)
		return true;
	return a->row.cfa_offset == b->row.cfa_offset && a->row.rbp_rule == b->row.rbp_rule &&
	       a->row.rbp_offset == b->row.rbp_offset;
}

static __always_inline void tp_frame_rule_get(struct tp_unwind_scratch *s, __u64 ip, __u32 n,
					      struct tp_frame_rule *rule)
{
	struct tp_frame_cache_entry *e;
	__u32 gen = s->frame_gen, leaf = n == 0, slot;

	if (!gen) {
		tp_frame_rule_compute(s, ip, n, rule);
		return;
	}
	slot = (__u32)(((ip + leaf) ^ ((__u64)gen << 40)) * 0x9e3779b97f4a7c15ULL >> 32) & (TP_FRAME_CACHE_SLOTS - 1);
	e = bpf_map_lookup_elem(&frame_cache, &slot);
	if (!e) {
		tp_frame_rule_compute(s, ip, n, rule);
		return;
	}
	if (e->ip == ip && e->generation == gen && e->tgid == s->tgid && e->leaf == leaf) {
		struct tp_frame_rule cached;
		tp_count_error(TP_CTR_FRAME_CACHE_HITS);
		cached.row = e->row;
		cached.no_mapping = e->no_mapping;
		if (frame_cache_mode != 2) {
			*rule = cached;
			return;
		}
		tp_frame_rule_compute(s, ip, n, rule);
		if (!tp_frame_rule_equal(rule, &cached))
			tp_count_error(TP_ERR_FRAME_CACHE_MISMATCH);
		return;
	}
	tp_count_error(TP_CTR_FRAME_CACHE_MISSES);
	/* Only a rule from the walk's own generation is stored: one computed
	 * from tables rewritten mid-walk would be filed under the old name. */
	if (tp_frame_rule_compute(s, ip, n, rule) != gen)
		return;
	e->ip = ip;
	e->generation = gen;
	e->tgid = s->tgid;
	e->row = rule->row;
	e->leaf = leaf;
	e->no_mapping = rule->no_mapping;
}
#else
static __always_inline void tp_frame_cache_begin(struct tp_unwind_scratch *s)
{
	s->frame_gen = 0;
}

static __always_inline void tp_frame_rule_get(struct tp_unwind_scratch *s, __u64 ip, __u32 n,
					      struct tp_frame_rule *rule)
{
	tp_frame_rule_compute(s, ip, n, rule);
}
#endif

/* A pending uretprobe replaced a return address on the stack with the
 * trampoline (the first slot of the [uprobes] XOL area), which no mapping
 * covers: without this a sample inside a uretprobed function stops there.
 * The kernel keeps the original addresses in current->utask->return_instances,
 * newest first; a "chained" instance (a uretprobed function tail-called by
 * another) shares its predecessor's slot. perf's own callchains got the same
 * fix in 6.12 ("uprobes: fix user stack traces in the presence of pending
 * uretprobes"). */
static __always_inline void tp_uretprobe_init(struct tp_unwind_scratch *s)
{
	struct task_struct *task = bpf_get_current_task_btf();
	s->uret_tramp = 0;
	s->uret_next = 0;
	if (!bpf_core_type_exists(struct return_instance))
		return;
	s->uret_next = (__u64)BPF_CORE_READ(task, utask, return_instances);
	if (s->uret_next)
		s->uret_tramp = BPF_CORE_READ(task, mm, uprobes_state.xol_area, vaddr);
}

static __always_inline __u64 tp_uretprobe_original(struct tp_unwind_scratch *s)
{
	struct return_instance *ri = (struct return_instance *)s->uret_next;
	__u64 ra = BPF_CORE_READ(ri, orig_ret_vaddr);
	for (int i = 0; i < 8 && ri; i++) {
		bool chained = BPF_CORE_READ(ri, chained);
		ri = BPF_CORE_READ(ri, next);
		if (!chained)
			break;
	}
	s->uret_next = (__u64)ri;
	return ra;
}

/* Go: continues the walk at the goroutine's saved context (m.curg.sched). */
static __always_inline long tp_go_hop(struct tp_unwind_scratch *s, __u32 frameless)
{
	struct tp_go_info *go = &s->go;
	__u64 pc = 0, sp = 0, bp = 0;

	s->go_armed = 0;
	if (bpf_probe_read_user(&pc, sizeof(pc), (void *)(s->go_sched + go->gobuf_pc)) ||
	    bpf_probe_read_user(&sp, sizeof(sp), (void *)(s->go_sched + go->gobuf_sp)) ||
	    bpf_probe_read_user(&bp, sizeof(bp), (void *)(s->go_sched + go->gobuf_bp)) || !pc || !sp) {
		tp_count_error(TP_ERR_GO_HOP_FAILED);
		return 1;
	}
	s->ip = pc;
	s->sp = sp;
	s->bp = bp;
	s->go_frameless = frameless;
	tp_count_error(TP_CTR_GO_HOPS);
	return 0;
}

/* Go: arms the hop when the current g (from TLS) is its M's g0 and the M
 * runs a goroutine (m.curg). Any unreadable word: no hop. */
static __always_inline void tp_go_arm(struct tp_unwind_scratch *s)
{
	struct tp_proc_maps *pm = bpf_map_lookup_elem(&proc_maps, &s->tgid);
	struct task_struct *task;
	__u64 fsbase, g = 0, m = 0, g0 = 0, curg = 0, lo = 0, hi = 0;
	struct tp_go_info *go;

	s->go_armed = 0;
	s->go_frameless = 0;
	if (!pm || !pm->go.enabled)
		return;
	go = &pm->go;
	task = bpf_get_current_task_btf();
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + go->tls_g)) || !g)
		return;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(g + go->g_m)) || !m)
		return;
	if (bpf_probe_read_user(&g0, sizeof(g0), (void *)(m + go->m_g0)))
		return;
	/* Only g0: on gsignal the interrupted context is in the signal frame,
	 * not in sched (which may be stale), so a signal handler's stack ends
	 * at the signal trampoline. */
	if (g != g0)
		return;
	if (bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + go->m_curg)) || !curg || curg == g)
		return;
	if (bpf_probe_read_user(&lo, sizeof(lo), (void *)(g + go->g_stack_lo)) ||
	    bpf_probe_read_user(&hi, sizeof(hi), (void *)(g + go->g_stack_hi)))
		return;
	s->go_lo = lo;
	s->go_hi = hi;
	s->go_sched = curg + go->g_sched;
	/* The walk reads only the scratch: no proc_maps pointer stays live
	 * across the Go checks. */
	__builtin_memcpy(&s->go, go, sizeof(s->go));
	s->go_armed = 1;
}

static long tp_unwind_step(__u32 index, void *unused)
{
	struct tp_unwind_scratch *s = tp_scratch();
	struct tp_frame_rule rule;
	struct tp_unwind_row *row;
	__u64 ip, cfa = 0, ra = 0, next_bp;
	__u32 n;

	if (!s)
		return 1;
	ip = s->ip;
	n = s->user.len;
	if (ip && ip == s->uret_tramp && s->uret_next)
		s->ip = ip = tp_uretprobe_original(s);
	if (ip == 0)
		return 1;
	if (n >= TP_MAX_FRAMES) {
		s->user.flags |= TP_STACK_TRUNCATED;
		return 1;
	}
	s->user.ips[n & (TP_MAX_FRAMES - 1)] = ip;
	s->user.len = n + 1;

	if (s->go_frameless) {
		/* Go, right after a hop: this frame has no frame of its own yet
		 * (systemstack_switch, or a function stopped before its prologue
		 * by morestack); its return address is at sp. */
		s->go_frameless = 0;
		if (tp_read_word(&ra, s->sp)) {
			s->user.flags |= TP_STACK_READ_FAULT;
			return 1;
		}
		s->sp += 8;
		s->ip = ra;
		return 0;
	}

	if (s->go_armed) {
		/* Go on the system stack: a switch function is where g0's frame
		 * chain ends; the goroutine's frames go on from its sched. */
		__u64 at = ip - (n ? 1 : 0);
		__s32 hop = -1; /* the switch function's frameless flag */
		for (int i = 0; i < TP_GO_MAX_SWITCH; i++) {
			if (i < s->go.nswitch && at >= s->go.sw[i].start && at < s->go.sw[i].end)
				hop = s->go.sw[i].frameless;
		}
		if (hop >= 0)
			return tp_go_hop(s, hop);
	}

	tp_frame_rule_get(s, ip, n, &rule);
	if (rule.no_mapping)
		s->user.flags |= TP_STACK_NO_MAPPING;
	row = &rule.row;
	if (row->cfa_type == TP_CFA_UNSUPPORTED)
		tp_count_error(TP_ERR_UNWIND_EXPR_UNSUPPORTED);
	if (row->cfa_type != TP_CFA_INVALID && row->cfa_type != TP_CFA_UNSUPPORTED) {
		__u8 type = row->cfa_type;
		__s32 off = row->cfa_offset;
		if (type == TP_CFA_END)
			return 1;
		if (type == TP_CFA_RSP) {
			cfa = s->sp + off;
		} else if (type == TP_CFA_RBP) {
			cfa = s->bp + off;
		} else if (type == TP_CFA_DEREF_RSP || type == TP_CFA_DEREF_RBP) {
			/* CFA = *(reg + inner) + outer: the pre-realignment rsp saved in the frame. */
			__u64 base = (type == TP_CFA_DEREF_RSP ? s->sp : s->bp) + TP_CFA_DEREF_INNER(off);
			if (tp_read_word(&cfa, base)) {
				s->user.flags |= TP_STACK_READ_FAULT;
				return 1;
			}
			cfa += TP_CFA_DEREF_OUTER(off);
		} else { /* TP_CFA_PLT */
			cfa = s->sp + 8 + (((ip & 15) >= (__u64)off) ? 8 : 0);
		}
		if (tp_read_word(&ra, cfa - 8)) {
			s->user.flags |= TP_STACK_READ_FAULT;
			return 1;
		}
		if (row->rbp_rule == TP_RBP_OFFSET) {
			if (tp_read_word(&next_bp, cfa + row->rbp_offset))
				next_bp = 0;
			s->bp = next_bp;
		} else if (row->rbp_rule == TP_RBP_UNDEF) {
			s->bp = 0;
		}
		if (cfa <= s->sp)
			return 1; /* the stack must grow towards the root */
		s->sp = cfa;
		s->ip = ra;
		return 0;
	}

	/* Frame-pointer step: [bp] is the caller's bp, [bp+8] the return address. */
	if (s->go_armed && (s->bp < s->go_lo || s->bp >= s->go_hi))
		return tp_go_hop(s, 0); /* the chain left g0's stack */
	if (s->bp == 0 || s->bp < s->sp)
		return 1;
	if (tp_read_word(&next_bp, s->bp) ||
	    tp_read_word(&ra, s->bp + 8)) {
		s->user.flags |= TP_STACK_READ_FAULT;
		return 1;
	}
	s->user.flags |= TP_STACK_USED_FP;
	s->sp = s->bp + 16;
	s->bp = next_bp;
	s->ip = ra;
	return 0;
}

static __always_inline __u64 tp_hash_stack(struct tp_stack *st, __u64 seed)
{
	__u64 h = 0xcbf29ce484222325ULL ^ seed;
	__u32 len = st->len;
	for (int i = 0; i < TP_MAX_FRAMES; i++) {
		if (i >= len)
			break;
		h ^= st->ips[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h ? h : 1;
}

/* Stores st under its hash; returns the hash, or 0 if the store is full. */
static __always_inline __u64 tp_store_stack(struct tp_stack *st, __u64 seed)
{
	struct tp_stack *existing;
	__u64 h;
	if (st->len == 0)
		return 0;
	h = tp_hash_stack(st, seed);
	existing = bpf_map_lookup_elem(&stacks, &h);
	if (existing) {
		/* A cheap collision check: same hash, different shape. Counted,
		 * not resolved; at 64 bits it should stay zero. */
		if (existing->len != st->len || existing->ips[0] != st->ips[0])
			tp_count_error(TP_ERR_STACK_COLLISION);
		return h;
	}
	/* An update may lose a race with another CPU (EEXIST: fine); only a
	 * stack that is still missing afterwards was dropped. */
	bpf_map_update_elem(&stacks, &h, st, BPF_NOEXIST);
	if (!bpf_map_lookup_elem(&stacks, &h)) {
		tp_count_error(TP_ERR_STACKS_FULL);
		return 0;
	}
	return h;
}

/* Unwinds the current task's user stack from its user-mode registers and
 * stores it. Returns the stack's hash, or 0. */
static __always_inline __u64 tp_user_stack(__u32 tgid, __u64 ip, __u64 sp, __u64 bp)
{
	struct tp_unwind_scratch *s = tp_scratch();
	__u64 h;
	if (!s)
		return 0;
	s->ip = ip;
	s->sp = sp;
	s->bp = bp;
	s->tgid = tgid;
	tp_frame_cache_begin(s);
	s->user.len = 0;
	s->user.flags = 0;
	tp_uretprobe_init(s);
	tp_go_arm(s);
	bpf_loop(TP_MAX_FRAMES + 1, tp_unwind_step, NULL, 0);
	if (s->user.flags & TP_STACK_TRUNCATED)
		tp_count_error(TP_ERR_UNWIND_TRUNCATED);
	if (s->user.flags & TP_STACK_NO_MAPPING)
		tp_count_error(TP_ERR_UNWIND_NO_MAPPING);
	if (s->user.flags & TP_STACK_READ_FAULT)
		tp_count_error(TP_ERR_UNWIND_READ_FAULT);
	if (s->user.len == 0) {
		tp_count_error(TP_ERR_USER_STACK_EMPTY);
		return 0;
	}
	h = tp_store_stack(&s->user, 0);
	return h;
}

/* The current task's user stack, taking registers from its saved user-mode
 * pt_regs (valid in any context where the task entered the kernel). */
static __always_inline __u64 tp_current_user_stack(__u32 tgid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 ip, sp, bp;
	if (!regs)
		return 0;
	ip = BPF_CORE_READ(regs, ip);
	sp = BPF_CORE_READ(regs, sp);
	bp = BPF_CORE_READ(regs, bp);
	return tp_user_stack(tgid, ip, sp, bp);
}

#ifdef TP_UNWIND_CACHE
/* Whether entry e (same thread, registers and generation) still holds: the
 * words its walk read are all unchanged. One bulk read of their span. */
static __always_inline bool tp_ucache_valid(struct tp_ucache_scratch *c, struct tp_ucache_entry *e)
{
	__u32 span = e->span, n = e->nwords;
	if (span == 0 || span > TP_UCACHE_SPAN || n == 0 || n > TP_UCACHE_WORDS)
		return false;
	if (bpf_probe_read_user(c->buf, span, (void *)e->lo))
		return false;
	for (int i = 0; i < TP_UCACHE_WORDS; i++) {
		__u64 v;
		if (i >= n)
			break;
		__builtin_memcpy(&v, &c->buf[e->off[i] & (TP_UCACHE_SPAN - 1)], sizeof(v));
		if (v != e->val[i])
			return false;
	}
	/* The stack itself must still be stored (user space prunes). */
	return bpf_map_lookup_elem(&stacks, &e->stack) != NULL;
}

/* The way of the thread's cache that holds a walk from these registers,
 * else the one a new walk replaces (*found = false). */
static __always_inline struct tp_ucache_entry *tp_ucache_way(struct tp_ucache *uc, __u64 ip, __u64 sp, __u64 bp,
							     bool *found)
{
	__u32 victim = TP_UCACHE_WAYS, way = TP_UCACHE_WAYS;
	for (int i = 0; i < TP_UCACHE_WAYS; i++) {
		struct tp_ucache_entry *e = &uc->way[i];
		if (e->stack && e->ip == ip && e->sp == sp && e->bp == bp) {
			way = i;
			break;
		}
		if (!e->stack && victim == TP_UCACHE_WAYS)
			victim = i;
	}
	*found = way < TP_UCACHE_WAYS;
	if (way == TP_UCACHE_WAYS)
		way = victim < TP_UCACHE_WAYS ? victim : uc->next++;
	uc->cur = way;
	way = *(volatile __u32 *)&uc->cur;
	return &uc->way[way & (TP_UCACHE_WAYS - 1)];
}

/* Records the walk just done (c->addr/val) in way e. */
static __always_inline void tp_ucache_store(struct tp_ucache_scratch *c, struct tp_ucache_entry *e, __u32 tgid,
					    __u32 generation, __u64 ip, __u64 sp, __u64 bp, __u64 stack)
{
	__u64 lo = ~0ULL, hi = 0;
	__u32 n = c->n;
	e->stack = 0; /* stays empty unless this walk is kept */
	if (c->bad || n == 0 || n > TP_UCACHE_WORDS || !stack)
		return;
	for (int i = 0; i < TP_UCACHE_WORDS; i++) {
		__u64 a;
		if (i >= n)
			break;
		a = c->addr[i];
		if (a < lo)
			lo = a;
		if (a > hi)
			hi = a;
	}
	if (hi - lo + 8 > TP_UCACHE_SPAN) {
		tp_count_error(TP_CTR_UNWIND_CACHE_UNCACHEABLE);
		return;
	}
	for (int i = 0; i < TP_UCACHE_WORDS; i++) {
		if (i >= n)
			break;
		e->off[i] = c->addr[i] - lo;
		e->val[i] = c->val[i];
	}
	e->ip = ip;
	e->sp = sp;
	e->bp = bp;
	e->stack = stack;
	e->lo = lo;
	e->tgid = tgid;
	e->generation = generation;
	e->span = hi - lo + 8;
	e->nwords = n;
}

/* tp_current_user_stack with the per-thread cache (see struct
 * tp_ucache_entry): the same stack hash, without the walk when the thread
 * is where its last walk found it. */
static __always_inline __u64 tp_current_user_stack_cached(__u32 tgid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct tp_ucache_scratch *c = tp_ucache_scratch();
	struct tp_ucache_entry *e;
	struct tp_ucache *uc;
	struct tp_proc_maps *pm;
	bool found;
	__u32 generation;
	__u64 ip, sp, bp, h;
	if (!regs || !c)
		return 0;
	/* bpf_task_pt_regs returns a BTF pointer: plain loads. */
	ip = regs->ip;
	sp = regs->sp;
	bp = regs->bp;
	pm = bpf_map_lookup_elem(&proc_maps, &tgid);
	/* Go walks read TLS and runtime words, uretprobe walks kernel lists:
	 * neither is recorded, so neither is cached. */
	if (!pm || pm->go.enabled ||
	    (bpf_core_type_exists(struct return_instance) && task->utask && task->utask->return_instances))
		return tp_user_stack(tgid, ip, sp, bp);
	generation = pm->generation;
	uc = bpf_task_storage_get(&ucache, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!uc)
		return tp_user_stack(tgid, ip, sp, bp);
	e = tp_ucache_way(uc, ip, sp, bp, &found);
	if (found && e->tgid == tgid && e->generation == generation) {
		if (tp_ucache_valid(c, e)) {
			tp_count_error(TP_CTR_UNWIND_CACHE_HITS);
			return e->stack;
		}
	}
	c->n = 0;
	c->bad = 0;
	h = tp_user_stack(tgid, ip, sp, bp);
	tp_ucache_store(c, e, tgid, generation, ip, sp, bp, h);
	c->bad = 1; /* walks outside this function are not recorded */
	return h;
}
#endif

/* The current kernel stack via the kernel's own unwinder (ORC). */
static __always_inline __u64 tp_kernel_stack(void *ctx)
{
	struct tp_unwind_scratch *s = tp_scratch();
	long ret;
	if (!s)
		return 0;
	ret = bpf_get_stack(ctx, s->kern.ips, sizeof(s->kern.ips), 0);
	if (ret <= 0) {
		tp_count_error(TP_ERR_KERNEL_STACK_FAIL);
		return 0;
	}
	s->kern.len = ret / sizeof(__u64);
	s->kern.flags = 0;
	return tp_store_stack(&s->kern, 0x6b65726e656cULL /* "kernel" */);
}

#endif /* TICKPROBE_UNWIND_BPF_H */
