#!/usr/bin/env python3
"""An independent verifier of a visor-gw offline audit bundle.

This is a conformance check of our documentation, not a product tool.  It was
written from docs/AUDIT.md ("Entries", "Checkpoints and the verifier key",
"Offline bundles"), SPEC.md section 8, C2SP signed-note and tlog-checkpoint,
and RFC 6962/9162 section 2.1 alone, without reading the gateway's or
visorctl's sources, to show that an auditor who does not trust our code can
check a bundle written by `visorctl audit export` from what we publish.
tests/integration/test_indep_verify.c runs it against real bundles and
tampered copies and compares its verdicts with `visorctl audit verify-bundle`.

Its first reading split audit.vkey at every "+" and failed on a real key.
Three rules it follows were settled only after comparing its verdicts with
visorctl's, and are now in docs/AUDIT.md: checkpoint extension lines are
accepted and ignored, at most 100 signature lines, and a bundle whose own
"vkey" names another key than the trusted one is refused.

    verify_bundle.py BUNDLE --vkey audit.vkey [--area AREA]

Checks, in order, and stops at the first failure:
  - the bundle is one JSON object with exactly the members format, vkey,
    checkpoint and entries, format "visor-audit-bundle/1";
  - the verifier key (from --vkey; the bundle's own "vkey" must name the
    same key, name and key id, but is not used) parses as
    <name>+<8 hex key id>+<base64(0x01 || Ed25519 public key)>, its key id is
    the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), and its
    name is visor.<area>/audit (the area given, or any area);
  - the checkpoint is a signed note: body "<origin>\\n<size>\\n<b64 root>\\n"
    (the size in canonical decimal below 2^64; any non-empty extension lines
    after the root are signed and ignored), a blank line, then at most 100
    signature lines "\\u2014 <name> <b64(key id || sig)>";
    the origin equals the key name; a line with the key's name and id must
    carry a valid Ed25519 signature over the body (every byte up to and
    including the newline before the blank line); lines of other keys are
    ignored as C2SP says, but at least one signature of the key is required;
  - entries number exactly the checkpoint's size, the i-th has "index": i
    and standard base64 "data" of at most 64 KiB;
  - each leaf is a UTF-8 JSON object whose first bytes are {"seq":i, (seq
    first, plain decimal), and whose "seq" member is i;
  - the RFC 6962 root (leaf H(0x00||d), node H(0x01||l||r), split at the
    largest power of two below n, empty tree H("")) equals the signed root.

Prints "verified N entries, root <b64>, checkpoint signed by <name>" and exits
0, or prints one line naming what failed (with "entry I:" for the first bad
index where the bundle alone can tell it) and exits 1; 2 for bad usage.
"""

import base64
import binascii
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_ENTRY = 64 * 1024
MAX_BUNDLE = 1 << 30
EM_DASH = "\u2014"
ED25519_ALG = 0x01
DIGITS = re.compile(r"(0|[1-9][0-9]*)", re.ASCII)
HEX8 = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)
AREA_ORIGIN = re.compile(r"visor\.([^/\s]+)/audit", re.ASCII)


class Failure(Exception):
    """A check failed: the bundle is not a verified log."""


