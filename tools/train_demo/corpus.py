"""Build the demo model's English training text from files that Debian packages install.

    apt-get install -y fortunes wordnet-base gnome-user-docs debian-handbook jargon-text
    /usr/bin/python3 tools/train_demo/corpus.py --out tools/train_demo/work/corpus.jsonl

Sources (each file named in SOURCES below; licences from the packages' debian/copyright):

| package          | files                                           | licence                     |
|------------------|-------------------------------------------------|-----------------------------|
| fortunes         | /usr/share/games/fortunes/* (not off/, art)     | BSD (UC Regents, 1991)      |
| wordnet-base     | /usr/share/wordnet/data.{noun,verb,adj,adv}     | WordNet 3.0 licence (BSD-like) |
| gnome-user-docs  | /usr/share/help/C/{gnome-help,system-admin-guide}/*.page | CC BY-SA 3.0       |
| debian-handbook  | /usr/share/doc/debian-handbook/html/en-US/*.html | GPL-2+ or CC BY-SA 3.0     |
| jargon-text      | /usr/share/doc/jargon-text/jargon.txt.gz        | public domain               |

Output: one JSON object per line, {"source": ..., "name": ..., "text": ...}, one document per
fortune, per group of WordNet synsets, per help page, per handbook chapter, per group of
Jargon File entries. Markup is stripped to plain paragraphs separated by blank lines. The
output is a pure function of the installed files (sorted walks, no randomness).
"""

import argparse
import gzip
import html.parser
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

FORTUNE_DIR = "/usr/share/games/fortunes"
FORTUNE_SKIP = {"art", "ascii-art", "linuxcookie", "perl", "pets", "zippy"}   # pictures, code, noise
WORDNET_FILES = ["/usr/share/wordnet/data.%s" % pos for pos in ("noun", "verb", "adj", "adv")]
HELP_DIRS = ["/usr/share/help/C/gnome-help", "/usr/share/help/C/system-admin-guide"]
HANDBOOK_DIR = "/usr/share/doc/debian-handbook/html/en-US"
JARGON_TEXT = "/usr/share/doc/jargon-text/jargon.txt.gz"
SYNSETS_PER_DOC = 40
JARGON_ENTRIES_PER_DOC = 20


def normalize_space(text):
    return re.sub(r"\s+", " ", text).strip()


def fortune_docs():
    """Each fortune (text between '%' lines) of each English fortune file."""
    for name in sorted(os.listdir(FORTUNE_DIR)):
        path = os.path.join(FORTUNE_DIR, name)
        if "." in name or name in FORTUNE_SKIP or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            chunks = f.read().split("\n%\n")
        for i, chunk in enumerate(chunks):
            text = chunk.strip("%\n")
            if len(text) >= 20:
                yield "fortunes", "%s#%d" % (name, i), text.expandtabs(8).rstrip() + "\n"


def sentence(text):
    """'the dog barked' -> 'The dog barked.'"""
    text = text.strip().strip('"').strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def wordnet_docs():
    """WordNet synsets that have example sentences, as lines
    'word, word: definition. Example. Example.', 40 to a document."""
    for path in WORDNET_FILES:
        lines = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue                                   # the licence header
                fields, gloss = line.split("|", 1)
                parts = fields.split()
                count = int(parts[3], 16)
                words = [parts[4 + 2 * k].replace("_", " ") for k in range(count)]
                words = [re.sub(r"\([a-z]+\)$", "", w) for w in words]   # adjective markers
                pieces = [p.strip() for p in gloss.split(";")]
                definition = [p for p in pieces if p and not p.startswith('"')]
                examples = [sentence(p) for p in pieces if p.startswith('"')]
                if not examples:
                    continue                   # keep the synsets with example sentences
                text = ", ".join(words[:3]) + ": " + "; ".join(definition).rstrip(".") + "."
                if examples:
                    text += " " + " ".join(e for e in examples if e)
                lines.append(text)
        for start in range(0, len(lines), SYNSETS_PER_DOC):
            yield ("wordnet", "%s#%d" % (os.path.basename(path), start),
                   "\n".join(lines[start:start + SYNSETS_PER_DOC]) + "\n")


MALLARD = "{http://projectmallard.org/1.0/}"
MALLARD_BLOCKS = {"title", "p", "desc"}


