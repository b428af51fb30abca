#!/usr/bin/env python3
"""tree-equal.py RESTORED ORIGINAL: prints "ok", or what differs first. Compares every entry's
type, permission bits, mtime (whole seconds), symlink target, size and content. SQLite
databases are compared page for page except the header fields (file change counter,
schema cookie, version-valid-for, writer version) that a copy by SQLite's backup API renews."""
import hashlib
import os
import stat
import sys

MAGIC = b"SQLite format 3\x00"
COUNTERS = [(24, 28), (40, 44), (92, 100)]


def digest(path):
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        head = f.read(100)
        if head.startswith(MAGIC):
            head = bytearray(head)
            for a, b in COUNTERS:
                head[a:b] = b"\0" * (b - a)
        h.update(head)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entries(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            e = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), int(st.st_mtime))
            if stat.S_ISREG(st.st_mode):
                e += (st.st_size,)
            elif stat.S_ISLNK(st.st_mode):
                e += (os.readlink(p),)
            out[rel] = (e, p)
    return out


a, b = entries(sys.argv[1]), entries(sys.argv[2])
problems = []
for rel in sorted(set(a) | set(b)):
    if rel not in a or rel not in b:
        problems.append(f"only in {'original' if rel in b else 'restored'}: {rel}")
    elif a[rel][0] != b[rel][0]:
        problems.append(f"metadata {rel}: {a[rel][0]} != {b[rel][0]}")
    elif stat.S_ISREG(a[rel][0][0]) and digest(a[rel][1]) != digest(b[rel][1]):
        problems.append(f"content {rel}")
print("ok" if not problems else f"FAIL({len(problems)}) {problems[0]}")