def b64decode_strict(text, what):
    if not isinstance(text, str):
        raise Failure(f"{what}: not a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise Failure(f"{what}: not standard base64 ({exc})") from None
    # A canonical encoding only: the same bytes written another way are
    # not what the exporter wrote.
    if base64.b64encode(raw).decode("ascii") != text:
        raise Failure(f"{what}: not canonical base64")
    return raw


def key_id(name, alg_and_key):
    return hashlib.sha256(name.encode("utf-8") + b"\n" + alg_and_key).digest()[:4]


def parse_vkey(text, area):
    line = text[:-1] if text.endswith("\n") else text
    if "\n" in line or "\r" in line:
        raise Failure("vkey: more than one line")
    # The key name holds no "+" (C2SP signed-note), but the base64 key may:
    # split at the first two only.
    parts = line.split("+", 2)
    if len(parts) != 3:
        raise Failure("vkey: not <name>+<key id>+<key>")
    name, hexid, b64key = parts
    if not name or not HEX8.fullmatch(hexid):
        raise Failure("vkey: bad name or key id (8 hex digits)")
    alg_and_key = b64decode_strict(b64key, "vkey key")
    if len(alg_and_key) != 33 or alg_and_key[0] != ED25519_ALG:
        raise Failure("vkey: not an Ed25519 key (0x01 and 32 bytes)")
    kid = key_id(name, alg_and_key)
    if kid != bytes.fromhex(hexid):
        raise Failure(f"vkey: key id {hexid} is not the key's ({kid.hex()})")
    m = AREA_ORIGIN.fullmatch(name)
    if not m:
        raise Failure(f"vkey: key name {name!r} is not visor.<area>/audit")
    if area is not None and m.group(1) != area:
        raise Failure(f"vkey: key name {name} is not visor.{area}/audit")
    return name, kid, Ed25519PublicKey.from_public_bytes(alg_and_key[1:])


def parse_checkpoint(note, name, kid, pub):
    """Returns (size, root) of a checkpoint signed by the key."""
    if not isinstance(note, str):
        raise Failure("checkpoint: not a string")
    # C2SP signed-note: UTF-8 text, no control characters but newline.
    if any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F for c in note):
        raise Failure("checkpoint: holds a control character")
    sep = note.find("\n\n")
    if sep < 0:
        raise Failure("checkpoint: no blank line before the signatures")
    body = note[: sep + 1]
    sigs = note[sep + 2 :]
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise Failure(f"checkpoint: the body has {len(lines)} lines, not "
                      "origin, size and root")
    origin, size_text, root_b64 = lines[:3]
    # Lines after the root are tlog-checkpoint extension lines: signed,
    # non-empty (the first blank line ends the body), and ignored.
    if origin != name:
        raise Failure(f"checkpoint (origin must be {name}): {origin!r}")
    if not DIGITS.fullmatch(size_text):
        raise Failure(f"checkpoint: size {size_text!r} is not plain decimal")
    size = int(size_text)
    if size >= 1 << 64:
        raise Failure(f"checkpoint: size {size_text} is out of range")
    root = b64decode_strict(root_b64, "checkpoint root")
    if len(root) != 32:
        raise Failure("checkpoint: the root is not 32 bytes")
    if not sigs.endswith("\n"):
        raise Failure("checkpoint: the last signature line has no newline")
    ours = 0
    sig_lines = sigs[:-1].split("\n")
    if len(sig_lines) > 100:
        raise Failure("checkpoint: more than 100 signature lines")
    for line in sig_lines:
        m = re.fullmatch(EM_DASH + r" (\S+) (\S+)", line, re.ASCII)
        if not m:
            raise Failure(f"checkpoint: bad signature line {line!r}")
        sig = b64decode_strict(m.group(2), "checkpoint signature")
        if len(sig) < 5:
            raise Failure("checkpoint: signature too short for a key id")
        if m.group(1) != name or sig[:4] != kid:
            continue    # another key's signature: ignored (C2SP)
        if len(sig) != 4 + 64:
            raise Failure("checkpoint signature: not 64 bytes")
        try:
            pub.verify(sig[4:], body.encode("utf-8"))
        except InvalidSignature:
            raise Failure(f"checkpoint signature: does not verify with {name}") from None
        ours += 1
    if ours == 0:
        raise Failure(f"checkpoint signature: none by {name}+{kid.hex()}")
    return size, root


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(hashes):
    """RFC 6962 MTH over a list of leaf hashes (iterative: a stack of
    complete subtrees, merged right to left at the end, which is the same
    as splitting at the largest power of two below n)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    stack = []  # (height, hash)
    for i, h in enumerate(hashes):
        stack.append((0, h))
        n = i + 1
        height = 0
        while n % 2 == 0:
            _, right = stack.pop()
            _, left = stack.pop()
            height += 1
            stack.append((height, node_hash(left, right)))
            n //= 2
    root = stack.pop()[1]
    while stack:
        root = node_hash(stack.pop()[1], root)
    return root


def merkle_root_recursive(hashes):
    """RFC 6962 section 2.1, as written: a second reading to check the first."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(merkle_root_recursive(hashes[:k]),
                     merkle_root_recursive(hashes[k:]))


def reject_constants(token):
    raise ValueError(f"not JSON: {token}")


