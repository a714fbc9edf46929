// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TLS family: OpenSSL 3 handshakes, per SSL object, end to end.
 *
 * The probe point is OpenSSL's handshake function itself (what
 * SSL_set_accept_state / SSL_set_connect_state store in s->handshake_func:
 * ossl_statem_accept / ossl_statem_connect, or the state_machine() they
 * tail-call). SSL_do_handshake, SSL_accept and SSL_connect call it, and so do
 * SSL_read / SSL_write (and their _ex forms) while the object is still in
 * init: implicit handshakes are seen without probing the data path, and
 * each handshake step costs one probe hit.
 *
 *  - start: the first handshake call on an object whose state machine is
 *    fresh (hand_state == TLS_ST_BEFORE and not in the error state); calls
 *    on an object that finished its handshake (TLS 1.3 post-handshake
 *    messages, renegotiation) are counted and ignored;
 *  - completed: a handshake call returned 1;
 *  - failed: a call returned <= 0 and the state machine is in its fatal
 *    error state (MSG_FLOW_ERROR: OpenSSL sent or received a fatal alert,
 *    hit a protocol error, or - OpenSSL 3 default - an unexpected EOF);
 *    WANT_READ / WANT_WRITE leave the state alone, so non-blocking servers
 *    are measured across all their calls;
 *  - abandoned: SSL_free of an object whose handshake started and neither
 *    completed nor failed.
 *
 * On-CPU time is the wall time inside handshake calls minus the time the
 * thread spent switched out during them (sched_switch): exact, unlike
 * task->se.sum_exec_runtime, which only advances at scheduler events and
 * reads the same before and after a short call.
 *
 * The peer comes from the fd of the object's read BIO (BIO_set_fd ->
 * BIO_int_ctrl, then SSL_set0_rbio, which SSL_set_fd / SSL_set_bio use),
 * resolved in the kernel: task->files -> file -> socket -> sock. */
#include "common.bpf.h"
#include "unwind.bpf.h"
#include "count_slots.bpf.h"
#include <bpf/bpf_endian.h>
#include "tls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool collect_kernel = true;
/* Go 1.19 layouts (user space may set others before load): g.goid, the
 * data word of tls.Conn.conn (a net.Conn interface), and the path from a
 * *net.TCPConn to its fd: TCPConn.conn.fd (*netFD) -> netFD.pfd.Sysfd. */
const volatile __s32 go_goid_off = 152;
const volatile __s32 go_conn_data_off = 8;
const volatile __s32 go_netfd_sysfd_off = 16;

#ifndef TLS_MAX_CONNS
#define TLS_MAX_CONNS 65536
#endif
#ifndef TP_MAX_COUNTS
#define TP_MAX_COUNTS 16384
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TLS_MAX_CONNS);
	__type(key, struct tls_conn_key);
	__type(value, struct tls_conn);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} conns SEC(".maps");

/* (tgid, BIO *) -> fd, from BIO_set_fd: only a hint for the peer, so an
 * LRU map whose evictions cost nothing but an unknown peer. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct tls_conn_key);
	__type(value, __s32);
} bio_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tls_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct tls_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TP_MAX_COUNTS);
	__type(key, struct tls_sample_key);
	__type(value, __u64);
};
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");

/* Go handshakes in flight, by goroutine. LRU: a goroutine that panicked
 * out of a handshake never reaches a RET and ages out. 4096 handshakes in
 * flight at once (an LRU map is preallocated: ~160 B each); a RET that
 * finds no record (evicted, or in flight at attach) is counted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tls_conn_key);
	__type(value, struct tls_go_handshake);
} go_handshakes SEC(".maps");

/* Threads inside a handshake call now: sched_switch does nothing while 0. */
__u64 threads_in_call = 0;

static __always_inline struct tls_proc proc_layout(__u32 tgid)
{
	struct tls_proc unknown = {.statem_state_off = -1, .hand_state_off = -1};
	struct tls_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	return p ? *p : unknown;
}

static __always_inline __s32 read_ssl_int(__u64 ssl, __s32 off)
{
	__s32 v = -1;
	if (off < 0 || off > 65536)
		return -1;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(ssl + off)))
		return -1;
	return v;
}

#define TLS_S_IFMT 00170000
#define TLS_S_IFSOCK 0140000

