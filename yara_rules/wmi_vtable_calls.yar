/*
    IWbemServices method calls through the vtable in compiled code that no image backs.

    Index = MS-WMI opnum; slot offset = index * pointer size; arguments counted with the interface
    pointer ("this"):
      method                  index   args   x64 offset   x86 offset
      PutInstance               14      5      +0x70        +0x38
      ExecQuery                 20      6      +0xA0        +0x50
      ExecNotificationQuery     22      6      +0xB0        +0x58
      ExecMethod                24      8      +0xC0        +0x60

    x64 (Microsoft ABI): four arguments travel in rcx/rdx/r8/r9, the rest on the stack at [rsp+20h],
    [rsp+28h], ... So a compiled ExecMethod call stores its last argument to [rsp+38h] (mov, or
    "and qword ptr [rsp+38h],0" for a NULL) within 40 bytes before "call qword ptr [rax+0C0h]"
    (FF 90 C0 00 00 00); ExecQuery/ExecNotificationQuery store to [rsp+28h], PutInstance to [rsp+20h]
    (its call is the disp8 form FF 50 70). With CFG the slot is loaded with "mov rax,[rax+0C0h]"
    (48 8B 80 C0 00 00 00) and called through "call [__guard_dispatch_icall_fptr]" (FF 15 rel32).
    x86 (stdcall): every argument is pushed. The x86 strings ask for an unbroken run of argument set-up
    instructions (push reg/imm8/imm32, push [ebp+d8], push [esp+d8], push [abs], and the lea/mov from
    [ebp+d8]/[esp+d8] that feed those pushes): five for ExecMethod, four for ExecQuery and
    ExecNotificationQuery, three for PutInstance, then the interface pointer pushed last and
    "call dword ptr [eax+60h]" (FF 50 60). No gaps inside the run: gaps made the pattern cost grow with
    every push in the data.

    One call with a plausible argument count is still ordinary C++ (slot 24 of some other class), so the
    rules need two different IWbemServices methods within 4 KiB with WMI text (WQL, root\cimv2,
    SELECT * FROM, Win32_Process) or GUID bytes within 64 KiB, or one call within 64 KiB of the
    locator/services/login GUID bytes that position-independent WMI code carries inline. Two calls
    alone fired in libLLVM-14/15 (x86-64 ELF, bench/code_rule_false_positives.py), hence the WMI text. Measured on
    135 MiB of MSVC-built C++ (x64 and x86 DLLs of pyarrow, numpy and wxPython): no hit; the simpler
    "mov rax,[rcx] ... call [rax+0C0h]" forms fired in 13 of those 110 files.
    Each anchor loop looks at the first 256 calls of a kind per scanned block (cost stays linear).
*/

import "math"

