"""A small seccomp filter for bubblewrap: refuse the system calls sandboxed code never needs.

Classic BPF, built here (no libseccomp), for x86-64 only; elsewhere the
sandbox runs without it and the probe says so. The filter:

- kills the process on any other ABI (32-bit ``int 0x80``, x32), so a
  blocked call cannot be reached through another table;
- fails with ``EPERM`` the calls that reach kernel surfaces with a history
  of privilege escalations and that ordinary programs do not use:
  ``io_uring``, ``bpf``, ``userfaultfd``, ``perf_event_open``, keyrings,
  ``ptrace`` and cross-process memory access, mounts and namespaces,
  module loading, ``kexec``, ``reboot``, swap, clock setting and the like;
- refuses ``clone`` with ``CLONE_NEWUSER``, and answers ``clone3`` (whose
  flags it cannot read) with ``ENOSYS``, so the C library uses ``clone``;
- allows everything else.

It hardens; it does not replace the namespaces and limits, which isolate.
The numbers are from ``asm/unistd_64.h``.
"""

from __future__ import annotations

import errno
import platform
import struct

__all__ = ["BLOCKED_X86_64", "seccomp_filter"]

#: x86-64 system call numbers the filter refuses (name: number)
BLOCKED_X86_64: dict[str, int] = {
    "uselib": 134,
    "ustat": 136,
    "sysfs": 139,
    "vhangup": 153,
    "pivot_root": 155,
    "_sysctl": 156,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "ptrace": 101,
    "syslog": 103,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
}

# linux/filter.h, linux/seccomp.h, linux/audit.h, linux/sched.h
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_CLONE, _CLONE3 = 56, 435
_CLONE_NEWUSER = 0x10000000
# offsets in struct seccomp_data: nr, arch, then args[0] (its low half, little-endian)
_NR, _ARCH, _ARG0 = 0, 4, 16

_Jump = int | str  # an offset, or a label resolved by _assemble


def _assemble(prog: list[tuple[str | None, int, _Jump, _Jump, int]]) -> bytes:
    """Classic BPF from ``(label, code, jt, jf, k)``; a jump may name a label."""
    where = {label: i for i, (label, *_) in enumerate(prog) if label is not None}
    out = []
    for i, (_, code, jt, jf, k) in enumerate(prog):
        offsets = [where[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf)]
        if not all(0 <= o <= 255 for o in offsets):  # pragma: no cover - a bug in the table
            raise ValueError("seccomp filter: jump out of range")
        out.append(struct.pack("=HBBI", code, offsets[0], offsets[1], k))
    return b"".join(out)


def seccomp_filter(machine: str | None = None) -> bytes | None:
    """The compiled filter for this machine, or ``None`` where there is none (not x86-64).

    Besides the table: ``clone`` with ``CLONE_NEWUSER`` fails with ``EPERM``
    (no nested user namespace, even where bubblewrap cannot forbid one), and
    ``clone3``, whose flags a filter cannot read, fails with ``ENOSYS`` so
    the C library falls back to ``clone``.
    """
    if (machine or platform.machine()) not in ("x86_64", "AMD64"):
        return None
    prog: list[tuple[str | None, int, _Jump, _Jump, int]] = [
        (None, _LD_W_ABS, 0, 0, _ARCH),
        (None, _JEQ_K, 1, 0, _ARCH_X86_64),
        (None, _RET_K, 0, 0, _RET_KILL_PROCESS),  # another ABI: no way around the table
        (None, _LD_W_ABS, 0, 0, _NR),
        (None, _JGE_K, "deny", 0, _X32_BIT),
        (None, _JEQ_K, "enosys", 0, _CLONE3),
        (None, _JEQ_K, "clone", 0, _CLONE),
    ]
    prog += [(None, _JEQ_K, "deny", 0, n) for n in sorted(set(BLOCKED_X86_64.values()))]
    prog += [
        (None, _RET_K, 0, 0, _RET_ALLOW),
        ("clone", _LD_W_ABS, 0, 0, _ARG0),
        (None, _JSET_K, "deny", 0, _CLONE_NEWUSER),
        (None, _RET_K, 0, 0, _RET_ALLOW),
        ("deny", _RET_K, 0, 0, _RET_ERRNO | errno.EPERM),
        ("enosys", _RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
    ]
    return _assemble(prog)
