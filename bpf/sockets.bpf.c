// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Sockets family (bpf/include/sockets.h).
 *
 * Blocking: sys_enter of a socket syscall by a target thread resolves
 * fd -> file -> socket -> sock through task->files (read/write/readv/writev
 * on anything but a socket are ignored) and opens a per-thread record;
 * sched_switch adds the time the thread then spends switched out (and takes
 * its user stack at the first switch-out, so only calls that block pay for
 * the unwind); sys_exit folds the call into the active count map under
 * (thread, op, socket, stack) and into a per-(tgid, op) histogram of the
 * blocked time. A syscall entered before attach has no record and is not
 * measured; one still in flight at the end is not either.
 *
 * TCP facts: connections are learned from the targets' own syscalls (any
 * socket call on a TCP socket, and the new socket of accept), in the bounded
 * `conns` hash keyed by struct sock address. The tcp and sock tracepoints
 * fire in softirq as often as in the owner's context, so they filter by that
 * key, never by the current task. Per-process totals (opened, closed,
 * resets, retransmits, zero windows) are kept apart from the table, so they
 * stay exact when a connection does not fit.
 *
 * Everything attaches globally (tracepoints); the shared targets map scopes
 * it. tp_btf is required for the tcp/sock tracepoints (the struct sock
 * argument); there is no raw_tp variant. */
#include "common.bpf.h"
#include "unwind.bpf.h"
#include "hist.bpf.h"
#include "count_slots.bpf.h"
#include "sockets.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* tcp_probe fires on every incoming segment: a connection's facts are read
 * at most once per this many ns from it (zero windows are checked always). */
const volatile __u64 tcp_probe_gap_ns = 1000000;
/* Calls that blocked at least this long get their user stack. It is taken
 * at syscall exit, in the thread's own context (its user registers were
 * saved at entry and its memory is current), so a call that blocked only
 * briefly costs no unwind: a ping-pong server that blocks for microseconds
 * on every recv would otherwise pay a full CFI walk per call. Their time is
 * still counted per peer and operation, under no stack. */
const volatile __u64 stack_min_block_ns = 100000;

#ifndef SOCK_MAX_COUNTS
#define SOCK_MAX_COUNTS 8192
#endif
#ifndef SOCK_MAX_THREADS
#define SOCK_MAX_THREADS 16384
#endif
#ifndef SOCK_MAX_CONNS
#define SOCK_MAX_CONNS 8192
#endif
#define SOCK_MAX_IOV 8 /* iovecs summed for writev/sendmsg; beyond: length unknown */

#define EAGAIN_ 11
#define EINPROGRESS_ 115
#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000
#define AF_INET_ 2
#define AF_INET6_ 10
#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7
#define TCP_LISTEN_ 10

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SOCK_MAX_COUNTS);
	__type(key, struct sock_agg_key);
	__type(value, struct sock_agg_value);
};
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");

/* Preallocated: updated from sched_switch. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SOCK_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct sock_inflight);
} inflight SEC(".maps");

/* Explicitly bounded (not LRU), so a connection that does not fit is
 * counted (tracking_map_full) instead of silently pushing another out.
 * User space deletes closed connections after folding them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SOCK_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct sock_conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sock_hist_key);
	__type(value, struct tp_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct sock_proc_totals);
} totals SEC(".maps");

/* Zeroed templates for inserts too big for the BPF stack. */
struct sock_zero {
	struct tp_hist hist;
	struct sock_conn conn;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_zero);
} zero SEC(".maps");

/* Set by user space once everything is attached, cleared at the end of a
 * one-shot measurement: the window's edges are then exact (a call counts
 * iff it entered and returned while this was set). */
__u32 enabled = 0;

/* ------------------------------------------------------------ helpers */

static __always_inline struct sock_proc_totals *totals_of(__u32 tgid)
{
	struct sock_proc_totals *t = bpf_map_lookup_elem(&totals, &tgid), init = {};
	if (t)
		return t;
	bpf_map_update_elem(&totals, &tgid, &init, BPF_NOEXIST);
	t = bpf_map_lookup_elem(&totals, &tgid);
	if (!t)
		tp_count_error(TP_ERR_COUNTS_FULL);
	return t;
}