def mallard_paragraphs(element, out, in_info=False):
    """Text of the title/p/desc blocks of a Mallard page, outside <info>, in document order."""
    tag = element.tag.replace(MALLARD, "")
    if tag == "info":
        return
    if tag in MALLARD_BLOCKS:
        text = normalize_space("".join(element.itertext()))
        if text:
            out.append(text)
        return
    for child in element:
        mallard_paragraphs(child, out)


def help_docs():
    for folder in HELP_DIRS:
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".page"):
                continue
            try:
                root = ET.parse(os.path.join(folder, name)).getroot()
            except ET.ParseError:
                continue
            paragraphs = []
            mallard_paragraphs(root, paragraphs)
            if paragraphs:
                yield "gnome-user-docs", "%s/%s" % (os.path.basename(folder), name), \
                    "\n\n".join(paragraphs) + "\n"


class ParagraphParser(html.parser.HTMLParser):
    """Collects the text of <p>, <div class="para">, <h1>..<h4> and <dt>, skipping <pre>."""

    BLOCKS = {"p", "h1", "h2", "h3", "h4", "dt"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs = []
        self.depth = 0
        self.skip = 0
        self.buffer = []
        self.div_is_block = []

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            block = ("class", "para") in attrs
            self.div_is_block.append(block)
            if not block:
                return
        if tag in ("pre", "script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS or tag == "div":
            if self.depth == 0:
                self.buffer = []
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and not (self.div_is_block and self.div_is_block.pop()):
            return
        if tag in ("pre", "script", "style"):
            self.skip = max(0, self.skip - 1)
        elif (tag in self.BLOCKS or tag == "div") and self.depth > 0:
            self.depth -= 1
            if self.depth == 0:
                text = normalize_space("".join(self.buffer))
                if text:
                    self.paragraphs.append(text)

    def handle_data(self, data):
        if self.depth > 0 and self.skip == 0:
            self.buffer.append(data)


def html_paragraphs(path):
    parser = ParagraphParser()
    with open(path, encoding="utf-8", errors="replace") as f:
        parser.feed(f.read())
    return parser.paragraphs


def handbook_docs():
    for name in sorted(os.listdir(HANDBOOK_DIR)):
        if name.endswith(".html"):
            paragraphs = html_paragraphs(os.path.join(HANDBOOK_DIR, name))
            if paragraphs:
                yield "debian-handbook", name, "\n\n".join(paragraphs) + "\n"


def jargon_docs():
    """The Jargon File's glossary (from its first entry on), 20 entries to a document; the
    cross-reference braces {word} are dropped."""
    with gzip.open(JARGON_TEXT, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    text = text[text.index("\n   :0:"):]
    entries = []
    for block in re.split(r"\n\s*\n", text):
        paragraph = normalize_space(block.replace("{", "").replace("}", ""))
        if not paragraph:
            continue
        if paragraph.startswith(":"):
            entries.append([paragraph[1:]])
        elif entries:
            entries[-1].append(paragraph)
    for start in range(0, len(entries), JARGON_ENTRIES_PER_DOC):
        group = entries[start:start + JARGON_ENTRIES_PER_DOC]
        yield "jargon-text", "jargon.txt#%d" % start, \
            "\n\n".join("\n".join(e) for e in group) + "\n"


SOURCES = [
    ("fortunes", FORTUNE_DIR, fortune_docs),
    ("wordnet-base", WORDNET_FILES[0], wordnet_docs),
    ("gnome-user-docs", HELP_DIRS[0], help_docs),
    ("debian-handbook", HANDBOOK_DIR, handbook_docs),
    ("jargon-text", JARGON_TEXT, jargon_docs),
]


def build(out_path, log=print):
    missing = [pkg for pkg, path, _ in SOURCES if not os.path.exists(path)]
    if missing:
        raise SystemExit("corpus: missing %s; run: apt-get install -y %s"
                         % (", ".join(missing), " ".join(pkg for pkg, _, _ in SOURCES)))
    tmp = out_path + ".tmp"
    sizes = {}
    with open(tmp, "w", encoding="utf-8") as out:
        for pkg, _, make in SOURCES:
            for source, name, text in make():
                out.write(json.dumps({"source": source, "name": name, "text": text},
                                     ensure_ascii=False) + "\n")
                docs, size = sizes.get(source, (0, 0))
                sizes[source] = (docs + 1, size + len(text.encode("utf-8")))
    os.replace(tmp, out_path)
    for source, (docs, size) in sizes.items():
        log("corpus: %-16s %6d documents %6.2f MB" % (source, docs, size / 1e6))
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    build(args.out)


if __name__ == "__main__":
    sys.exit(main())
