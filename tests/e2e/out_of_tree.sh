#!/bin/bash
# tests/e2e/out_of_tree.sh SRC BUILD: plugins built outside the tree swap
# into a pipeline without recompiling mcrt (issue 5, item 5).
#
# From a scratch directory: install mcrt (DESTDIR), build examples/sampler-ban
# and examples/engine-admission with only the installed headers and
# `pkg-config mcrt`, copy the two .so files into a plugin folder, and run the
# installed `mcrt` with YAML that selects them (on the test-only toy model,
# tokenizer and controller). Each must change the output the way it says:
# the banned token never appears; the over-long prompt is refused while the
# others complete.
set -eu
SRC=$1
BUILD=$2
for tool in meson ninja pkg-config cc; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 77; }
done
S=$(mktemp -d)
trap 'rm -rf "$S"' EXIT

DESTDIR="$S/root" meson install -C "$BUILD" --no-rebuild --quiet >"$S/install.log" 2>&1 ||
    { cat "$S/install.log"; echo "FAIL: meson install"; exit 1; }
PC=$(find "$S/root" -name mcrt.pc | head -n 1)
[ -n "$PC" ] || { echo "FAIL: no mcrt.pc installed"; exit 1; }
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$PC")
export PKG_CONFIG_SYSROOT_DIR="$S/root"
MCRT=$(find "$S/root" -type f -name mcrt -perm -u+x | head -n 1)
[ -x "$MCRT" ] || { echo "FAIL: no installed mcrt"; exit 1; }

mkdir "$S/plugins"
for ex in sampler-ban engine-admission; do
    cp -r "$SRC/examples/$ex" "$S/$ex"
    (cd "$S/$ex" && meson setup b >"$S/$ex.log" 2>&1 && meson compile -C b >>"$S/$ex.log" 2>&1) ||
        { cat "$S/$ex.log"; echo "FAIL: building examples/$ex out of tree"; exit 1; }
    cp "$S/$ex"/b/mcrt-*.so "$S/plugins/"
done

TOY="$BUILD/tests/plugins/toy"
cfg() { # $1 engine section, $2 sampler section
    cat <<YAML
runtime:
  plugin_dirs: [$S/plugins, $TOY]
engine:
$1
controller:
  name: toy
model:
  name: counter
sampler:
$2
tokenizer:
  name: bytes
generation:
  prompts: ["short", "this prompt is longer than twenty bytes", "hi"]
  num_tokens_to_generate: 6
YAML
}
run() { "$MCRT" run "$1" --output-format jsonl -q; }

# the baseline: the toy engine and sampler
cfg "  name: fifo" "  name: greedy" >"$S/base.yaml"
run "$S/base.yaml" >"$S/base.out" || { echo "FAIL: baseline run"; exit 1; }
first=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["generated_tokens"][0])' "$S/base.out")

# the out-of-tree sampler bans the baseline's first token of request 0
cfg "  name: fifo" "  name: ban
  banned_ids: [\"$first\"]" >"$S/ban.yaml"
run "$S/ban.yaml" >"$S/ban.out" || { echo "FAIL: run with sampler ban"; exit 1; }
python3 - "$S/base.out" "$S/ban.out" "$first" <<'PY'
import json, sys
base = [json.loads(l) for l in open(sys.argv[1])]
ban = [json.loads(l) for l in open(sys.argv[2])]
first = int(sys.argv[3])
assert [r["generated_tokens"] for r in base] != [r["generated_tokens"] for r in ban], "sampler ban changed nothing"
for r in ban:
    assert first not in r["generated_tokens"], "banned id %d generated: %r" % (first, r)
print("sampler ban: output changed, id %d never generated" % first)
PY

# the out-of-tree engine refuses the 39-byte prompt
cfg "  name: admission
  max_batch_size: 2
  max_prompt_bytes: 20" "  name: greedy" >"$S/adm.yaml"
set +e
run "$S/adm.yaml" >"$S/adm.out"
rc=$?
set -e
[ "$rc" = 65 ] || { echo "FAIL: engine admission: exit $rc, expected 65 (a request failed)"; exit 1; }
python3 - "$S/base.out" "$S/adm.out" <<'PY'
import json, sys
base = [json.loads(l) for l in open(sys.argv[1])]
adm = [json.loads(l) for l in open(sys.argv[2])]
assert len(adm) == 3
assert adm[1]["finish_reason"] == "error" and "max_prompt_bytes is 20" in adm[1]["error"], adm[1]
for i in (0, 2):
    assert adm[i]["generated_tokens"] == base[i]["generated_tokens"], (adm[i], base[i])
print("engine admission: request 1 refused (%s); requests 0 and 2 as before" % adm[1]["error"])
PY
echo "out-of-tree plugins: OK"
