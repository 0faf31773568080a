#!/bin/sh
# Rebuild the WMI client objects the compiled-code rules are checked against (COFF .o, as BOFs ship).
# Needs Debian's g++-mingw-w64-x86-64 and g++-mingw-w64-i686; versions go to COMPILERS.txt.
set -eu
cd "$(dirname "$0")"
: > COMPILERS.txt
for arch in x86_64 i686; do
    compiler="${arch}-w64-mingw32-g++"
    "$compiler" --version | head -n 1 >> COMPILERS.txt
    for source in wmi_client_text wmi_client_imm; do
        for opt in O0 O2 Os; do
            "$compiler" "-$opt" -c -fno-asynchronous-unwind-tables -fno-ident -o "$source.$arch.$opt.o" "$source.cpp"
        done
    done
done
