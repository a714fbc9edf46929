/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * TLS family: OpenSSL 3 handshakes measured per SSL object, end to end
 * across every call that drives them, with their on-CPU time, outcome and
 * peer; and CPU samples of threads while they are inside a handshake call.
 *
 * Nothing here holds plaintext or key material: the probes read the SSL
 * object's handshake state machine (two ints), the fd of its read BIO and
 * the socket's addresses, never buffers.
 *
 * Plain C, fixed-width types, explicit padding: included by BPF and C++.
 */
#ifndef TICKPROBE_TLS_H
#define TICKPROBE_TLS_H

#ifndef __bpf__
#include <linux/types.h> /* user space; BPF gets the types from vmlinux.h */
#endif

#include "profile.h" /* TP_COMM_LEN */

enum tls_side {
	TLS_SIDE_UNKNOWN = 0,
	TLS_SIDE_SERVER = 1,
	TLS_SIDE_CLIENT = 2,
};

enum tls_result {
	TLS_RESULT_COMPLETED = 0, /* a handshake call returned 1 */
	TLS_RESULT_FAILED = 1,    /* the state machine entered its fatal-error state */
	TLS_RESULT_ABANDONED = 2, /* SSL_free before completion, no fatal error */
};

/* OpenSSL's MSG_FLOW_STATE (ssl/statem/statem.h, stable 1.1.0 - 3.x). */
#define TLS_MSG_FLOW_ERROR 1
/* OSSL_HANDSHAKE_STATE TLS_ST_BEFORE: no handshake has run on this object. */
#define TLS_ST_BEFORE 0
/* BIO_ctrl command of BIO_set_fd (include/openssl/bio.h). */
#define TLS_BIO_C_SET_FD 104

struct tls_conn_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl; /* SSL * in the target */
};

/* The peer of the socket under an SSL object's read BIO. */
struct tls_peer {
	__u16 family;     /* AF_INET, AF_INET6; 0 = unknown */
	__u16 port;       /* remote port, host order */
	__u16 local_port; /* host order */
	__u16 pad;
	__u8 addr[16];    /* remote address: 4 bytes (v4) or 16 (v6) */
};

/* Per SSL object, from the first fd/handshake sighting until the handshake
 * ends (completed: deleted; failed or abandoned: deleted at the event). */
struct tls_conn {
	__u64 start_ns; /* entry of the first handshake call; 0 = not started */
	__u64 last_ns;  /* return of the latest handshake call */
	__u64 cpu_ns;   /* on-CPU time inside handshake calls */
	__u32 calls;    /* handshake calls so far */
	__s32 fd;       /* fd of the read BIO; -1 unknown */
	__s32 last_ret; /* return value of the latest call */
	__u32 side;     /* enum tls_side */
	__u32 last_tid;
	__u32 pad;
	struct tls_peer peer;
};

/* One finished handshake (ring buffer). */
struct tls_event {
	__u32 tgid;
	__u32 tid;   /* thread of the last call */
	__u64 ssl;
	__u64 start_ns, end_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 cpu_ns;
	__u32 calls;
	__u32 side;   /* enum tls_side */
	__u32 result; /* enum tls_result */
	__s32 fd;
	__s32 last_ret;
	__u32 pad;
	struct tls_peer peer;
};

/* Per thread: the handshake call in progress (the "in handshake" flag the
 * CPU sampler reads). */
struct tls_thread {
	__u64 ssl;
	__u64 entry_ns;
	__u64 off_ns;       /* off-CPU time inside this call so far */
	__u64 off_start_ns; /* switched out at; 0 = on CPU */
	__u32 active;
	__u32 side;
};

/* Per process: where the SSL object keeps its state machine (offsets
 * derived in user space from SSL_get_state / SSL_in_init; -1 unknown). */
struct tls_proc {
	__s32 statem_state_off; /* ssl->statem.state (MSG_FLOW_STATE) */
	__s32 hand_state_off;   /* ssl->statem.hand_state */
};

/* Go's crypto/tls: a handshake in flight, keyed by (tgid, goroutine id)
 * (tls_conn_key with the goid in place of the SSL *): goroutines move
 * between threads, so the thread cannot key it. From the entry of
 * (*Conn).serverHandshake / clientHandshake to one of its RETs. */
struct tls_go_handshake {
	struct tls_conn c;
	__u64 conn; /* *tls.Conn in the target */
};

/* A CPU sample of a thread inside a handshake call. */
struct tls_sample_key {
	__u32 tgid;
	__u32 pid; /* thread id */
	__u64 user_stack;
	__u64 kernel_stack;
	__u32 side;
	__u32 pad;
	char comm[TP_COMM_LEN];
};

#endif /* TICKPROBE_TLS_H */
