/*
 * devices.c: which device nodes the container may use (docker's device
 * cgroup policy). CAP_MKNOD lets the container's root make any node; what
 * it may then open is decided by the cgroup: on cgroup2 a BPF program of
 * type BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup,
 * which the kernel runs on every mknod and open of a device node.
 *
 * The plan's `devices` line lists what is allowed, everything else is
 * refused (EPERM): rules <type>:<major>:<minor>:<access>, type a, b or c,
 * major and minor a number or *, access some of r, w, m.
 *
 * The program, for ctx = struct bpf_cgroup_dev_ctx {access_type, major,
 * minor} (access_type: access << 16 | type):
 *
 *     r2 = ctx->access_type & 0xffff      type
 *     r3 = ctx->access_type >> 16         access asked for
 *     r4 = ctx->major; r5 = ctx->minor
 *   per rule:
 *     if r2 != type goto next             (not for type a)
 *     r1 = r3 & ~access; if r1 != 0 goto next   (not for rwm)
 *     if r4 != major goto next            (not for *)
 *     if r5 != minor goto next            (not for *)
 *     r0 = 1; exit                        allowed
 *   next: ...
 *     r0 = 0; exit                        refused
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper.h"

struct rule {
	int type;           /* BPF_DEVCG_DEV_BLOCK/CHAR, 0: any */
	long major, minor;  /* -1: any */
	int access;         /* BPF_DEVCG_ACC_* bits */
};

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int parse_num(const char *s, long *out)
{
	char *end;
	if (strcmp(s, "*") == 0)
		return *out = -1, 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < 0 || v > 0xfffff)
		return -1;
	return *out = v, 0;
}

/* "c:1:3:rwm" */
static int parse_rule(const char *text, struct rule *r)
{
	char buf[64], *f[4], *save;
	int n = 0;
	if (strlen(text) >= sizeof(buf))
		return -1;
	strcpy(buf, text);
	for (char *t = strtok_r(buf, ":", &save); t && n < 4; t = strtok_r(NULL, ":", &save))
		f[n++] = t;
	if (n != 4 || strtok_r(NULL, ":", &save))
		return -1;
	if (strcmp(f[0], "a") == 0)
		r->type = 0;
	else if (strcmp(f[0], "b") == 0)
		r->type = BPF_DEVCG_DEV_BLOCK;
	else if (strcmp(f[0], "c") == 0)
		r->type = BPF_DEVCG_DEV_CHAR;
	else
		return -1;
	if (parse_num(f[1], &r->major) < 0 || parse_num(f[2], &r->minor) < 0)
		return -1;
	r->access = 0;
	for (const char *a = f[3]; *a; a++) {
		int bit = *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE :
			  *a == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
		if (!bit)
			return -1;
		r->access |= bit;
	}
	return r->access ? 0 : -1;
}

int devices_check_rules(char **rules, int n)
{
	struct rule r;
	for (int i = 0; i < n; i++)
		if (parse_rule(rules[i], &r) < 0)
			return i;
	return -1;
}

/* The program for the rules (see the top); *len instructions. */
static struct bpf_insn *build(char **rules, int n, int *len)
{
	/* 6 loads; per rule at most 8 (type, 3 for access, major, minor, mov, exit); 2 to deny. */
	struct bpf_insn *p = calloc((size_t)(6 + 8 * n + 2), sizeof(*p));
	int k = 0;
	if (!p)
		return NULL;
	p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
	p[k++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
	p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0);
	p[k++] = INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
	p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
	p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
	for (int i = 0; i < n; i++) {
		struct rule r;
		int jumps[4], nj = 0;
		parse_rule(rules[i], &r); /* checked by devices_check_rules */
		if (r.type) {
			jumps[nj++] = k;
			p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, r.type);
		}
		int all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
		if (r.access != all) {
			p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
			p[k++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_1, 0, 0, all & ~r.access);
			jumps[nj++] = k;
			p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 0, 0);
		}
		if (r.major >= 0) {
			jumps[nj++] = k;
			p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int)r.major);
		}
		if (r.minor >= 0) {
			jumps[nj++] = k;
			p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int)r.minor);
		}
		p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
		p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
		for (int j = 0; j < nj; j++) /* to the next rule */
			p[jumps[j]].off = (short)(k - jumps[j] - 1);
	}
	p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	*len = k;
	return p;
}

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/*
 * Attach the program for `rules` to the first cgroup2 directory among the
 * plan's cgroup-procs files. 0 when there is none (a cgroup v1 only host).
 */