static __always_inline void resolve_peer(struct tls_conn *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt;
	struct file **fd_array;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;
	__u32 max_fds;
	__u16 family;

	if (c->fd < 0 || c->peer.family)
		return;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return;
	max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((__u32)c->fd >= max_fds)
		return;
	fd_array = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fd_array[c->fd]) || !f)
		return;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & TLS_S_IFMT) != TLS_S_IFSOCK)
		return;
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == 2 /* AF_INET */) {
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->peer.addr, &daddr, 4);
	} else if (family == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&c->peer.addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return;
	}
	c->peer.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	c->peer.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->peer.family = family;
}

static __always_inline void finish(struct tls_conn_key *key, struct tls_conn *c, __u32 result, __u64 end_ns)
{
	struct tls_event *e;

	resolve_peer(c);
	tp_count_add(TP_CTR_TLS_HANDSHAKES, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
	} else {
		e->tgid = key->tgid;
		e->tid = c->last_tid;
		e->ssl = key->ssl;
		e->start_ns = c->start_ns;
		e->end_ns = end_ns;
		e->cpu_ns = c->cpu_ns;
		e->calls = c->calls;
		e->side = c->side;
		e->result = result;
		e->fd = c->fd;
		e->last_ret = c->last_ret;
		e->pad = 0;
		e->peer = c->peer;
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&conns, key);
}

static __always_inline int on_handshake_enter(__u64 ssl, __u32 side)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct tls_conn_key key = {.tgid = tgid, .ssl = ssl};
	struct tls_thread *t, tinit = {};
	struct tls_conn *c;
	__u64 now;

	if (!ssl || !tp_is_target(tgid))
		return 0;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t) {
		bpf_map_update_elem(&threads, &tid, &tinit, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&threads, &tid);
		if (!t) {
			tp_count_error(TP_ERR_START_FULL);
			return 0;
		}
	}
	if (t->active) {
		/* A handshake driven from inside another one's callback. */
		tp_count_error(TP_ERR_NESTING_LOST);
		return 0;
	}
	tp_count_add(TP_CTR_TLS_CALLS, 1);
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c || !c->start_ns) {
		/* Only a fresh state machine starts a handshake. */
		struct tls_proc layout = proc_layout(tgid);
		if (layout.hand_state_off >= 0) {
			__s32 hand_state = read_ssl_int(ssl, layout.hand_state_off);
			__s32 flow = read_ssl_int(ssl, layout.statem_state_off);
			if (hand_state != TLS_ST_BEFORE || flow == TLS_MSG_FLOW_ERROR) {
				tp_count_add(TP_CTR_TLS_POST_HANDSHAKE, 1);
				return 0;
			}
		}
		if (!c) {
			struct tls_conn init = {.fd = -1};
			if (bpf_map_update_elem(&conns, &key, &init, BPF_NOEXIST) && bpf_map_lookup_elem(&conns, &key) == NULL) {
				tp_count_error(TP_ERR_TRACK_FULL);
				return 0;
			}
			c = bpf_map_lookup_elem(&conns, &key);
			if (!c)
				return 0;
		}
	}
	now = bpf_ktime_get_ns();
	if (!c->start_ns) {
		c->start_ns = now;
		c->side = side;
		resolve_peer(c);
	}
	c->calls++;
	c->last_tid = tid;
	t->ssl = ssl;
	t->side = c->side;
	t->off_ns = 0;
	t->off_start_ns = 0;
	t->entry_ns = now;
	t->active = 1;
	__sync_fetch_and_add(&threads_in_call, 1);
	return 0;
}

/* state_machine(SSL *s, int server): both sides through one probe. */
SEC("uprobe")
int BPF_KPROBE(tls_machine_enter, __u64 ssl, int server)
{
	return on_handshake_enter(ssl, server ? TLS_SIDE_SERVER : TLS_SIDE_CLIENT);
}

/* ossl_statem_accept(SSL *s) */
SEC("uprobe")
int BPF_KPROBE(tls_accept_enter, __u64 ssl)
{
	return on_handshake_enter(ssl, TLS_SIDE_SERVER);
}

/* ossl_statem_connect(SSL *s) */
SEC("uprobe")
int BPF_KPROBE(tls_connect_enter, __u64 ssl)
{
	return on_handshake_enter(ssl, TLS_SIDE_CLIENT);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_handshake_exit, int ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct tls_thread *t = bpf_map_lookup_elem(&threads, &tid);
	struct tls_conn_key key = {.tgid = tgid};
	struct tls_conn *c;
	__u64 now, wall, off;

	if (!t || !t->active)
		return 0;
	t->active = 0;
	__sync_fetch_and_add(&threads_in_call, -1);
	now = bpf_ktime_get_ns();
	wall = now - t->entry_ns;
	off = t->off_ns < wall ? t->off_ns : wall;
	key.ssl = t->ssl;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	c->cpu_ns += wall - off;
	c->last_ns = now;
	c->last_ret = ret;
	if (ret == 1) {
		finish(&key, c, TLS_RESULT_COMPLETED, now);
	} else if (ret <= 0) {
		struct tls_proc layout = proc_layout(tgid);
		if (read_ssl_int(key.ssl, layout.statem_state_off) == TLS_MSG_FLOW_ERROR)
			finish(&key, c, TLS_RESULT_FAILED, now);
	}
	return 0;
}

