#!/usr/bin/python3
"""Writes tests/tokenizer/corpus.jsonl: the strings the gpt2-bpe tokenizer is
checked on against the gpt-3-encoder JavaScript reference (test_reference.py)
and round-tripped (test_roundtrip.py).

One JSON object per line: {"cat": CATEGORY, "text": STRING}. Deterministic
(fixed seeds, no input files): run it again and the file is byte-identical.
The output is committed, so the tests never run this script.

Random code points are drawn only from characters assigned in this Python's
Unicode database (3.11: Unicode 14.0), so utf8proc (15.0) and node's ICU
(17.0) agree on their categories; unassigned and private-use code points are
added on purpose in their own category.

Usage: make_corpus.py [OUT]   (default: corpus.jsonl next to this script)
"""
import json
import os
import random
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))

PROSE = """\
The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks
were striking thirteen. Tokenizers split text into pieces that a language model can count,
and GPT-2's byte-level BPE never needs an unknown token: any byte string has an encoding.
Megatron-Core serves models with an engine, a text-generation controller and a sampler; the
tokenizer turns the prompt into ids before the first forward step and the ids back into text
after the last one. In 2019, OpenAI released a model with 1.5 billion parameters. The team
said the weights would follow "once we understand the risks better." Researchers disagreed.
Some called it prudence; others called it marketing. Either way, people kept asking: how
many tokens is this paragraph? The answer depends on spaces, capital letters, punctuation,
and whether a word was common in the training data. A rare word such as floccinaucinihilipil-
ification costs many tokens, while " the" costs exactly one. Numbers are awkward: 2024 may be
one token or two, and 3.14159 is several. Email addresses like jane.doe@example.com and URLs
like https://example.org/path?query=1&x=y break into many small pieces. Dr. Smith's office
opens at 9:30 a.m. on weekdays (closed on holidays); call +1 (555) 010-2030 for details.
She said, "I can't believe it's already over!" -- and then she laughed. We'll see. They've
gone. You're right, I'm wrong, he'd agree, and we'd all go home. Rock 'n' roll never dies.
Meanwhile, the committee postponed its decision until further notice, citing budget
constraints, scheduling conflicts and an unexpectedly long list of public comments.
Water boils at 100 degrees Celsius at sea level; at higher altitudes it boils sooner.
"""

CODE = [
    "int main(int argc, char **argv)\n{\n    printf(\"hello, world\\n\");\n    return 0;\n}\n",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "for (size_t i = 0; i < n; i++) {\n\tsum += x[i] * y[i];\n}\n",
    "const add = (a, b) => a + b;\nconsole.log(add(2, 3)); // 5\n",
    "{\"name\": \"mcrt\", \"version\": \"0.1.0\", \"tags\": [\"c\", \"inference\"], \"ok\": true}",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l \"$f\"\ndone\n",
    "<html>\n  <body>\n    <p class=\"note\">Hi &amp; bye</p>\n  </body>\n</html>\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name ASC LIMIT 10;",
    "if (x != NULL && x->next == NULL) { free(x); x = NULL; }",
    "    return self._cache.get(key, default)\n",
    "\t\tif err != nil {\n\t\t\treturn nil, fmt.Errorf(\"open %s: %w\", path, err)\n\t\t}\n",
    "fn main() {\n    let v: Vec<u32> = (1..=10).map(|x| x * x).collect();\n}\n",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares\n",
    "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n",
    "  - name: build\n    run: meson compile -C build\n",
    "$ git commit -m \"Fix the off-by-one in the tokenizer's cache\"\n",
    "/* multi-line\n * comment\n */\nstatic const char *s = \"\\t\\x00\";\n",
    "a=1;b=2;c=a+b;print(c)",
    "matrix[i][j] += alpha * A[i][k] * B[k][j];",
    "   \n\n    \t  indented after blank lines\n",
    "lambda x: x if x > 0 else -x",
    "std::vector<std::string> parts; parts.emplace_back(\"x\");",
    "@property\ndef name(self) -> str:\n    return self.__name\n",
    "curl -sS -X POST https://api.example.com/v1/items -H 'Content-Type: application/json' -d '{}'",
    "ls -la /usr/local/bin | grep -v '^d' | awk '{print $9}'",
]

WORDS = ("the of and to in is was he for it with as his on be at by had are but from or have an "
         "they which one you were all her she there would their we him been has when who will no "
         "more if out so up said what its about than into them can only other time new some "
         "could these two may first then do any like my now over such our man me even most made "
         "after also did many before must through back years where much your way well down "
         "should because each just those people how too little state good very make world still "
         "own see men work long get here between both life being under never day same another "
         "know while last might us great old year off come since against go came right used "
         "take three tokenizer model inference parallel tensor pipeline kernel").split()

CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]

ACCENTED = ("café naïve résumé façade coöperate jalapeño piñata über Ångström Zürich São Paulo "
            "crème brûlée déjà vu Ærøskøbing Łódź Kraków Dvořák Škoda Ürümqi İstanbul "
            "Nguyễn Thị Minh Khai Hà Nội Tiếng Việt Ελληνικά Русский язык Українська "
            "español français português Íslenska Čeština Slovenčina Română Türkçe").split()

COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "Z\u0351\u036b\u0343a\u0352l\u0304g\u0301o",
             "\u0915\u094d\u0937", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
             "\u0627\u064e\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629",
             "q\u0307\u0323", "i\u0307", "\u1100\u1161\u11a8", "x\u20dd", "1\u20e3", "\u05e9\u05c1\u05b8"]

CJK = ["你好，世界！", "我爱自然语言处理。", "東京は日本の首都です。", "ひらがなとカタカナ",
       "한국어 텍스트", "안녕하세요 여러분", "中文English混合text", "第3章：结果与讨论（2024年）",
       "「引用」と『二重引用』", "ＡＢＣ１２３（全角）", "漢字かな交じり文", "汉语拼音 hànyǔ pīnyīn",
       "今日は良い天気ですね。散歩に行きましょう。", "大语言模型的推理引擎", "ｶﾀｶﾅ半角",
       "〇一二三四五六七八九十", "龍龘𠀀𠀁𪚥", "これは「テスト」です", "서울특별시 종로구"]

EMOJI = ["😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇳", "🇯🇵🇫🇷", "1️⃣", "#️⃣", "❤️", "❤",
         "👩🏾‍💻", "🧑‍🚀", "🐈‍⬛", "😶‍🌫️", "🫠", "🫶🏻", "👁️‍🗨️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🤷‍♀️",
         "👨🏻‍🤝‍👨🏿", "✌️", "☺", "🙂🙃", "🎉🎊🎈"]

RTL = ["مرحبا بالعالم", "السلام عليكم ورحمة الله", "שלום עולם", "עברית ואנגלית English",
       "فارسی شیرین است", "١٢٣٤٥ ٦٧٨٩٠", "۱۲۳۴ ۵۶۷۸", "اللغة العربية 2024", "\u200fRLM\u200e LRM",
       "\u202eoverride\u202c", "اردو زبان", "ܫܠܡܐ", "ދިވެހި"]

SCRIPTS = ["Γειά σου Κόσμε", "Привет, мир!", "Բարեւ աշխարհ", "გამარჯობა მსოფლიო", "ሰላም ለዓለም",
           "வணக்கம் உலகம்", "হ্যালো বিশ্ব", "नमस्ते दुनिया", "สวัสดีชาวโลก", "ສະບາຍດີ", "ជំរាបសួរ",
           "မင်္ဂလာပါ", "Сайн байна уу", "ᚠᚢᚦᚨᚱᚲ", "ᐊᐃᖓ", "ꦲꦏ꧀ꦱꦫ", "𐌰𐌱𐌲", "Ⅻ Ⅳ ⅷ", "①②③ ⑴⑵",
           "x² + y³ = z⁴", "½ ¾ ⅓", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙", "Ǆǅǆ ǈ", "ﬁ ﬂ ﬀ"]

WHITESPACE_CHARS = [" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u00a0", "\u3000", "\u2003",
                    "\u2028", "\u2029", "\u1680", "\u202f", "\u205f", "\u0085", "\ufeff", "\u200b"]

ENDOFTEXT = "<|endoftext|>"


def assigned(cp):
    if 0xD800 <= cp <= 0xDFFF:
        return False
    return unicodedata.category(chr(cp)) not in ("Cn", "Co", "Cs")


def random_unicode_char(rng):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF),
              (0xE00, 0xEFF), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x2BFF),
              (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFFFD),
              (0x10000, 0x1F9FF), (0x20000, 0x2A6DF)]
    while True:
        lo, hi = rng.choice(ranges)
        cp = rng.randint(lo, hi)
        if assigned(cp):
            return chr(cp)


