#!/usr/bin/env bash
# nm_exports.sh PLUGIN.so...: every mcrt plugin exports exactly one dynamic
# symbol, the data object `mcrt_plugin` (nm type D or R). Prints each file
# that breaks the rule with its extra or missing symbols, and exits 1; exits 1
# when given no file at all, so an empty list cannot pass.
#
# Tolerated, and only these, because the toolchain makes them, not the plugin:
#  - linker-made symbols: GNU ld 2.40 (Debian 12, gcc 12) exports none from a
#    -fvisibility=hidden module, but gold exports __bss_start, _edata and
#    _end, and older GNU ld also _init and _fini;
#  - AddressSanitizer's ODR indicator for the descriptor itself:
#    __odr_asan.mcrt_plugin (gcc) or __odr_asan_gen_mcrt_plugin (clang).
# None is plugin code, and the loader dlopens with RTLD_LOCAL, so none can
# interpose on anything.
#
# Environment: NM overrides the nm program.
set -u

if [ "$#" -eq 0 ]; then
    echo "nm_exports.sh: no plugin given (usage: nm_exports.sh PLUGIN.so...)" >&2
    exit 1
fi

nm_prog=${NM:-nm}
toolchain_made=' __bss_start _edata _end _init _fini __odr_asan.mcrt_plugin __odr_asan_gen_mcrt_plugin '
status=0
for so in "$@"; do
    if ! syms=$("$nm_prog" -D --defined-only "$so" 2>/dev/null); then
        echo "$so: FAIL: $nm_prog -D could not read it" >&2
        status=1
        continue
    fi
    extra=''
    found=''
    # Lines are "ADDRESS TYPE NAME"; NAME may carry a version (@VER, @@VER).
    while read -r _addr type name; do
        [ -n "${name:-}" ] || continue
        name=${name%%@*}
        if [ "$name" = mcrt_plugin ]; then
            case "$type" in
                D | R) found=yes ;;
                *) extra="$extra mcrt_plugin(type $type, want data: D or R)" ;;
            esac
        elif [[ "$toolchain_made" != *" $name "* ]]; then
            extra="$extra $name"
        fi
    done <<<"$syms"
    if [ -z "$found" ]; then
        echo "$so: FAIL: does not export the data symbol mcrt_plugin" >&2
        status=1
    fi
    if [ -n "$extra" ]; then
        echo "$so: FAIL: exports more than mcrt_plugin:$extra" >&2
        status=1
    fi
    if [ -n "$found" ] && [ -z "$extra" ]; then
        echo "$so: ok"
    fi
done
exit "$status"