/* SSL_free(SSL *s): the end of an object that never finished. */
SEC("uprobe")
int BPF_KPROBE(tls_free_enter, __u64 ssl)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tls_conn_key key = {.tgid = tgid, .ssl = ssl};
	struct tls_conn *c;
	struct tls_proc layout;
	__u32 result;

	if (!ssl)
		return 0;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (!c->start_ns) {
		bpf_map_delete_elem(&conns, &key);
		return 0;
	}
	layout = proc_layout(tgid);
	if (layout.statem_state_off >= 0)
		result = read_ssl_int(ssl, layout.statem_state_off) == TLS_MSG_FLOW_ERROR ? TLS_RESULT_FAILED
											    : TLS_RESULT_ABANDONED;
	else /* layout unknown: OpenSSL returns 0 for a controlled failure */
		result = c->last_ret == 0 ? TLS_RESULT_FAILED : TLS_RESULT_ABANDONED;
	finish(&key, c, result, bpf_ktime_get_ns());
	return 0;
}

/* BIO_int_ctrl(BIO *b, int cmd, long larg, int iarg): BIO_set_fd is
 * BIO_int_ctrl(b, BIO_C_SET_FD, close_flag, fd). */
SEC("uprobe")
int BPF_KPROBE(tls_bio_ctrl_enter, __u64 bio, int cmd, long larg, int fd)
{
	struct tls_conn_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ssl = bio};
	if (cmd != TLS_BIO_C_SET_FD || fd < 0)
		return 0;
	bpf_map_update_elem(&bio_fds, &key, &fd, BPF_ANY);
	return 0;
}

/* SSL_set0_rbio(SSL *s, BIO *rbio): reached from SSL_set_fd, SSL_set_rfd
 * and SSL_set_bio. */
SEC("uprobe")
int BPF_KPROBE(tls_set_rbio_enter, __u64 ssl, __u64 bio)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tls_conn_key bkey = {.tgid = tgid, .ssl = bio};
	struct tls_conn_key key = {.tgid = tgid, .ssl = ssl};
	struct tls_conn *c, init = {.fd = -1};
	__s32 *fd;

	if (!ssl || !bio)
		return 0;
	fd = bpf_map_lookup_elem(&bio_fds, &bkey);
	if (!fd)
		return 0;
	init.fd = *fd;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c) {
		if (bpf_map_update_elem(&conns, &key, &init, BPF_NOEXIST) && !bpf_map_lookup_elem(&conns, &key))
			tp_count_error(TP_ERR_TRACK_FULL);
		return 0;
	}
	if (c->fd != *fd) {
		c->fd = *fd;
		__builtin_memset(&c->peer, 0, sizeof(c->peer));
		if (c->start_ns)
			resolve_peer(c);
	}
	return 0;
}

/* ---------------------------------------------------------- Go crypto/tls */

static __always_inline __u64 go_goid(struct pt_regs *ctx)
{
	__u64 goid = 0;
	/* R14 is the current g in Go's ABIInternal code. */
	if (bpf_probe_read_user(&goid, sizeof(goid), (void *)(ctx->r14 + go_goid_off)))
		return 0;
	return goid;
}

/* The fd under a *tls.Conn whose conn is a *net.TCPConn; -1 if unreadable.
 * resolve_peer accepts only a socket, so another net.Conn yields no peer. */
static __always_inline __s32 go_conn_fd(__u64 conn)
{
	__u64 data = 0, netfd = 0;
	__s64 fd = -1;
	if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + go_conn_data_off)) || !data)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + go_netfd_sysfd_off)))
		return -1;
	return fd >= 0 && fd < 0x7fffffff ? (__s32)fd : -1;
}

/* Entry of (*Conn).serverHandshake / clientHandshake (cookie: the side);
 * the receiver in RAX. */