int devices_attach(const struct plan *p, char *msg, size_t msglen)
{
	char dir[4096];
	if (plan_cgroup2(p, dir, sizeof(dir)) < 0)
		return 0;
	int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		snprintf(msg, msglen, "open the cgroup %s: %s", dir, errmsg(errno));
		return -1;
	}
	int len;
	struct bpf_insn *insns = build(p->device_rules, p->n_device_rules, &len);
	if (!insns) {
		close(cg);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	static char log[65536];
	union bpf_attr load = {0};
	load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	load.insns = (__u64)(unsigned long)insns;
	load.insn_cnt = (__u32)len;
	load.license = (__u64)(unsigned long)"Apache-2.0";
	int prog = (int)bpf(BPF_PROG_LOAD, &load);
	int e = errno;
	if (prog < 0 && e != EPERM && e != ENOSYS) {
		/* Again with the verifier's log, for the message. (With the log
		 * from the start, a log longer than its buffer fails the load.) */
		load.log_buf = (__u64)(unsigned long)log;
		load.log_size = sizeof(log);
		load.log_level = 1;
		log[0] = '\0';
		long again = bpf(BPF_PROG_LOAD, &load);
		if (again >= 0) {
			prog = (int)again; /* it went through this time */
		} else if (errno == ENOSPC) {
			log[0] = '\0'; /* cut off: no use */
		} else {
			/* The line that says why is the last but the statistics. */
			for (int cut = 0; cut < 2; cut++) {
				size_t n = strlen(log);
				while (n && log[n - 1] == '\n')
					log[--n] = '\0';
				char *last = strrchr(log, '\n');
				if (!last || strncmp(last + 1, "processed ", 10) != 0)
					break;
				*last = '\0';
			}
		}
	}
	free(insns);
	if (g_trace)
		trace_line("bpf(BPF_PROG_LOAD, {prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=%d}) = %d", len, prog);
	if (prog < 0) {
		close(cg);
		const char *why = strrchr(log, '\n');
		snprintf(msg, msglen, "load the device filter (bpf BPF_PROG_LOAD): %s%s%.200s%s", errmsg(e),
			 log[0] ? ": " : "", why ? why + 1 : log,
			 e == EPERM || e == ENOSYS ? " (bpf() is refused here, by the kernel or a seccomp policy; "
						     "--privileged starts a container without a device filter)" : "");
		errno = e;
		return -1;
	}
	union bpf_attr attach = {0};
	attach.target_fd = (__u32)cg;
	attach.attach_bpf_fd = (__u32)prog;
	attach.attach_type = BPF_CGROUP_DEVICE;
	/* Programs of the cgroups above (systemd's) still run: all must allow. */
	attach.attach_flags = BPF_F_ALLOW_MULTI;
	long r = bpf(BPF_PROG_ATTACH, &attach);
	e = errno;
	if (g_trace)
		trace_line("bpf(BPF_PROG_ATTACH, {target=%s, attach_type=BPF_CGROUP_DEVICE, flags=BPF_F_ALLOW_MULTI}) = %ld",
			   q(dir), r);
	close(prog); /* the cgroup holds it now */
	close(cg);
	if (r < 0) {
		snprintf(msg, msglen, "attach the device filter to %s (bpf BPF_PROG_ATTACH): %s", dir, errmsg(e));
		errno = e;
		return -1;
	}
	return 0;
}
