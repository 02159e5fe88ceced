#!/usr/bin/python3
"""Builds the benchmark text: at least 10 MB of mixed text from files every
Debian system has, in a fixed order, so two runs on one machine give the same
bytes (the sha256 is printed; another machine's packages give other bytes).

  40% English prose  man pages (sections 1, 5, 7, 8) with the troff markup
                     stripped, and /usr/share/common-licenses
  30% code           Python's standard library (.py) and C headers
  20% other scripts  translated messages from gettext catalogs (.mo) and
                     translated man pages: German, French, Spanish, Russian,
                     Japanese, Chinese, Korean, Arabic, Hebrew, Greek, ...
  10% numbers        generated tables: dates, times, integers, decimals, ids

Usage: make_text.py OUT [MEGABYTES]   (default 10.5)
"""
import glob
import gzip
import hashlib
import os
import random
import re
import struct
import sys

LANGS = ["de", "fr", "es", "ru", "ja", "zh_CN", "zh_TW", "ko", "ar", "he", "el", "pl", "tr", "vi",
         "hi", "th", "uk", "pt_BR", "it", "cs", "fa", "bn", "ta", "ka", "hy", "am"]


def read_man(path):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    text = raw.decode("utf-8", errors="ignore")
    out = []
    for line in text.split("\n"):
        if line.startswith(".") or line.startswith("'"):
            parts = line.split(None, 1)
            if len(parts) < 2 or parts[0] in (".\\\"", ".TH", ".so", ".de", ".if", ".ie", ".el",
                                                 ".ds", ".nr", ".ft", ".ta", ".in", ".ti"):
                continue
            line = parts[1].replace('"', "")
        line = line.replace("\\-", "-").replace("\\ ", " ").replace("\\(em", "\u2014")
        line = re.sub(r"\\f[A-Z0-9]|\\f\(..|\\f\[[^]]*\]|\\\(..|\\[&%|^]", "", line)
        line = line.replace("\\e", "\\")
        out.append(line)
    return "\n".join(out)


def mo_strings(path):
    """The translated strings (msgstr) of a gettext .mo catalog."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    if len(data) < 28:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if end is None:
        return []
    _, n, _, toff = struct.unpack(end + "4I", data[4:20])
    out = []
    for i in range(1, n):  # entry 0 is the header
        ln, off = struct.unpack(end + "2I", data[toff + 8 * i: toff + 8 * i + 8])
        s = data[off:off + ln].split(b"\0")[0]
        try:
            out.append(s.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return out


def take(paths, reader, quota):
    parts, size = [], 0
    for p in paths:
        t = reader(p)
        if not t.strip():
            continue
        b = len(t.encode("utf-8"))
        parts.append(t)
        size += b
        if size >= quota:
            break
    return parts, size


def main():
    out = sys.argv[1]
    mb = float(sys.argv[2]) if len(sys.argv) > 2 else 10.5
    total = int(mb * 1e6)

    def read_text(p):
        try:
            with open(p, encoding="utf-8", errors="ignore") as f:
                return f.read()
        except OSError:
            return ""

    # Every man page but the thousands of near-identical gcloud ones, in a
    # fixed shuffled order so the sample spans the alphabet.
    man = [p for p in sorted(glob.glob("/usr/share/man/man[1578]/*.gz"))
           if not os.path.basename(p).startswith(("gcloud", "bq", "gsutil"))]
    random.Random(99).shuffle(man)
    lic = sorted(glob.glob("/usr/share/common-licenses/*"))
    prose, n_prose = take(lic + man, lambda p: read_man(p) if p.endswith(".gz") else read_text(p),
                          int(total * 0.40))
    code_files = sorted(glob.glob("/usr/lib/python3*/*.py")) + sorted(glob.glob("/usr/include/*.h"))
    code, n_code = take(code_files, read_text, int(total * 0.30))

    multi, n_multi = [], 0
    per_lang = int(total * 0.20) // len(LANGS) + 1
    for lang in LANGS:
        mos = sorted(glob.glob("/usr/share/locale/%s/LC_MESSAGES/*.mo" % lang))
        mans = sorted(glob.glob("/usr/share/man/%s/man*/*.gz" % lang.split("_")[0]))
        got, n = take(mos, lambda p: "\n".join(mo_strings(p)), per_lang)
        if n < per_lang:
            more, m = take(mans, read_man, per_lang - n)
            got += more
            n += m
        multi += got
        n_multi += n

    rng = random.Random(1234)
    rows, n_num = [], 0
    while n_num < int(total * 0.10):
        row = "%04d-%02d-%02d %02d:%02d:%02d,%d,%.3f,%s,%d%%,%.2e" % (
            rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
            rng.randint(0, 59), rng.randint(0, 59), rng.randint(-10 ** 6, 10 ** 9),
            rng.uniform(-1000, 1000), "%08x" % rng.getrandbits(32), rng.randint(0, 100),
            rng.uniform(1e-9, 1e9))
        rows.append(row)
        n_num += len(row) + 1

    docs = prose + code + multi + ["\n".join(rows)]
    rng.shuffle(docs)
    text = "\n\n".join(docs)
    data = text.encode("utf-8")
    with open(out, "wb") as f:
        f.write(data)
    print("%s: %.2f MB (prose %.2f, code %.2f, other scripts %.2f, numbers %.2f), sha256 %s"
          % (out, len(data) / 1e6, n_prose / 1e6, n_code / 1e6, n_multi / 1e6, n_num / 1e6,
             hashlib.sha256(data).hexdigest()[:16]))
    if len(data) < 10e6 and mb >= 10:
        sys.exit("make_text.py: only %.2f MB of text found on this machine" % (len(data) / 1e6))


if __name__ == "__main__":
    main()
