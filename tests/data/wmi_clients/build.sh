#!/bin/sh
# Rebuild the WMI client objects the compiled-code rules are checked against (COFF .o, as BOFs ship).
# Needs Debian's g++-mingw-w64-x86-64 and g++-mingw-w64-i686; versions go to COMPILERS.txt.
set -eu
cd "$(dirname "$0")"
: > COMPILERS.txt
for arch in x86_64 i686; do
    compiler="${arch}-w64-mingw32-g++"
    "$compiler" --version | head -n 1 >> COMPILERS.txt
    for opt in O0 O2 Os; do
        flags="-$opt -c -fno-asynchronous-unwind-tables -fno-ident"
        # shellcheck disable=SC2086
        "$compiler" $flags -DGUIDS_AS_TEXT -o "wmi_client_text.$arch.$opt.o" wmi_client.cpp
        # shellcheck disable=SC2086
        "$compiler" $flags -o "wmi_client_imm.$arch.$opt.o" wmi_client.cpp
    done
done
