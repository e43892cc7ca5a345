"""Turns criterion's estimates and the OpenSSL reference into BENCHMARKS.md."""
import json, os, platform, subprocess, sys, datetime

ref_file = sys.argv[1]
crit = "target/criterion"

def est(group, bench):
    with open(os.path.join(crit, group, bench, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"]  # ns

ref = {}
for line in open(ref_file):
    p = line.split()
    if p[0] in ("aes16k", "aes1m"):
        ref[p[0]] = float(p[1].split(":")[-1])  # bytes/s
    elif p[0].startswith("+F2"):
        f = p[0].split(":")
        ref[f"rsa{f[2]}_private_s"] = 1 / float(f[3])
        ref[f"rsa{f[2]}_public_s"] = 1 / float(f[4])
    elif p[0].startswith("+F5"):
        ref["x25519_s"] = 1 / float(p[0].split(":")[3])
    elif p[0].startswith("+F6"):
        f = p[0].split(":")
        ref["ed25519_sign_s"] = 1 / float(f[4])
        ref["ed25519_verify_s"] = 1 / float(f[5])
    elif p[0] == "rsakeygen":
        ref[f"rsa{p[1]}_keygen_s"] = int(p[2]) / 1e9

def fmt_t(ns):
    if ns < 1e3: return f"{ns:.0f} ns"
    if ns < 1e6: return f"{ns/1e3:.1f} µs"
    if ns < 1e9: return f"{ns/1e6:.2f} ms"
    return f"{ns/1e9:.2f} s"

cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
o = []
w = o.append
w("# Benchmarks\n")
w(f"Produced by `scripts/bench` on {datetime.date.today()} ({cpu}, {os.cpu_count()} cores; {rustc}; {ossl}).")
w("Criterion (release profile, `cargo bench -p sotto-core --bench core`) and `openssl speed` ran in the same")
w("invocation; these machines are noisy, so compare the **ratios**, not the absolute times.\n")

w("## Primitives against OpenSSL\n")
w("| operation | sotto-core | OpenSSL | ratio (OpenSSL time / ours; 1.0 = parity) |")
w("|---|---|---|---|")
for size, key in [(16384, "aes16k"), (1048576, "aes1m")]:
    ns = est("aes256gcm_encrypt", str(size))
    ours = size / (ns / 1e9)
    w(f"| AES-256-GCM encrypt {size//1024} KiB | {ours/2**30:.2f} GiB/s | {ref[key]/2**30:.2f} GiB/s | {ours/ref[key]:.2f} |")
v = est("open_parts_x25519_1", "ed25519_verify")
w(f"| Ed25519 verify (strict, ~1.2 KB message) | {fmt_t(v)} | {fmt_t(ref['ed25519_verify_s']*1e9)} | {ref['ed25519_verify_s']*1e9/v:.2f} |")
h = est("open_parts_x25519_1", "hpke_open")
w(f"| HPKE open (1 X25519 DH + HKDF + 48-byte AES-GCM) vs one OpenSSL X25519 derive | {fmt_t(h)} | {fmt_t(ref['x25519_s']*1e9)} | {ref['x25519_s']*1e9/h:.2f} |")
ro = est("open_1KiB_rsa", "1")
w(f"| RSA-3072 private operation: `open` of a 1-recipient rsa envelope (OAEP decrypt with blinding + Ed25519 verify + AES) vs OpenSSL RSA-3072 private op (`sign`) | {fmt_t(ro)} | {fmt_t(ref['rsa3072_private_s']*1e9)} | {ref['rsa3072_private_s']*1e9/ro:.2f} |")
rs = est("seal_1KiB_rsa", "1")
w(f"| RSA-3072 public operation: `seal` to 1 rsa device (OAEP encrypt + Ed25519 sign + AES) vs OpenSSL RSA-3072 public op (`verify`) | {fmt_t(rs)} | {fmt_t(ref['rsa3072_public_s']*1e9)} | {ref['rsa3072_public_s']*1e9/rs:.2f} |")
for bits in (2048, 3072):
    if f"rsa{bits}_keygen_s" in ref:
        k = est("keygen", f"device_rsa{bits}")
        w(f"| RSA-{bits} key generation (device keys incl. Ed25519+X25519) | {fmt_t(k)} | {fmt_t(ref[f'rsa{bits}_keygen_s']*1e9)} (`genpkey`, process incl.) | {ref[f'rsa{bits}_keygen_s']*1e9/k:.2f} |")
w("")

w("## Open overhead (target: one-recipient x25519 open ≤ 1.3 × the sum of its primitives)\n")
aes = est("open_parts_x25519_1", "aes256gcm_decrypt_content")
total = est("open_parts_x25519_1", "open_total")
s = v + h + aes
w("| part | time |")
w("|---|---|")
w(f"| Ed25519 strict verify | {fmt_t(v)} |")
w(f"| HPKE single-shot open | {fmt_t(h)} |")
w(f"| AES-256-GCM decrypt of the padded 1 KiB content | {fmt_t(aes)} |")
w(f"| **sum of primitives** | {fmt_t(s)} |")
w(f"| **`envelope::open` total** | {fmt_t(total)} |")
w(f"| **ratio** | **{total/s:.3f}** ({'meets' if total/s <= 1.3 else 'MISSES'} the 1.3 target) |")
w("")
ratio_aes = (16384 / (est('aes256gcm_encrypt', '16384') / 1e9)) / ref["aes16k"]
w(f"AES-256-GCM bulk on 16 KiB: **{ratio_aes:.2f} × OpenSSL** ({'meets' if ratio_aes >= 0.5 else 'MISSES'} the 0.5 target).\n")

w("## Key generation\n")
w("| keys | mean |")
w("|---|---|")
for b, label in [("identity_ed25519", "identity (Ed25519)"), ("device_x25519", "device (Ed25519 + X25519)"),
                 ("device_rsa2048", "device + RSA-2048"), ("device_rsa3072", "device + RSA-3072")]:
    w(f"| {label} | {fmt_t(est('keygen', b))} |")
w("\nRSA key generation time varies widely between runs (prime search).\n")

w("## Seal and open of 1 KiB by number of recipient devices\n")
w("Seal costs one content encryption plus one wrap per device; open costs one signature check over the")
w("whole envelope, one unwrap and one decryption, so it grows only with the envelope's size.\n")
w("| suite | devices | seal | seal per device | open (last device) |")
w("|---|---|---|---|---|")
for suite in ("x25519", "rsa"):
    for n in (1, 10, 100, 1000):
        se = est(f"seal_1KiB_{suite}", str(n))
        op = est(f"open_1KiB_{suite}", str(n))
        w(f"| {suite} | {n} | {fmt_t(se)} | {fmt_t(se/n)} | {fmt_t(op)} |")
w("\nThe rsa rows use RSA-3072 recipient keys (one key shared by all benchmark devices, which does not change the cost).\n")

w("## Backup key derivation\n")
w(f"Argon2id, 64 MiB, t=3, p=1 (the default backup parameters): **{fmt_t(est('backup_kdf', 'argon2id_64MiB_t3_p1'))}** per derivation.\n")
w("## How to reproduce\n")
w("```sh\nscripts/bench          # writes this file\n```")
print("\n".join(o))
