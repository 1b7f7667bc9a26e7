/*
 * uml_xstate.c -- lets Debian's user-mode-linux 6.1 run on hosts with a large XSAVE area.
 *
 * Why: UML saves and restores the FPU state of its processes with
 * ptrace(PTRACE_GETREGSET/SETREGSET, NT_X86_XSTATE) through a buffer of sizeof(struct _xstate),
 * 832 bytes (x87, SSE, AVX). The host kernel returns a truncated state for a short GET, but
 * refuses a SET that is not the host's whole XSAVE size with EFAULT. On a host with AVX-512 or
 * AMX (several KB of state) the first SET fails and UML panics before init runs ("userspace -
 * ptrace set fp regs failed, errno = 14"). Linux fixed this in later UML releases; bookworm
 * ships 6.1.
 *
 * How: pyracoon.kernellab builds this file with gcc and preloads it into linux.uml only. It
 * intercepts only those two requests. For each buffer UML uses (one per UML task, a stable
 * address) it keeps a shadow of the host's whole state: a GET fills the shadow and hands UML
 * its 832 bytes; a SET lays UML's bytes over the shadow and sets the whole state. So each UML
 * task's AVX-512 registers come back as they were saved, as on a host whose state fits. When
 * the host's state fits UML's buffer, everything passes straight through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define PROBE_SIZE 65536
#define SLOTS 16384

static size_t host_size;
static unsigned char probe[PROBE_SIZE] __attribute__((aligned(64)));
static struct { void *key; unsigned char *buf; } shadows[SLOTS];

static long raw_ptrace(long req, pid_t pid, void *addr, void *data)
{
	return syscall(SYS_ptrace, req, pid, addr, data);
}

static int full_get(pid_t pid, void *buf, size_t size)
{
	struct iovec iov = { buf, size };
	if (raw_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return -1;
	if (host_size == 0)
		host_size = iov.iov_len;
	return 0;
}

static unsigned char *shadow_of(void *key, int create)
{
	size_t h = ((uintptr_t)key >> 4) % SLOTS;
	for (size_t i = 0; i < SLOTS; i++) {
		size_t s = (h + i) % SLOTS;
		if (shadows[s].key == key)
			return shadows[s].buf;
		if (shadows[s].key == NULL) {
			if (!create)
				return NULL;
			unsigned char *buf = aligned_alloc(64, (host_size + 63) / 64 * 64);
			if (buf == NULL)
				return NULL;
			shadows[s].key = key;
			shadows[s].buf = buf;
			return buf;
		}
	}
	return NULL;
}

static long xstate(long req, pid_t pid, struct iovec *iov)
{
	if (host_size == 0 && full_get(pid, probe, PROBE_SIZE) < 0)
		return -1;
	if (iov->iov_len >= host_size)
		return raw_ptrace(req, pid, (void *)NT_X86_XSTATE, iov);
	size_t len = iov->iov_len;
	unsigned char *full = shadow_of(iov->iov_base, req == PTRACE_GETREGSET);
	if (req == PTRACE_GETREGSET) {
		if (full == NULL)
			full = probe;
		if (full_get(pid, full, host_size) < 0)
			return -1;
		memcpy(iov->iov_base, full, len);
		return 0;
	}
	if (full == NULL) {
		full = probe;
		if (full_get(pid, full, host_size) < 0)
			return -1;
	}
	memcpy(full, iov->iov_base, len);
	struct iovec whole = { full, host_size };
	return raw_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &whole);
}

long ptrace(enum __ptrace_request request, ...)
{
	static long (*next)(enum __ptrace_request, ...);
	va_list ap;
	va_start(ap, request);
	pid_t pid = va_arg(ap, pid_t);
	void *addr = va_arg(ap, void *);
	void *data = va_arg(ap, void *);
	va_end(ap);
	if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
	    (uintptr_t)addr == NT_X86_XSTATE && data != NULL)
		return xstate(request, pid, data);
	if (next == NULL)
		next = (long (*)(enum __ptrace_request, ...))dlsym(RTLD_NEXT, "ptrace");
	return next(request, pid, addr, data);
}
