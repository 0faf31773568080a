"""What the detectors know about Windows: system binaries, trusted folders, JIT hosts, ETW entry points.

Kept as data so that reviewers can read and extend it without touching detection logic.
"""

from __future__ import annotations

import re

#: Binaries that live in System32/SysWOW64 (or their wbem folder) on every Windows: a module with one
#: of these names loaded from anywhere else is masquerading.
SYSTEM_BINARIES = frozenset(
    [
        "ntdll.dll",
        "kernel32.dll",
        "kernelbase.dll",
        "user32.dll",
        "win32u.dll",
        "gdi32.dll",
        "gdi32full.dll",
        "advapi32.dll",
        "sechost.dll",
        "rpcrt4.dll",
        "combase.dll",
        "ole32.dll",
        "oleaut32.dll",
        "msvcrt.dll",
        "msvcp_win.dll",
        "ucrtbase.dll",
        "bcrypt.dll",
        "bcryptprimitives.dll",
        "cryptbase.dll",
        "crypt32.dll",
        "ws2_32.dll",
        "shell32.dll",
        "shlwapi.dll",
        "shcore.dll",
        "version.dll",
        "amsi.dll",
        "wldp.dll",
        "clbcatq.dll",
        "imm32.dll",
        "ntmarta.dll",
        "sspicli.dll",
        "kernel.appcore.dll",
        "powrprof.dll",
        "profapi.dll",
        "userenv.dll",
        "wintrust.dll",
        "dbghelp.dll",
        "dbgcore.dll",
        "wow64.dll",
        "wow64cpu.dll",
        "wow64win.dll",
        "wow64base.dll",
        "wow64con.dll",
        "msasn1.dll",
        "cryptsp.dll",
        "rsaenh.dll",
        "netapi32.dll",
        "iphlpapi.dll",
        "dnsapi.dll",
        "mswsock.dll",
        "winhttp.dll",
        "wininet.dll",
        "urlmon.dll",
        "samcli.dll",
        "svchost.exe",
        "lsass.exe",
        "services.exe",
        "winlogon.exe",
        "csrss.exe",
        "smss.exe",
        "explorer.exe",
        "rundll32.exe",
        "wmiprvse.exe",
        "wbemcore.dll",
        "wbemprox.dll",
        "wbemsvc.dll",
        "fastprox.dll",
        "wmiutils.dll",
        "wbemcomn.dll",
        "wmisvc.dll",
        "repdrvfs.dll",
        "esscli.dll",
        "wbemess.dll",
        "framedynos.dll",
        "ncobjapi.dll",
        "cimwin32.dll",
        "wbemcons.dll",
        "scrcons.exe",
        "wmidcprv.dll",
        "wmiprov.dll",
        "wmiprvsd.dll",
        "wmipcima.dll",
        "wmiperfclass.dll",
        "wmiperfinst.dll",
        "mofd.dll",
        "mofcomp.exe",
        "wbemdisp.dll",
        "wmiclnt.dll",
        "wmiaprpl.dll",
        "provthrd.dll",
        "stdprov.dll",
        "krnlprov.dll",
        "ntevt.dll",
        "wmipicmp.dll",
        "wmipdskq.dll",
        "wmipiprt.dll",
        "wmipjobj.dll",
        "wmipsess.dll",
        "wmiapsrv.exe",
        "unsecapp.exe",
    ]
)

#: Where Windows keeps its own binaries (lower case, backslashes, drive-independent).
SYSTEM_FOLDERS = (
    "\\windows\\system32\\",
    "\\windows\\syswow64\\",
    "\\windows\\sysnative\\",
    "\\windows\\winsxs\\",
)

#: Folders any user can write to: a DLL loaded from there into a WMI host is worth a look.
USER_WRITABLE_MARKERS = (
    "\\users\\",
    "\\programdata\\",
    "\\windows\\temp\\",
    "\\appdata\\",
    "\\temp\\",
    "\\tmp\\",
    "\\perflogs\\",
    "\\$recycle.bin\\",
    "\\windows\\tasks\\",
    "\\windows\\tracing\\",
)

#: Modules whose presence means private executable memory is expected (JIT compilers).
JIT_MODULES = frozenset(
    [
        "clr.dll",
        "coreclr.dll",
        "clrjit.dll",
        "mscorwks.dll",
        "mscorjit.dll",
        "mscoreei.dll",
        "jscript9.dll",
        "chakra.dll",
        "chakracore.dll",
        "v8.dll",
        "libv8.dll",
        "node.dll",
        "mono-2.0-bdwgc.dll",
        "mono-2.0-sgen.dll",
        "libmonosgen-2.0.dll",
    ]
)

#: WMI consumer and script-host modules: their presence in a provider host is context for an analyst.
WMI_CONSUMER_MODULES = {
    "wbemcons.dll": "hosts the standard event consumers (CommandLineEventConsumer, LogFileEventConsumer, "
    "...): it loads when a permanent event subscription fires",
    "scrcons.exe": "runs ActiveScriptEventConsumer scripts",
    "vbscript.dll": "VBScript engine: ActiveScriptEventConsumer and script providers load it",
    "jscript.dll": "JScript engine: ActiveScriptEventConsumer and script providers load it",
    "scrobj.dll": "Windows Script Component runtime (scriptlets)",
}

#: User-mode ETW entry points attackers patch, per module.
ETW_FUNCTIONS = {
    "ntdll.dll": ("EtwEventWrite", "EtwEventWriteFull", "EtwpEventWriteFull", "NtTraceEvent"),
    "advapi32.dll": ("EventWrite",),
}

#: Exports that are a classic remote-thread start address: CreateRemoteThread(LoadLibrary, "x.dll").
LOADER_ENTRY_POINTS = {
    "kernel32.dll": ("LoadLibraryA", "LoadLibraryW", "LoadLibraryExA", "LoadLibraryExW"),
    "kernelbase.dll": ("LoadLibraryA", "LoadLibraryW", "LoadLibraryExA", "LoadLibraryExW"),
    "ntdll.dll": ("LdrLoadDll",),
}

#: Where WmiPrvSE.exe lives (normalised, drive-independent suffixes).
WMIPRVSE_SUFFIXES = ("\\windows\\system32\\wbem\\wmiprvse.exe", "\\windows\\syswow64\\wbem\\wmiprvse.exe")

_DEVICE_PREFIX = re.compile(r"^\\device\\harddiskvolume\d+\\")


def normalise_path(path: str) -> str:
    """Lower case, backslashes, NT prefixes (``\\??\\``, ``\\SystemRoot``, volume devices) removed."""
    text = path.replace("/", "\\").lower()
    for prefix in ("\\??\\", "\\\\?\\", "\\\\.\\"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if text.startswith("\\systemroot\\"):
        text = "c:\\windows\\" + text[len("\\systemroot\\") :]
    text = _DEVICE_PREFIX.sub("c:\\\\", text)
    return text


def in_system_folder(path: str) -> bool:
    text = normalise_path(path)
    return any(folder in text for folder in SYSTEM_FOLDERS)


def in_user_writable_folder(path: str) -> bool:
    text = normalise_path(path)
    return any(marker in text for marker in USER_WRITABLE_MARKERS)
