// What a uprobe detach costs on this kernel, side by side (issue 11.9):
//   perf    N uprobe perf events (what libbpf 1.1 makes for every uprobe and
//           USDT site), closed one by one, then from N threads at once
//   multi   N uprobe_multi links (BPF_TRACE_UPROBE_MULTI, kernel 6.6+, raw
//           bpf(2): libbpf 1.1 has no API for it), closed one by one, from N
//           threads, and one link with N offsets
// Usage: uprobe_detach N BINARY FILE_OFFSET (root)
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAXN 64
#define BPF_TRACE_UPROBE_MULTI_ 48  // enum bpf_attach_type, 6.6+ (not in 6.1 UAPI headers)

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int fds[MAXN];
static void *closer(void *a) {
	close(fds[(long)a]);
	return NULL;
}
static double close_all(int n, int parallel) {
	double t0 = now();
	if (parallel) {
		pthread_t th[MAXN];
		for (long i = 0; i < n; i++) pthread_create(&th[i], NULL, closer, (void *)i);
		for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
	} else {
		for (int i = 0; i < n; i++) close(fds[i]);
	}
	return now() - t0;
}

static int open_perf(const char *path, uint64_t off, int type) {
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = type;
	a.config1 = (uintptr_t)path;
	a.config2 = off;
	return syscall(__NR_perf_event_open, &a, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
}

struct link_create_uprobe_multi {  // the BPF_LINK_CREATE part of union bpf_attr (6.6+)
	uint32_t prog_fd, target_fd, attach_type, flags;
	uint64_t path, offsets, ref_ctr_offsets, cookies;
	uint32_t cnt, uflags, pid;
};

static int open_multi(int prog, const char *path, uint64_t *offs, int cnt) {
	union bpf_attr buf;
	memset(&buf, 0, sizeof(buf));
	struct link_create_uprobe_multi *c = (void *)&buf;
	c->prog_fd = prog;
	c->attach_type = BPF_TRACE_UPROBE_MULTI_;
	c->path = (uintptr_t)path;
	c->offsets = (uintptr_t)offs;
	c->cnt = cnt;
	return syscall(__NR_bpf, BPF_LINK_CREATE, &buf, sizeof(buf));
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: %s N BINARY FILE_OFFSET\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]);
	const char *path = argv[2];
	uint64_t off = strtoull(argv[3], NULL, 0);
	if (n < 1 || n > MAXN) return 2;
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;
	if (!f || fscanf(f, "%d", &type) != 1) {
		fprintf(stderr, "no uprobe PMU\n");
		return 1;
	}
	fclose(f);
	for (int par = 0; par < 2; par++) {
		for (int i = 0; i < n; i++)
			if ((fds[i] = open_perf(path, off, type)) < 0) {
				perror("perf_event_open");
				return 1;
			}
		printf("perf events:   %2d closed %s: %.3f s\n", n, par ? "from N threads " : "one by one     ",
		       close_all(n, par));
	}
	struct bpf_insn insns[2] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_KPROBE;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = 2;
	a.license = (uintptr_t) "GPL";
	a.expected_attach_type = BPF_TRACE_UPROBE_MULTI_;
	int prog = syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (prog < 0) {
		printf("uprobe_multi: not available (%s)\n", strerror(errno));
		return 0;
	}
	uint64_t offs[MAXN];
	for (int i = 0; i < n; i++) offs[i] = off;
	for (int par = 0; par < 2; par++) {
		for (int i = 0; i < n; i++)
			if ((fds[i] = open_multi(prog, path, offs, 1)) < 0) {
				perror("uprobe_multi link");
				return 1;
			}
		printf("uprobe_multi:  %2d links closed %s: %.3f s\n", n, par ? "from N threads" : "one by one    ",
		       close_all(n, par));
	}
	fds[0] = open_multi(prog, path, offs, n);
	printf("uprobe_multi:   1 link of %d offsets closed: %.3f s\n", n, close_all(1, 0));
	return 0;
}