/* The struct sock behind fd of the current task, or NULL when fd is not a
 * socket (S_ISSOCK on the inode: works without the socket_file_ops symbol). */
static __always_inline struct sock *fd_sock(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **arr, *f = NULL;
	struct socket *so;
	unsigned int max_fds;
	umode_t mode;

	if (!fdt || fd < 0)
		return NULL;
	max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]) || !f)
		return NULL;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	if (!so)
		return NULL;
	return BPF_CORE_READ(so, sk);
}

static __always_inline void read_tuple(struct sock *sk, struct sock_tuple *t)
{
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->protocol = (__u8)BPF_CORE_READ(sk, sk_protocol);
	t->type = (__u8)BPF_CORE_READ(sk, sk_type);
	if (t->family == AF_INET_ || t->family == AF_INET6_) {
		t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
		t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
	/* Explicit sizes: BPF_CORE_READ_INTO on a u8 array would copy one byte. */
	if (t->family == AF_INET_) {
		bpf_core_read(t->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->daddr, 4, &sk->__sk_common.skc_daddr);
	} else if (t->family == AF_INET6_) {
		bpf_core_read(t->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

static __always_inline bool is_tcp(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return (family == AF_INET_ || family == AF_INET6_) && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* The peer's window: checked on every look (cheap), since a zero window is
 * the event that matters most and can be short. */
static __always_inline void check_zero_window(struct sock *sk, struct sock_conn *c)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 wnd = BPF_CORE_READ(tp, snd_wnd);
	c->snd_wnd = wnd;
	if (wnd == 0 && c->state == TCP_ESTABLISHED_) {
		if (!(c->flags & SOCK_CONN_ZERO_WND)) {
			struct sock_proc_totals *t = totals_of(c->tgid);
			c->flags |= SOCK_CONN_ZERO_WND;
			__sync_fetch_and_add(&c->zero_window_events, 1);
			if (t)
				__sync_fetch_and_add(&t->zero_window_events, 1);
		}
	} else if (wnd) {
		c->flags &= ~SOCK_CONN_ZERO_WND;
	}
}

static __always_inline void read_tcp_facts(struct sock *sk, struct sock_conn *c)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 una = BPF_CORE_READ(tp, snd_una);
	__u32 queued;
	c->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	check_zero_window(sk, c);
	queued = BPF_CORE_READ(tp, write_seq) - una;
	c->send_queue = queued;
	if (queued > c->max_send_queue)
		c->max_send_queue = queued;
	c->unacked = BPF_CORE_READ(tp, snd_nxt) - una;
	c->rcv_wnd = BPF_CORE_READ(tp, rcv_wnd);
	c->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3; /* stored << 3 */
	c->snd_cwnd = BPF_CORE_READ(tp, snd_cwnd);
}

/* Learns (or refreshes) a TCP connection of tgid. A closed entry under the
 * same address means the sock was freed and reused before user space folded
 * it: the old one is overwritten (counted as evicted; totals stay exact). */
static __always_inline struct sock_conn *learn_conn(struct sock *sk, __u32 tgid, bool opened, __u64 now)
{
	__u64 key = (__u64)sk;
	struct sock_conn *c;
	struct sock_zero *z;
	__u32 zk = 0;

	if (!sk || !is_tcp(sk))
		return NULL;
	c = bpf_map_lookup_elem(&conns, &key);
	if (c && !(c->flags & SOCK_CONN_CLOSED))
		return c;
	if (c)
		tp_count_error(TP_ERR_EVICTED);
	z = bpf_map_lookup_elem(&zero, &zk);
	if (!z)
		return NULL;
	__builtin_memset(&z->conn, 0, sizeof(z->conn));
	read_tuple(sk, &z->conn.tuple);
	z->conn.tgid = tgid;
	z->conn.first_seen_ns = now;
	if (opened) {
		z->conn.flags = SOCK_CONN_OPENED;
		z->conn.opened_ns = now;
	}
	if (bpf_map_update_elem(&conns, &key, &z->conn, BPF_ANY)) {
		struct sock_proc_totals *t = totals_of(tgid);
		tp_count_error(TP_ERR_TRACK_FULL);
		if (t)
			__sync_fetch_and_add(&t->untracked_conns, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, &key);
}

/* ------------------------------------------------------------ syscalls */

static __always_inline int enter_call(__u32 op, int fd, struct sock *sk, __u64 requested)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct sock_inflight in = {};

	in.enter_ns = bpf_ktime_get_ns();
	in.sk = (__u64)sk;
	in.requested = requested;
	in.tgid = pid_tgid >> 32;
	in.op = op;
	in.fd = fd;
	if (bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY))
		tp_count_error(TP_ERR_START_FULL);
	return 0;
}

/* The target socket behind fd, or NULL (not a target, not a socket). */
static __always_inline struct sock *target_sock(int fd)
{
	if (!enabled || !tp_is_target(bpf_get_current_pid_tgid() >> 32))
		return NULL;
	return fd_sock(fd);
}

/* Sum of iov_len over a user iovec array; ~0 when it has more than
 * SOCK_MAX_IOV entries or is unreadable (partial writes go undetected). */
static __always_inline __u64 iov_total(const struct iovec *iov, __u64 count)
{
	__u64 total = 0;
	if (count > SOCK_MAX_IOV)
		return ~0ULL;
	for (int i = 0; i < SOCK_MAX_IOV; i++) {
		struct iovec v;
		if (i >= count)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
			return ~0ULL;
		total += v.iov_len;
	}
	return total;
}

static __always_inline __u64 msg_total(const struct user_msghdr *msg)
{
	struct user_msghdr m;
	if (bpf_probe_read_user(&m, sizeof(m), msg))
		return ~0ULL;
	return iov_total(m.msg_iov, m.msg_iovlen);
}

static __always_inline void agg_add(void *map, struct sock_agg_key *key, __u64 wall, __u64 blocked, long ret,
				    __u64 requested, __u32 op, __u64 now)
{
	struct sock_agg_value *v = bpf_map_lookup_elem(map, key), init = {};
	if (!v) {
		bpf_map_update_elem(map, key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(map, key);
		if (!v) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->calls, 1);
	__sync_fetch_and_add(&v->wall_ns, wall);
	if (blocked) {
		__sync_fetch_and_add(&v->blocked_ns, blocked);
		__sync_fetch_and_add(&v->blocked_calls, 1);
		if (blocked > v->max_blocked_ns)
			v->max_blocked_ns = blocked; /* racy max: fine for a statistic */
	}
	if (ret > 0 && op <= SOCK_OP_READV)
		__sync_fetch_and_add(&v->bytes, ret);
	if (ret == -EAGAIN_) {
		__sync_fetch_and_add(&v->eagain, 1);
		if (SOCK_OP_IS_SEND(op))
			tp_count_error(TP_CTR_SOCK_EAGAIN);
	} else if (ret < 0 && !(op == SOCK_OP_CONNECT && ret == -EINPROGRESS_)) {
		__sync_fetch_and_add(&v->errors, 1);
	}
	if (SOCK_OP_IS_SEND(op) && ret >= 0 && requested != ~0ULL && (__u64)ret < requested) {
		__sync_fetch_and_add(&v->partial, 1);
		tp_count_error(TP_CTR_SOCK_PARTIAL);
	}
	v->last_ns = now;
}

static __always_inline void hist_add(__u32 tgid, __u32 op, __u64 blocked)
{
	struct sock_hist_key key = {.tgid = tgid, .op = op};
	struct tp_hist *h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		__u32 zk = 0;
		struct sock_zero *z = bpf_map_lookup_elem(&zero, &zk);
		if (!z)
			return;
		bpf_map_update_elem(&hists, &key, &z->hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			tp_count_error(TP_ERR_COUNTS_FULL);
			return;
		}
	}
	tp_hist_add(h, blocked);
}

static __always_inline int exit_call(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct sock_inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	struct sock_agg_key key = {};
	struct sock_conn *c;
	struct sock *sk;
	__u64 now, blocked;
	__s32 slot;

	if (!in)
		return 0;
	if (!enabled) {
		bpf_map_delete_elem(&inflight, &tid);
		return 0;
	}
	now = bpf_ktime_get_ns();
	blocked = in->blocked_ns;
	sk = (struct sock *)in->sk;
	key.tgid = in->tgid;
	key.tid = tid;
	key.sk = in->sk;
	if (blocked && blocked >= stack_min_block_ns)
		key.user_stack = tp_current_user_stack(in->tgid);
	key.op = in->op;
	key.fd = in->fd;
	read_tuple(sk, &key.tuple);
	slot = tp_slot_enter();
	if (slot == 1)
		agg_add(&counts_1, &key, now - in->enter_ns, blocked, ret, in->requested, key.op, now);
	else if (slot == 0)
		agg_add(&counts_0, &key, now - in->enter_ns, blocked, ret, in->requested, key.op, now);
	tp_slot_exit(slot);
	tp_count_error(TP_CTR_SOCK_SYSCALLS);
	if (blocked) {
		tp_count_error(TP_CTR_SOCK_BLOCKS);
		hist_add(key.tgid, key.op, blocked);
	}

	if (key.op == SOCK_OP_ACCEPT) {
		/* The new connection: already ESTABLISHED, so its opening was
		 * not seen by inet_sock_set_state; count it here. */
		if (ret >= 0) {
			struct sock *nsk = fd_sock((int)ret);
			struct sock_proc_totals *t;
			c = learn_conn(nsk, key.tgid, true, now);
			if (c)
				read_tcp_facts(nsk, c);
			if (nsk && is_tcp(nsk) && (t = totals_of(key.tgid)))
				__sync_fetch_and_add(&t->opened, 1);
		}
	} else if (key.tuple.protocol == IPPROTO_TCP) {
		c = learn_conn(sk, key.tgid, key.op == SOCK_OP_CONNECT, now);
		if (c)
			read_tcp_facts(sk, c);
	}
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

#define ENTER_FD_LEN(name, op, lenarg)                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                             \
	int sock_enter_##name(struct trace_event_raw_sys_enter *ctx)            \
	{                                                                       \
		int fd = (int)ctx->args[0];                                     \
		struct sock *sk = target_sock(fd);                              \
		if (!sk)                                                        \
			return 0;                                               \
		return enter_call(op, fd, sk, lenarg);                          \
	}

#define EXIT(name)                                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int sock_exit_##name(struct trace_event_raw_sys_exit *ctx)              \
	{                                                                       \
		return exit_call(ctx->ret);                                     \
	}

ENTER_FD_LEN(sendto, SOCK_OP_SEND, (__u64)ctx->args[2])
ENTER_FD_LEN(write, SOCK_OP_WRITE, (__u64)ctx->args[2])
ENTER_FD_LEN(writev, SOCK_OP_WRITEV, iov_total((const struct iovec *)ctx->args[1], ctx->args[2]))
ENTER_FD_LEN(sendmsg, SOCK_OP_SENDMSG, msg_total((const struct user_msghdr *)ctx->args[1]))
ENTER_FD_LEN(recvfrom, SOCK_OP_RECV, ~0ULL)
ENTER_FD_LEN(recvmsg, SOCK_OP_RECVMSG, ~0ULL)
ENTER_FD_LEN(read, SOCK_OP_READ, ~0ULL)
ENTER_FD_LEN(readv, SOCK_OP_READV, ~0ULL)

/* connect: learned at entry, so inet_sock_set_state sees SYN_SENT ->
 * ESTABLISHED (blocking or not) and counts the opening. */
SEC("tracepoint/syscalls/sys_enter_connect")
int sock_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	int fd = (int)ctx->args[0];
	struct sock *sk = target_sock(fd);
	if (!sk)
		return 0;
	learn_conn(sk, bpf_get_current_pid_tgid() >> 32, false, bpf_ktime_get_ns());
	return enter_call(SOCK_OP_CONNECT, fd, sk, ~0ULL);
}

/* Listen-queue overflows have no tracepoint (the kernel only bumps
 * LINUX_MIB_LISTENOVERFLOWS); what accept() can see is a queue at its
 * limit when it is called. */
static __always_inline int enter_accept(int fd)
{
	struct sock *sk = target_sock(fd);
	if (!sk)
		return 0;
	if (BPF_CORE_READ(sk, sk_ack_backlog) >= BPF_CORE_READ(sk, sk_max_ack_backlog)) {
		struct sock_proc_totals *t = totals_of(bpf_get_current_pid_tgid() >> 32);
		if (t)
			__sync_fetch_and_add(&t->listen_full_at_accept, 1);
	}
	return enter_call(SOCK_OP_ACCEPT, fd, sk, ~0ULL);
}

SEC("tracepoint/syscalls/sys_enter_accept")
int sock_enter_accept(struct trace_event_raw_sys_enter *ctx)
{
	return enter_accept((int)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int sock_enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	return enter_accept((int)ctx->args[0]);
}

EXIT(sendto)
EXIT(write)
EXIT(writev)
EXIT(sendmsg)
EXIT(recvfrom)
EXIT(recvmsg)
EXIT(read)
EXIT(readv)
EXIT(connect)
EXIT(accept)
EXIT(accept4)

/* ------------------------------------------------------------ scheduler */

SEC("tp_btf/sched_switch")
int BPF_PROG(sock_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 prev_pid = prev->pid, next_pid = next->pid;
	struct sock_inflight *in;
	__u64 now = bpf_ktime_get_ns();

	/* Switch-out inside a socket call: the blocked time starts. */
	in = bpf_map_lookup_elem(&inflight, &prev_pid);
	if (in && !in->off_since_ns)
		in->off_since_ns = now;
	in = bpf_map_lookup_elem(&inflight, &next_pid);
	if (in && in->off_since_ns) {
		in->blocked_ns += now - in->off_since_ns;
		in->off_since_ns = 0;
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sock_thread_exit, struct task_struct *task)
{
	__u32 pid = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&inflight, &pid);
	return 0;
}

/* ------------------------------------------------------------ TCP facts */

static __always_inline struct sock_conn *conn_of(const struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct sock_conn *c;
	if (!sk)
		return NULL;
	c = bpf_map_lookup_elem(&conns, &key);
	if (c)
		tp_count_error(TP_CTR_TCP_EVENTS);
	return c;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(sock_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	struct sock_conn *c = conn_of(sk);
	__u64 now;
	if (!c)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - c->last_probe_ns < tcp_probe_gap_ns) {
		check_zero_window(sk, c);
		tp_count_error(TP_CTR_TCP_PROBE_SAMPLED_OUT);
		return 0;
	}
	c->last_probe_ns = now;
	read_tcp_facts(sk, c);
	__sync_fetch_and_add(&c->probes, 1);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(sock_tcp_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	struct sock_conn *c = conn_of(sk);
	struct sock_proc_totals *t;
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->retransmits, 1);
	if ((t = totals_of(c->tgid)))
		__sync_fetch_and_add(&t->retransmits, 1);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(sock_tcp_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct sock_conn *c = conn_of(sk);
	struct sock_proc_totals *t;
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->resets_sent, 1);
	if ((t = totals_of(c->tgid)))
		__sync_fetch_and_add(&t->resets_sent, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(sock_tcp_receive_reset, struct sock *sk)
{
	struct sock_conn *c = conn_of(sk);
	struct sock_proc_totals *t;
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->resets_received, 1);
	if ((t = totals_of(c->tgid)))
		__sync_fetch_and_add(&t->resets_received, 1);
	return 0;
}

SEC("tp_btf/sock_rcvqueue_full")
int BPF_PROG(sock_rcvqueue_full, struct sock *sk, struct sk_buff *skb)
{
	struct sock_conn *c = conn_of(sk);
	if (c)
		__sync_fetch_and_add(&c->rcvqueue_full, 1);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct sock_conn *c = conn_of(sk);
	struct sock_proc_totals *t;
	__u64 now;
	if (!c)
		return 0;
	now = bpf_ktime_get_ns();
	c->state = newstate;
	if (oldstate == TCP_SYN_SENT_ && newstate == TCP_ESTABLISHED_) {
		/* connect() completed: the tuple is final now. */
		read_tuple((struct sock *)sk, &c->tuple);
		c->flags |= SOCK_CONN_OPENED;
		c->opened_ns = now;
		if ((t = totals_of(c->tgid)))
			__sync_fetch_and_add(&t->opened, 1);
	} else if (newstate == TCP_CLOSE_ && !(c->flags & SOCK_CONN_CLOSED)) {
		c->flags |= SOCK_CONN_CLOSED;
		c->closed_ns = now;
		if ((t = totals_of(c->tgid)))
			__sync_fetch_and_add(&t->closed, 1);
	}
	return 0;
}
