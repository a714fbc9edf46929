/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Sockets family: time target threads spend off-CPU inside socket syscalls,
 * send-side backpressure on non-blocking sockets, and TCP facts of the
 * connections the targets use.
 *
 * Plain C, fixed-width types, explicit padding: included by BPF and C++.
 */
#ifndef TICKPROBE_SOCKETS_H
#define TICKPROBE_SOCKETS_H

#ifndef __bpf__
#include <linux/types.h> /* user space; BPF gets the types from vmlinux.h */
#endif

/* The syscall a measurement came from. glibc's send() and recv() are the
 * sendto and recvfrom syscalls on x86_64, so those are named send/recv. */
enum sock_op {
	SOCK_OP_SEND = 0,    /* sendto (send) */
	SOCK_OP_SENDMSG = 1,
	SOCK_OP_WRITE = 2,   /* write on a socket */
	SOCK_OP_WRITEV = 3,  /* writev on a socket */
	SOCK_OP_RECV = 4,    /* recvfrom (recv) */
	SOCK_OP_RECVMSG = 5,
	SOCK_OP_READ = 6,    /* read on a socket */
	SOCK_OP_READV = 7,   /* readv on a socket */
	SOCK_OP_CONNECT = 8,
	SOCK_OP_ACCEPT = 9,  /* accept and accept4 */
	SOCK_OP_MAX = 10,
};

/* Send-side ops: the ones whose EAGAIN and short returns are backpressure. */
#define SOCK_OP_IS_SEND(op) ((op) <= SOCK_OP_WRITEV)

/* Endpoints of a socket as the kernel sees them. Addresses are in network
 * byte order (IPv4 in the first 4 bytes), ports in host byte order. */
struct sock_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;   /* AF_INET, AF_INET6, AF_UNIX, ... */
	__u8 protocol;  /* IPPROTO_TCP, IPPROTO_UDP, 0 for unix */
	__u8 type;      /* SOCK_STREAM, SOCK_DGRAM, ... */
};

/* In-kernel aggregation, one entry per (thread, op, socket, blocking stack),
 * in two alternating maps (counts_0 / counts_1, see active_slot). */
struct sock_agg_key {
	__u32 tgid;
	__u32 tid;
	__u64 sk;          /* struct sock address: the connection's identity */
	__u64 user_stack;  /* unused: the stack is taken at exit (stack_min_block_ns) */
	__u32 op;          /* enum sock_op */
	__s32 fd;
	struct sock_tuple tuple;
};

struct sock_agg_value {
	__u64 calls;        /* syscalls measured */
	__u64 wall_ns;      /* enter -> exit, summed */
	__u64 blocked_ns;   /* off-CPU inside the syscall, summed */
	__u64 max_blocked_ns;
	__u64 blocked_calls; /* calls that went off-CPU at least once */
	__u64 bytes;        /* sum of positive returns (send/recv ops) */
	__u64 errors;       /* negative returns other than EAGAIN */
	__u64 eagain;       /* -EAGAIN / -EWOULDBLOCK */
	__u64 partial;      /* send side: 0 <= ret < requested length */
	__u64 last_ns;      /* exit time of the latest call (CLOCK_MONOTONIC) */
};

/* A syscall in flight on one thread (key: tid). */
struct sock_inflight {
	__u64 enter_ns;
	__u64 off_since_ns; /* switched out at; 0 while on CPU */
	__u64 blocked_ns;
	__u64 sk;
	__u64 requested;    /* bytes asked for; ~0 = unknown */
	__u64 user_stack;
	__u32 tgid;
	__u32 op;
	__s32 fd;
	__u32 pad;
};

/* Per-op blocked-time histograms, key (tgid, op); cumulative, never reset. */
struct sock_hist_key {
	__u32 tgid;
	__u32 op;
};

#define SOCK_CONN_CLOSED (1u << 0)   /* reached TCP_CLOSE */
#define SOCK_CONN_OPENED (1u << 1)   /* seen opening: connect or accept */
#define SOCK_CONN_ZERO_WND (1u << 2) /* the peer's window was 0 at the last look */

/* A TCP connection of a target (key: struct sock address), learned at a
 * socket syscall, connect or accept; updated from tcp and sock tracepoints
 * (softirq too, so the key rather than the current task says it is ours). */
struct sock_conn {
	struct sock_tuple tuple;
	__u32 tgid;
	__u32 flags;        /* SOCK_CONN_* */
	__u64 first_seen_ns;
	__u64 opened_ns;    /* connect/accept time; 0 = already open when first seen */
	__u64 closed_ns;
	__u64 last_probe_ns;
	__u32 state;        /* TCP state (TCP_ESTABLISHED = 1 ...) */
	__u32 srtt_us;
	__u32 snd_cwnd;
	__u32 snd_wnd;      /* peer's advertised window (bytes) */
	__u32 rcv_wnd;      /* our advertised window */
	__u32 send_queue;   /* write_seq - snd_una: written, not yet acked */
	__u32 unacked;      /* snd_nxt - snd_una: sent, not yet acked */
	__u32 max_send_queue;
	__u64 retransmits;
	__u64 resets_sent;
	__u64 resets_received;
	__u64 zero_window_events; /* peer's window went from open to 0 */
	__u64 probes;             /* tcp_probe events sampled */
	__u64 rcvqueue_full;      /* sock_rcvqueue_full: our receive queue dropped a packet */
};

/* Per-process totals, exact whether or not a connection fits the table. */
struct sock_proc_totals {
	__u64 opened;          /* connect reached ESTABLISHED, or accept returned */
	__u64 closed;          /* a tracked connection reached TCP_CLOSE */
	__u64 resets_sent;
	__u64 resets_received;
	__u64 retransmits;
	__u64 zero_window_events;
	__u64 listen_full_at_accept; /* accept found the listen queue at its limit */
	__u64 untracked_conns;       /* connections the table had no room for */
};

#endif /* TICKPROBE_SOCKETS_H */