SEC("uprobe")
int tls_go_enter(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tls_conn_key key = {.tgid = tgid};
	struct tls_go_handshake h = {};

	if (!tp_is_target(tgid))
		return 0;
	key.ssl = go_goid(ctx);
	if (!key.ssl)
		return 0;
	tp_count_add(TP_CTR_TLS_CALLS, 1);
	/* A goroutine still in the map never returned (a panic unwound it). */
	if (bpf_map_lookup_elem(&go_handshakes, &key))
		tp_count_error(TP_ERR_NESTING_LOST);
	h.conn = ctx->ax;
	h.c.start_ns = bpf_ktime_get_ns();
	h.c.calls = 1;
	h.c.side = (__u32)bpf_get_attach_cookie(ctx);
	h.c.last_tid = (__u32)bpf_get_current_pid_tgid();
	h.c.fd = go_conn_fd(h.conn);
	resolve_peer(&h.c);
	if (bpf_map_update_elem(&go_handshakes, &key, &h, BPF_ANY))
		tp_count_error(TP_ERR_TRACK_FULL);
	return 0;
}

/* Each RET of those functions: the error they return is an interface in
 * RAX (type word) and RBX (data): nil = the handshake completed. */
SEC("uprobe")
int tls_go_exit(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tls_conn_key key = {.tgid = tgid};
	struct tls_go_handshake *h;
	struct tls_event *e;
	__u64 now = bpf_ktime_get_ns();

	key.ssl = go_goid(ctx);
	h = bpf_map_lookup_elem(&go_handshakes, &key);
	if (!h) {
		tp_count_error(TP_ERR_UNMATCHED_END);
		return 0;
	}
	resolve_peer(&h->c);
	tp_count_add(TP_CTR_TLS_HANDSHAKES, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		tp_count_error(TP_ERR_RINGBUF_FULL);
	} else {
		e->tgid = tgid;
		e->tid = (__u32)bpf_get_current_pid_tgid();
		e->ssl = h->conn;
		e->start_ns = h->c.start_ns;
		e->end_ns = now;
		e->cpu_ns = 0; /* unknown: the goroutine parks and moves between threads */
		e->calls = 1;
		e->side = h->c.side;
		e->result = ctx->ax == 0 ? TLS_RESULT_COMPLETED : TLS_RESULT_FAILED;
		e->fd = h->c.fd;
		e->last_ret = ctx->ax == 0 ? 1 : 0;
		e->pad = 0;
		e->peer = h->c.peer;
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&go_handshakes, &key);
	return 0;
}

/* Off-CPU time inside handshake calls, so on-CPU time is exact. */
SEC("tp_btf/sched_switch")
int BPF_PROG(tls_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct tls_thread *t;
	__u32 tid;
	__u64 now;

	if (!threads_in_call)
		return 0;
	now = bpf_ktime_get_ns();
	tid = prev->pid;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (t && t->active)
		t->off_start_ns = now;
	tid = next->pid;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (t && t->active && t->off_start_ns) {
		t->off_ns += now - t->off_start_ns;
		t->off_start_ns = 0;
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tls_thread_exit, struct task_struct *task)
{
	__u32 tid = bpf_get_current_pid_tgid();
	struct tls_thread *t = bpf_map_lookup_elem(&threads, &tid);
	if (t && t->active)
		__sync_fetch_and_add(&threads_in_call, -1);
	bpf_map_delete_elem(&threads, &tid);
	return 0;
}

static __always_inline void count_sample(void *map, struct tls_sample_key *key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == -17 /* EEXIST */) {
		v = bpf_map_lookup_elem(map, key);
		if (v)
			__sync_fetch_and_add(v, 1);
	} else if (!bpf_map_lookup_elem(map, key)) {
		tp_count_error(TP_ERR_COUNTS_FULL);
	}
}

/* The handshake CPU profile: samples of threads inside a handshake call. */
SEC("perf_event")
int tls_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct tls_sample_key key = {};
	__s32 slot;
	struct tls_thread *t;
	bool user_mode = (long)ctx->regs.ip >= 0; /* see profile.bpf.c */

	if (!tp_is_target(tgid))
		return 0;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t || !t->active)
		return 0;
	tp_count_add(TP_CTR_TLS_CPU_SAMPLES, 1);
	key.tgid = tgid;
	key.pid = tid;
	key.side = t->side;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	if (user_mode)
		key.user_stack = tp_user_stack(tgid, ctx->regs.ip, ctx->regs.sp, ctx->regs.bp);
	else
		key.user_stack = tp_current_user_stack(tgid);
	if (!user_mode && collect_kernel)
		key.kernel_stack = tp_kernel_stack(ctx);
	slot = tp_slot_enter();
	if (slot == 1)
		count_sample(&counts_1, &key);
	else if (slot == 0)
		count_sample(&counts_0, &key);
	tp_slot_exit(slot);
	return 0;
}