def sentences():
    text = " ".join(PROSE.split("\n"))
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch in ".!?" and len(cur.strip()) > 1:
            out.append(cur.strip())
            cur = ""
    return out


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus.jsonl")
    rng = random.Random(20241129)
    items = []

    def add(cat, s):
        items.append((cat, s))

    # English prose: sentences, pairs, the whole paragraph, lines with their newlines.
    sents = sentences()
    for s in sents:
        add("prose", s)
        add("prose", " " + s)
        add("prose", s.upper())
        add("prose", s.lower())
    for _ in range(150):
        k = rng.randint(2, 5)
        add("prose", " ".join(rng.choice(sents) for _ in range(k)))
    add("prose", PROSE)
    for line in PROSE.split("\n"):
        add("prose", line + "\n")
    for _ in range(120):
        n = rng.randint(3, 40)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        add("prose", " ".join(words) + rng.choice(["", ".", "!", "?", "...", ",", ";", " ", "\n"]))

    # Code.
    for c in CODE:
        add("code", c)
        add("code", c.replace("    ", "\t"))
        add("code", "    " + c.replace("\n", "\n    "))
    for _ in range(60):
        ident = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                        for _ in range(rng.randint(1, 24)))
        add("code", rng.choice(["%s = %d", "int %s[%d];", "%s(%d)", "self.%s += %d",
                                "#define %s %d", "let %s = %d;", "%s->x[%d]"])
            % (ident, rng.randint(-99999, 99999)))

    # Numbers.
    nums = ["0", "7", "42", "2024", "1999", "10000", "1,000,000", "3.14159", "-273.15", "6.022e23",
            "1e-9", "0x7fffffff", "0b1011", "007", "2024-11-29", "12:30:45", "v1.2.3", "192.168.0.1",
            "+1 (555) 010-2030", "50%", "$19.99", "€5,00", "1/2", "99.9%", "1st 2nd 3rd 4th",
            "٣٫١٤", "१२३", "১২৩", "๑๒๓", "１２３", "Ⅷ", "²³", "¼", "𝟘𝟙𝟚", "𝟏𝟐𝟑", "⓵⓶"]
    for s in nums:
        add("numbers", s)
        add("numbers", " " + s)
        add("numbers", "x" + s + "y")
    for _ in range(120):
        n = rng.choice([rng.randint(0, 9), rng.randint(10, 999), rng.randint(1000, 10 ** 9),
                        rng.randint(10 ** 9, 10 ** 30)])
        fmt = rng.choice(["%d", " %d", "%d.%d" % (n, rng.randint(0, 999)), "(%d)", "#%d", "%d,",
                          "-%d", "%d%%", "%dkm"])
        add("numbers", fmt % n if "%d" in fmt else fmt)

    # Whitespace runs.
    for ws in WHITESPACE_CHARS:
        for k in (1, 2, 3, 7):
            add("whitespace", ws * k)
            add("whitespace", "a" + ws * k + "b")
            add("whitespace", "word" + ws * k)
            add("whitespace", ws * k + "word")
    for _ in range(150):
        parts = []
        for _ in range(rng.randint(1, 8)):
            parts.append(rng.choice(WORDS + ["", "!", "42", "é"]))
            parts.append("".join(rng.choice(WHITESPACE_CHARS[:12]) for _ in range(rng.randint(0, 6))))
        add("whitespace", "".join(parts))
    add("whitespace", "trailing spaces   ")
    add("whitespace", "   leading spaces")
    add("whitespace", "line one\n\nline three\n\n\n")
    add("whitespace", "\n")
    add("whitespace", " ")
    add("whitespace", "\t\t\t")

    # Contractions in both cases.
    for w in ["it", "we", "they", "you", "I", "he", "she", "don", "can", "won", "Y", "rock", ""]:
        for c in CONTRACTIONS:
            for s in (w + c, (w + c).upper(), w.capitalize() + c.upper(), " " + w + c + " ok"):
                add("contractions", s)
    for s in ["don't", "DON'T", "Don'T", "y'all", "'s", "'S", "''s", "'''", "'re'", "rock'n'roll",
              "it\u2019s", "l'homme", "O'Neil's", "'ll'll'll", "he's'd", "'sss", "'tis", " 's",
              "!'s", "5's", "é's", "'Re", "'LL", "'Ve", "'M", "'D", "'T"]:
        add("contractions", s)
        add("contractions", "x " + s + " y")

    # Accents and combining marks.
    for w in ACCENTED:
        add("accents", w)
        add("accents", " " + w)
        add("accents", unicodedata.normalize("NFD", w))
        add("combining", unicodedata.normalize("NFD", " " + w + "!"))
    for _ in range(40):
        add("accents", " ".join(rng.choice(ACCENTED) for _ in range(rng.randint(2, 8))))
    for c in COMBINING:
        add("combining", c)
        add("combining", "x" + c + "y")
        add("combining", " " + c * 3)
    for _ in range(40):
        base = rng.choice("aeiouxyzAEZ ")
        marks = "".join(chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(1, 12)))
        add("combining", base + marks + rng.choice(["", " ", "b", "1"]))

    # CJK, emoji, right-to-left and other scripts.
    for s in CJK:
        add("cjk", s)
        add("cjk", " " + s)
        add("cjk", s + " and English")
    for _ in range(60):
        add("cjk", "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(1, 30))))
    for e in EMOJI:
        add("emoji", e)
        add("emoji", " " + e)
        add("emoji", "I " + e + " it")
        add("emoji", e * 3)
    for _ in range(50):
        add("emoji", "".join(rng.choice(EMOJI) + rng.choice(["", " ", "a", "!"])
                             for _ in range(rng.randint(1, 10))))
    for s in RTL:
        add("rtl", s)
        add("rtl", " " + s)
        add("rtl", "(" + s + ")")
    for _ in range(40):
        add("rtl", " ".join(rng.choice(RTL + WORDS) for _ in range(rng.randint(2, 6))))
    for s in SCRIPTS:
        add("scripts", s)
        add("scripts", " " + s)

    # Control characters (C0, DEL, C1) alone and in text.
    for cp in list(range(0x00, 0x20)) + [0x7F] + list(range(0x80, 0xA0)):
        c = chr(cp)
        add("control", c)
        add("control", "a" + c + "b")
        add("control", " " + c + " ")
    for _ in range(40):
        add("control", "".join(rng.choice([chr(rng.randint(0, 0x1F)), chr(rng.randint(0x80, 0x9F)),
                                           rng.choice(WORDS), " "]) for _ in range(rng.randint(1, 10))))

    # Very long words and runs (the long-word path of BPE beyond 64 bytes).
    for n in (65, 100, 500, 1000, 3000):
        add("long", "a" * n)
        add("long", "ab" * (n // 2))
        add("long", "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
        add("long", "".join(rng.choice("0123456789") for _ in range(n)))
        add("long", " " + "".join(rng.choice("etaoinshrdlu") for _ in range(n)))
    for n in (70, 300, 1200):
        add("long", "-" * n)
        add("long", " " * n)
        add("long", "\n" * n)
        add("long", "".join(rng.choice("!@#$%^&*()_+-=[]{};:,./<>?|~`") for _ in range(n)))
        add("long", "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(n // 3)))
        add("long", "😀" * (n // 4))
        add("long", "é" * (n // 2))
    add("long", "supercalifragilisticexpialidocious" * 20)
    add("long", "Pneumonoultramicroscopicsilicovolcanoconiosis")
    add("long", "https://example.com/" + "/".join(rng.choice(WORDS) for _ in range(100)))
    add("long", "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                        for _ in range(2000)) + "==")

    # <|endoftext|> inside text (plain text by default, as Megatron).
    for s in [ENDOFTEXT, " " + ENDOFTEXT, ENDOFTEXT + ENDOFTEXT, "Hello" + ENDOFTEXT + "World",
              "end." + ENDOFTEXT + "\n\nNew document", "<|endoftext", "endoftext|>",
              "<|endoftext|", "<| endoftext |>", "<|ENDOFTEXT|>", "x <|endoftext|> y",
              ENDOFTEXT * 5, "<|im_start|>user\nhi<|im_end|>", "<s></s>[CLS][SEP]"]:
        add("endoftext", s)
        add("endoftext", s + "\n")

    # Random printable ASCII and random Unicode.
    for _ in range(150):
        add("random_ascii", "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 80))))
    for _ in range(250):
        add("random_unicode", "".join(random_unicode_char(rng) if rng.random() < 0.8 else " "
                                      for _ in range(rng.randint(1, 40))))

    # Unassigned, private-use and noncharacter code points (category Cn/Co in every version).
    for cp in [0x0378, 0x0EFF, 0xE000, 0xF8FF, 0xFDD0, 0xFFFE, 0xFFFF, 0xF0000, 0x10FFFD, 0x10FFFF,
               0xE0001, 0xE007F, 0x1FFFE]:
        add("unassigned", chr(cp))
        add("unassigned", "a" + chr(cp) + "b")
        add("unassigned", " " + chr(cp) * 2)

    seen, lines = set(), []
    for cat, s in items:
        if s in seen:
            continue
        seen.add(s)
        lines.append(json.dumps({"cat": cat, "text": s}, ensure_ascii=True))
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    cats = {}
    for cat, s in items:
        cats[cat] = cats.get(cat, 0) + 1
    print("%s: %d strings (%s)" % (out_path, len(lines),
                                   ", ".join("%s %d" % kv for kv in sorted(cats.items()))))


if __name__ == "__main__":
    main()