rule WMI_IWbemServices_Vtable_Calls_x64 : wmi shellcode x64
{
    meta:
        description = "x64 code in unbacked executable memory calling two different IWbemServices methods (ExecMethod, ExecQuery, ExecNotificationQuery, PutInstance) through the vtable within 4 KiB, with the stack arguments each method needs and WMI text (WQL, root\\cimv2, SELECT * FROM, Win32_Process) within 64 KiB, or one such call within 64 KiB of WMI locator/services/login GUID bytes"
        severity = "high"
        mitre_attack = "T1047, T1620"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmi/"
        scope = "unbacked-exec"
        author = "wmi-forensics"
        example_positive = "hex:48 8B 01 48 8D 54 24 50 48 89 54 24 28 48 83 64 24 20 00 41 B9 30 00 00 00 4C 8B C7 48 8B D6 FF 90 A0 00 00 00 + hex:85 C0 78 40 48 8B 0B + hex:48 8B 01 48 8D 54 24 60 48 89 54 24 38 48 83 64 24 30 00 48 89 7C 24 28 48 83 64 24 20 00 45 33 C9 4C 8B C6 48 8B D3 FF 90 C0 00 00 00 + hex:C3 + zeros:64 + wide:WQL + hex:00 00"
        example_positive_2 = "hex:48 8B 01 48 8B 80 B0 00 00 00 48 8D 54 24 50 48 89 54 24 28 48 83 64 24 20 00 41 B9 30 00 00 00 4C 8B C7 48 8B D6 FF 15 F2 3E 01 00 + hex:85 C0 78 20 48 8B 0B + hex:48 8B 01 48 8B 40 70 48 83 64 24 20 00 45 33 C9 41 B8 02 00 00 00 48 8B D7 FF 15 DA 3E 01 00 + hex:C3 + zeros:64 + wide:WQL + hex:00 00"
        example_positive_3 = "hex:11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 + zeros:48 + hex:48 8B 01 48 8D 54 24 60 48 89 54 24 38 48 83 64 24 30 00 48 89 7C 24 28 48 83 64 24 20 00 45 33 C9 4C 8B C6 48 8B D3 FF 90 C0 00 00 00 C3"
        example_near_miss = "hex:48 8B 01 48 8D 54 24 60 48 89 54 24 38 48 83 64 24 30 00 48 89 7C 24 28 48 83 64 24 20 00 45 33 C9 4C 8B C6 48 8B D3 FF 90 C0 00 00 00 C3"
        example_near_miss_2 = "hex:48 8B 01 48 89 54 24 38 48 8B D3 FF 90 C0 00 00 00 85 C0 78 08 48 8B 01 48 89 7C 24 38 48 8B D7 FF 90 C0 00 00 00 C3"
        example_near_miss_3 = "hex:48 8B 01 48 8B D6 FF 90 A0 00 00 00 85 C0 78 0A 48 8B 01 48 8B D7 FF 90 C0 00 00 00 C3"
        example_near_miss_4 = "hex:48 8B 01 48 8B D6 FF 50 50 85 C0 78 0A 48 8B 01 48 8B D7 FF 50 60 C3"

    strings:
        $exec_method = { ( (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 38 [0-40] FF 90 C0 00 00 00
                | (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 38 [0-40] 48 8B 80 C0 00 00 00 [0-40] FF 15
                | 48 8B 80 C0 00 00 00 [0-40] (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 38 [0-40] FF 15 ) }
        $exec_query = { ( (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 28 [0-40] FF 90 A0 00 00 00
                | (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 28 [0-40] 48 8B 80 A0 00 00 00 [0-40] FF 15
                | 48 8B 80 A0 00 00 00 [0-40] (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 28 [0-40] FF 15 ) }
        $exec_notification_query = { ( (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 28 [0-40] FF 90 B0 00 00 00
                | (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 28 [0-40] 48 8B 80 B0 00 00 00 [0-40] FF 15
                | 48 8B 80 B0 00 00 00 [0-40] (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 28 [0-40] FF 15 ) }
        $put_instance = { ( (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 20 [0-40] FF 50 70
                | (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 20 [0-40] 48 8B 40 70 [0-40] FF 15
                | 48 8B 40 70 [0-40] (48|4C) (89|C7|21|83) (44|4C|54|5C|64|6C|74|7C) 24 20 [0-40] FF 15 ) }

        $g_clsid_locator = { 11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 }
        $g_iid_locator = { 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 }
        $g_iid_services = { 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 }
        $g_clsid_level1 = { 5E F0 C3 8B 6B D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $g_iid_level1 = { 18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $w_wql = "WQL" ascii wide fullword
        $w_namespace = "root\\cimv2" ascii wide nocase
        $w_select = "SELECT * FROM " ascii wide nocase
        $w_win32 = "Win32_Process" ascii wide nocase

    condition:
        for any i in (1..math.min(#exec_method, 256)) : (
            (any of ($exec_query, $exec_notification_query, $put_instance) in (@exec_method[i] - 0x1000 .. @exec_method[i] + 0x1000) and any of ($w_*) in (@exec_method[i] - 0x10000 .. @exec_method[i] + 0x10000))
            or any of ($g_*) in (@exec_method[i] - 0x10000 .. @exec_method[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_query, 256)) : (
            (any of ($exec_notification_query, $put_instance) in (@exec_query[i] - 0x1000 .. @exec_query[i] + 0x1000) and any of ($w_*) in (@exec_query[i] - 0x10000 .. @exec_query[i] + 0x10000))
            or any of ($g_*) in (@exec_query[i] - 0x10000 .. @exec_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_notification_query, 256)) : (
            ($put_instance in (@exec_notification_query[i] - 0x1000 .. @exec_notification_query[i] + 0x1000) and any of ($w_*) in (@exec_notification_query[i] - 0x10000 .. @exec_notification_query[i] + 0x10000))
            or any of ($g_*) in (@exec_notification_query[i] - 0x10000 .. @exec_notification_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#put_instance, 256)) : (any of ($g_*) in (@put_instance[i] - 0x10000 .. @put_instance[i] + 0x10000))
}

rule WMI_IWbemServices_Vtable_Calls_x86 : wmi shellcode x86
{
    meta:
        description = "x86 code in unbacked executable memory calling two different IWbemServices methods (ExecMethod, ExecQuery, ExecNotificationQuery, PutInstance) through the vtable within 4 KiB, each after the pushes its arguments need with the interface pointer pushed last, with WMI text within 64 KiB, or one such call within 64 KiB of WMI locator/services/login GUID bytes"
        severity = "high"
        mitre_attack = "T1047, T1620"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmi/"
        scope = "unbacked-exec"
        author = "wmi-forensics"
        example_positive = "hex:8B 06 8D 4D F8 51 6A 00 6A 30 57 53 56 FF 50 50 + hex:85 C0 78 1A + hex:8B 06 6A 00 6A 00 FF 75 F4 6A 00 FF 75 F0 FF 75 EC 56 FF 50 60 + hex:C3 + zeros:64 + wide:WQL + hex:00 00"
        example_positive_2 = "hex:87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 + zeros:32 + hex:8B 07 6A 00 6A 00 FF 75 08 6A 00 53 57 FF 50 58 C3"
        example_positive_3 = "hex:8B 01 6A 00 6A 00 6A 00 FF 74 24 1C 51 FF 50 38 85 C0 78 10 8B 06 6A 00 6A 00 6A 00 6A 00 57 53 56 FF 50 60 C3 + zeros:64 + wide:WQL + hex:00 00"
        example_near_miss = "hex:8B 06 6A 00 6A 00 FF 75 F4 6A 00 FF 75 F0 FF 75 EC 56 FF 50 60 C3"
        example_near_miss_2 = "hex:8B 06 8B CE 56 FF 50 50 85 C0 78 0A 8B 06 57 56 FF 50 60 C3"
        example_near_miss_3 = "hex:48 8B 01 48 8B D6 FF 50 50 85 C0 78 0A 48 8B 01 48 8B D7 FF 50 60 C3"

    strings:
        $exec_method = { ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | FF 75 ?? | FF 74 24 ?? ) FF 50 60 }
        $exec_query = { ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | FF 75 ?? | FF 74 24 ?? ) FF 50 50 }
        $exec_notification_query = { ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | FF 75 ?? | FF 74 24 ?? ) FF 50 58 }
        $put_instance = { ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | 6A ?? | 68 ?? ?? ?? ?? | FF 75 ?? | FF 74 24 ?? | FF 35 ?? ?? ?? ?? | (8B|8D) (45|4D|55|5D|75|7D) ?? | (8B|8D) (44|4C|54|5C|74|7C) 24 ?? )
                ( 50|51|52|53|56|57 | FF 75 ?? | FF 74 24 ?? ) FF 50 38 }

        $g_clsid_locator = { 11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 }
        $g_iid_locator = { 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 }
        $g_iid_services = { 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 }
        $g_clsid_level1 = { 5E F0 C3 8B 6B D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $g_iid_level1 = { 18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $w_wql = "WQL" ascii wide fullword
        $w_namespace = "root\\cimv2" ascii wide nocase
        $w_select = "SELECT * FROM " ascii wide nocase
        $w_win32 = "Win32_Process" ascii wide nocase

    condition:
        for any i in (1..math.min(#exec_method, 256)) : (
            (any of ($exec_query, $exec_notification_query, $put_instance) in (@exec_method[i] - 0x1000 .. @exec_method[i] + 0x1000) and any of ($w_*) in (@exec_method[i] - 0x10000 .. @exec_method[i] + 0x10000))
            or any of ($g_*) in (@exec_method[i] - 0x10000 .. @exec_method[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_query, 256)) : (
            (any of ($exec_notification_query, $put_instance) in (@exec_query[i] - 0x1000 .. @exec_query[i] + 0x1000) and any of ($w_*) in (@exec_query[i] - 0x10000 .. @exec_query[i] + 0x10000))
            or any of ($g_*) in (@exec_query[i] - 0x10000 .. @exec_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_notification_query, 256)) : (
            ($put_instance in (@exec_notification_query[i] - 0x1000 .. @exec_notification_query[i] + 0x1000) and any of ($w_*) in (@exec_notification_query[i] - 0x10000 .. @exec_notification_query[i] + 0x10000))
            or any of ($g_*) in (@exec_notification_query[i] - 0x10000 .. @exec_notification_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#put_instance, 256)) : (any of ($g_*) in (@put_instance[i] - 0x10000 .. @put_instance[i] + 0x10000))
}

/*
    One IWbemServices call as GCC (mingw-w64 12) really emits it, next to the client's GUID evidence.
    Checked against tests/data/wmi_clients/ (a BOF-style client built at -O0/-O2/-Os for x64 and x86,
    GUIDs from text through CLSIDFromString or from immediates). Forms:
      x64 -O0   add rax,0C0h / mov r10,[rax] / ... / call r10    (48 05 C0 00 00 00  4C 8B 10 ... 41 FF D2),
                or add rdx,imm32 / mov r10,[rdx] (48 81 C2 ...), PutInstance with add rax,70h (48 83 C0 70)
      x64 -O2/-Os  a stack-argument store to [rsp+20h] then call [reg+0C0h] (FF 90 C0 00 00 00)
      x86 -O0   mov eax,[eax] / add eax,60h / mov eax,[eax] / ... / call eax   (8B 00 83 C0 60 8B 00 ... FF D0)
      x86 -O2/-Os  GCC's mov [esp+n] argument stores (no pushes) then call [edx+60h] (FF 52 60)
      CFG (MSVC /guard:cf, not compiled here: no CFG-capable compiler on this machine; written from the
      documented dispatch sequences)  x64 mov rax,[rax+0C0h] ... call [__guard_dispatch_icall_fptr]
      (48 8B 80 C0 00 00 00 ... FF 15 rel32); x86 mov esi,[eax+60h] ... call [__guard_check_icall_fptr]
      ... call esi (8B 70 60 ... FF 15 abs32 ... FF D6)
    GUID evidence (within 64 KiB): the locator/services/login GUID as text (ASCII or UTF-16), as bytes,
    or as immediates (data1 then data2 within 40 bytes: movabs, mov [rsp+n],imm32, or/movw pairs).
*/

rule WMI_IWbemServices_Single_Call_x64_Near_Client_GUID : wmi shellcode x64
{
    meta:
        description = "x64 code in unbacked executable memory with one IWbemServices call as compilers emit it (-O0 add reg,slot / mov r10,[reg] / call r10, or -O2/-Os stack-argument store then call [reg+slot]) within 64 KiB of the WMI locator/services/login GUID as text, bytes or immediates: a BOF or shellcode WMI client"
        severity = "high"
        mitre_attack = "T1047, T1620"
        reference = "https://github.com/trustedsec/CS-Remote-OPs-BOF/blob/main/src/common/wmi.c"
        source = "trustedsec/CS-Remote-OPs-BOF src/common/wmi.c (pattern); tests/data/wmi_clients built with x86_64-w64-mingw32-g++ 12"
        scope = "unbacked-exec"
        author = "wmi-forensics"
        example_positive = "hex:48 8B 45 10 48 8B 00 48 05 C0 00 00 00 4C 8B 10 4C 8B 45 F0 48 8B 55 F8 48 8B 45 10 41 B9 00 00 00 00 48 89 C1 41 FF D2 + zeros:64 + wide:{4590F811-1D3A-11D0-891F-00AA004B2E24}"
        example_positive_2 = "hex:48 B8 11 F8 90 45 3A 1D D0 11 48 89 44 24 30 + zeros:256 + hex:48 8B 01 48 89 7C 24 28 48 C7 44 24 20 00 00 00 00 FF 90 A0 00 00 00"
        example_positive_3 = "hex:48 8B 01 48 8B 80 C0 00 00 00 48 89 7C 24 38 48 83 64 24 20 00 FF 15 F2 3E 01 00 + zeros:128 + hex:99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7"
        example_near_miss = "hex:48 8B 01 48 89 7C 24 28 48 C7 44 24 20 00 00 00 00 FF 90 A0 00 00 00 + zeros:64 + ascii:SELECT * FROM Win32_Process"
        example_near_miss_2 = "hex:48 B8 11 F8 90 45 3A 1D D0 11 48 89 44 24 30 + zeros:256 + hex:48 8B 01 FF 90 A0 00 00 00"

    strings:
        $call_o0 = { 48 ( 05 | 81 ( C0 | C1 | C2 ) ) ( A0 | B0 | C0 ) 00 00 00 ( 4C 8B ( 10 | 11 | 12 ) | 48 8B ( 00 | 09 | 12 ) ) [2-96] ( 41 FF D2 | FF D0 | FF D1 | FF D2 ) }
        $call_o0_put = { 48 83 ( C0 | C1 | C2 ) 70 ( 4C 8B ( 10 | 11 | 12 ) | 48 8B ( 00 | 09 | 12 ) ) [2-96] ( 41 FF D2 | FF D0 | FF D1 | FF D2 ) }
        $call_opt = { ( 48 C7 44 24 20 00 00 00 00 | 4? 89 ?? 24 20 ) [0-48] FF ( 90 | 91 | 92 | 93 | 96 | 97 ) ( A0 | B0 | C0 ) 00 00 00 }
        $call_opt_put = { ( 48 C7 44 24 20 00 00 00 00 | 4? 89 ?? 24 20 ) [0-48] FF ( 50 | 51 | 52 | 53 | 56 | 57 ) 70 }
        $call_cfg = { 48 8B ( 80 | 81 | 82 ) ( A0 | B0 | C0 ) 00 00 00 [0-48] FF 15 }
        $g_text_locator = "4590F811-1D3A-11D0-891F-00AA004B2E24" ascii wide nocase
        $g_text_iid_locator = "DC12A687-737F-11CF-884D-00AA004B2E24" ascii wide nocase
        $g_text_services = "9556DC99-828C-11CF-A37E-00AA003240C7" ascii wide nocase
        $g_text_level1 = "8BC3F05E-D86B-11D0-A075-00C04FB68820" ascii wide nocase
        $g_imm_locator = { 11 F8 90 45 [0-40] 3A 1D }
        $g_imm_iid_locator = { 87 A6 12 DC [0-40] 7F 73 }
        $g_imm_services = { 99 DC 56 95 [0-40] 8C 82 }
        $g_imm_level1 = { 5E F0 C3 8B [0-40] 6B D8 }

    condition:
        for any i in (1..math.min(#call_o0, 256)) : (any of ($g_*) in (@call_o0[i] - 0x10000 .. @call_o0[i] + 0x10000))
        or for any i in (1..math.min(#call_o0_put, 256)) : (any of ($g_*) in (@call_o0_put[i] - 0x10000 .. @call_o0_put[i] + 0x10000))
        or for any i in (1..math.min(#call_opt, 256)) : (any of ($g_*) in (@call_opt[i] - 0x10000 .. @call_opt[i] + 0x10000))
        or for any i in (1..math.min(#call_opt_put, 256)) : (any of ($g_*) in (@call_opt_put[i] - 0x10000 .. @call_opt_put[i] + 0x10000))
        or for any i in (1..math.min(#call_cfg, 256)) : (any of ($g_*) in (@call_cfg[i] - 0x10000 .. @call_cfg[i] + 0x10000))
}

rule WMI_IWbemServices_Single_Call_x86_Near_Client_GUID : wmi shellcode x86
{
    meta:
        description = "x86 code in unbacked executable memory with one IWbemServices call as compilers emit it (-O0 mov eax,[eax] / add eax,slot / mov eax,[eax] / call eax, or GCC's mov [esp+n] argument stores then call [reg+slot]) within 64 KiB of the WMI locator/services/login GUID as text, bytes or immediates: a BOF or shellcode WMI client"
        severity = "high"
        mitre_attack = "T1047, T1620"
        reference = "https://github.com/trustedsec/CS-Remote-OPs-BOF/blob/main/src/common/wmi.c"
        source = "trustedsec/CS-Remote-OPs-BOF src/common/wmi.c (pattern); tests/data/wmi_clients built with i686-w64-mingw32-g++ 12"
        scope = "unbacked-exec"
        author = "wmi-forensics"
        example_positive = "hex:8B 45 08 8B 00 83 C0 60 8B 00 8B 55 F4 89 54 24 04 8B 55 08 89 14 24 FF D0 + zeros:64 + wide:{4590F811-1D3A-11D0-891F-00AA004B2E24}"
        example_positive_2 = "hex:C7 44 24 40 11 F8 90 45 C7 44 24 44 3A 1D D0 11 + zeros:256 + hex:C7 44 24 10 00 00 00 00 89 7C 24 08 89 04 24 FF 52 50"
        example_positive_3 = "hex:8B 06 8B 70 60 8B CE FF 15 00 30 40 00 6A 00 6A 00 FF 75 08 6A 00 53 57 FF D6 + zeros:128 + wide:{DC12A687-737F-11CF-884D-00AA004B2E24}"
        example_near_miss = "hex:C7 44 24 10 00 00 00 00 89 7C 24 08 89 04 24 FF 52 50 + zeros:64 + ascii:SELECT * FROM Win32_Process"
        example_near_miss_2 = "hex:C7 44 24 40 11 F8 90 45 C7 44 24 44 3A 1D D0 11 + zeros:256 + hex:8B 02 FF 52 50"

    strings:
        $call_o0 = { 8B 00 83 C0 ( 38 | 50 | 58 | 60 ) 8B 00 [2-64] FF D0 }
        $call_opt_imm = { C7 44 24 ( 08 | 0C | 10 | 14 | 18 | 1C ) [0-40] FF ( 50 | 51 | 52 | 53 | 56 | 57 ) ( 38 | 50 | 58 | 60 ) }
        $call_cfg = { ( 8B 70 60 | 8B 78 60 | 8B 48 60 | 8B 50 60 | 8B 58 60 | 8B 70 50 | 8B 78 50 | 8B 48 50 | 8B 50 50 | 8B 58 50 | 8B 70 58 | 8B 78 58 | 8B 48 58 | 8B 50 58 | 8B 58 58 | 8B 70 38 | 8B 78 38 | 8B 48 38 | 8B 50 38 | 8B 58 38 ) [0-16] FF 15 [4] [0-32] FF ( D0 | D1 | D2 | D3 | D6 | D7 ) }
        $call_opt_reg = { ( 89 44 24 | 89 4C 24 | 89 54 24 | 89 5C 24 | 89 6C 24 | 89 74 24 | 89 7C 24 ) ( 08 | 0C | 10 | 14 | 18 | 1C ) [0-40] FF ( 50 | 51 | 52 | 53 | 56 | 57 ) ( 38 | 50 | 58 | 60 ) }
        $g_text_locator = "4590F811-1D3A-11D0-891F-00AA004B2E24" ascii wide nocase
        $g_text_iid_locator = "DC12A687-737F-11CF-884D-00AA004B2E24" ascii wide nocase
        $g_text_services = "9556DC99-828C-11CF-A37E-00AA003240C7" ascii wide nocase
        $g_text_level1 = "8BC3F05E-D86B-11D0-A075-00C04FB68820" ascii wide nocase
        $g_imm_locator = { 11 F8 90 45 [0-40] 3A 1D }
        $g_imm_iid_locator = { 87 A6 12 DC [0-40] 7F 73 }
        $g_imm_services = { 99 DC 56 95 [0-40] 8C 82 }
        $g_imm_level1 = { 5E F0 C3 8B [0-40] 6B D8 }

    condition:
        for any i in (1..math.min(#call_o0, 256)) : (any of ($g_*) in (@call_o0[i] - 0x10000 .. @call_o0[i] + 0x10000))
        or for any i in (1..math.min(#call_opt_imm, 256)) : (any of ($g_*) in (@call_opt_imm[i] - 0x10000 .. @call_opt_imm[i] + 0x10000))
        or for any i in (1..math.min(#call_opt_reg, 256)) : (any of ($g_*) in (@call_opt_reg[i] - 0x10000 .. @call_opt_reg[i] + 0x10000))
        or for any i in (1..math.min(#call_cfg, 256)) : (any of ($g_*) in (@call_cfg[i] - 0x10000 .. @call_cfg[i] + 0x10000))
}
