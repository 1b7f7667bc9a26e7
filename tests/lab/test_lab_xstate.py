"""The lab's processes keep their whole FPU state, AVX-512 included, on any host.

Debian's user-mode-linux 6.1 cannot restore the FPU state of its processes on a host whose
XSAVE area is larger than 832 bytes (AVX-512, AMX): the host refuses the short restore and the
kernel panics before init. ``pyracoon/uml_xstate.c``, preloaded into ``linux.uml`` by
:mod:`pyracoon.kernellab`, keeps each UML task's whole state. These tests prove what that
must give: the lab boots, and registers beyond UML's 832 bytes (zmm31, the AVX-512 part) and
inside them (ymm15's upper half) survive syscalls and preemption in four busy threads of one
process, each with its own value. A shim that lost the AVX-512 part would fail here (python
itself crashes in the lab when that state is zeroed on restore: glibc's string functions use
zmm16-31).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pyracoon.kernellab import KernelLab, xstate_shim

PROGRAM = r"""
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile int failures;
static volatile long total;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Each thread fills zmm31 and ymm15 with its own value, spins, yields the CPU (a syscall UML
   traps: its state is saved and restored), spins again, and reads both back. */
static void *worker(void *arg)
{
	uint32_t v = (uint32_t)(uintptr_t)arg * 0x01010101u, got;
	double end = now() + 1.5;
	long rounds = 0;
	while (now() < end) {
		__asm__ volatile(
			"vpbroadcastd %1, %%zmm31\n\t"
			"vpbroadcastd %1, %%ymm15\n\t"
			"mov $1000000, %%ecx\n"
			"1: dec %%ecx\n\t"
			"jnz 1b\n\t"
			"mov $24, %%eax\n\t"
			"syscall\n\t"
			"mov $1000000, %%ecx\n"
			"2: dec %%ecx\n\t"
			"jnz 2b\n\t"
			"vextracti32x4 $3, %%zmm31, %%xmm0\n\t"
			"vpextrd $3, %%xmm0, %%eax\n\t"
			"vextracti128 $1, %%ymm15, %%xmm1\n\t"
			"vpextrd $2, %%xmm1, %%edx\n\t"
			"xor %%edx, %%eax\n\t"
			"xor %1, %%eax\n\t"
			"mov %%eax, %0\n\t"
			: "=r"(got)
			: "r"(v)
			: "eax", "ecx", "edx", "r11", "xmm0", "xmm1", "xmm15", "xmm31", "memory");
		if (got != v)
			failures++;
		rounds++;
	}
	__atomic_add_fetch(&total, rounds, __ATOMIC_RELAXED);
	return NULL;
}

int main(void)
{
	pthread_t t[4];
	if (!__builtin_cpu_supports("avx512f")) {
		puts("no avx512f");
		return 77;
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("rounds %ld failures %d\n", total, failures);
	return failures != 0;
}
"""


def avx512_host() -> bool:
    return " avx512f " in f" {Path('/proc/cpuinfo').read_text().replace(chr(10), ' ')} "


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not avx512_host():
        pytest.skip("this host has no AVX-512: UML's 832-byte FPU buffer holds all its state")
    d = tmp_path_factory.mktemp("xstate")
    (d / "fpu.c").write_text(PROGRAM)
    subprocess.run(
        ["gcc", "-O2", "-mavx512f", "-pthread", "-o", str(d / "fpu"), str(d / "fpu.c")],
        check=True,
    )
    return d / "fpu"


def test_the_shim_is_built_where_gcc_is() -> None:
    shim = xstate_shim()
    assert shim is not None and shim.stat().st_size > 0


def test_avx512_registers_survive_switches_inside_the_lab(lab: KernelLab, program: Path) -> None:
    r = lab.run([str(program)], timeout=60)
    m = re.search(r"rounds (\d+) failures (\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    rounds, failures = int(m[1]), int(m[2])
    # dozens of rounds per thread: each yields, so UML saved and restored the state each time
    assert rounds >= 40, r.stdout
    assert failures == 0 and r.rc == 0, r.stdout