def no_duplicates(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise ValueError(f"duplicate member {k!r}")
        seen.add(k)
    return dict(pairs)


def check_entry(i, data):
    if len(data) > MAX_ENTRY:
        raise Failure(f"entry {i}: longer than 64 KiB")
    try:
        text = data.decode("utf-8")
        obj = json.loads(text, parse_constant=reject_constants,
                         object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"entry {i}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise Failure(f"entry {i}: not a JSON object")
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        if isinstance(seq, float) and seq == i:
            raise Failure(f'entry {i}: does not begin {{"seq":{i} '
                          "(seq first, in plain decimal)")
        raise Failure(f'entry {i}: no valid "seq"')
    if seq != i:
        raise Failure(f"entry {i}: carries seq {seq} "
                      "(entries removed, replaced or reordered)")
    if not data.startswith(b'{"seq":%d,' % i):
        raise Failure(f'entry {i}: does not begin {{"seq":{i} '
                      "(seq first, in plain decimal)")


def verify(bundle_bytes, vkey_text, area=None):
    """Returns (size, root, key name) or raises Failure."""
    if len(bundle_bytes) > MAX_BUNDLE:
        raise Failure("bundle: larger than 1 GiB")
    try:
        bundle = json.loads(bundle_bytes.decode("utf-8"),
                            parse_constant=reject_constants,
                            object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Failure(f"bundle: not valid JSON ({exc})") from None
    if not isinstance(bundle, dict):
        raise Failure("bundle: not a JSON object")
    if set(bundle) != {"format", "vkey", "checkpoint", "entries"}:
        raise Failure(f"bundle: members {sorted(bundle)}, not format, vkey, "
                      "checkpoint and entries")
    if bundle["format"] != "visor-audit-bundle/1":
        raise Failure(f"bundle: format {bundle['format']!r}")
    name, kid, pub = parse_vkey(vkey_text, area)
    if not isinstance(bundle["vkey"], str):
        raise Failure("bundle: vkey is not a string")
    bname, bkid, _ = parse_vkey(bundle["vkey"], None)
    if (bname, bkid) != (name, kid):
        raise Failure(f"bundle: its key {bname}+{bkid.hex()} is not the "
                      f"trusted key {name}+{kid.hex()}")
    size, signed_root = parse_checkpoint(bundle["checkpoint"], name, kid, pub)
    entries = bundle["entries"]
    if not isinstance(entries, list):
        raise Failure("bundle: entries is not an array")
    hashes = []
    for i, e in enumerate(entries):
        if i >= size:
            raise Failure(f"{len(entries)} entries but the checkpoint signs {size}")
        if not isinstance(e, dict) or set(e) != {"index", "data"}:
            raise Failure(f"entry {i}: not {{index, data}}")
        idx = e["index"]
        if not isinstance(idx, int) or isinstance(idx, bool) or idx != i:
            raise Failure(f"entry {i}: the bundle lists entry {idx!r} here")
        data = b64decode_strict(e["data"], f"entry {i}")
        check_entry(i, data)
        hashes.append(leaf_hash(data))
    if len(hashes) != size:
        raise Failure(f"{len(hashes)} entries checked but the checkpoint signs "
                      f"{size} (entry {len(hashes)} missing)")
    root = merkle_root(hashes)
    if root != signed_root:
        # The bundle alone cannot say which entry differs: only the root
        # was signed.  (visorctl audit verify asks the gateway for
        # consistency proofs of prefixes to find it.)
        raise Failure("the entries hash to another root than the signed one "
                      f"({base64.b64encode(root).decode()} != "
                      f"{base64.b64encode(signed_root).decode()})")
    return size, root, name


def self_test():
    """The iterative root against RFC 6962's recursive definition."""
    for n in range(0, 70):
        hs = [leaf_hash(b"%d" % i) for i in range(n)]
        assert merkle_root(hs) == merkle_root_recursive(hs), n


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--vkey", required=True,
                    help="the area's audit.vkey (never the bundle's own)")
    ap.add_argument("--area", help="the area the key must be of")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    self_test()
    try:
        with open(args.bundle, "rb") as f:
            bundle_bytes = f.read(MAX_BUNDLE + 1)
        with open(args.vkey, "r", encoding="utf-8") as f:
            vkey_text = f.read(4096)
    except OSError as exc:
        print(f"verify_bundle: {exc}", file=sys.stderr)
        return 2
    try:
        size, root, name = verify(bundle_bytes, vkey_text, args.area)
    except Failure as exc:
        print(f"verify_bundle: {exc}", file=sys.stderr)
        return 1
    print(f"verified {size} entries, root {base64.b64encode(root).decode()}, "
          f"checkpoint signed by {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
