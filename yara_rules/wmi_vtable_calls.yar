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
    rules need two different IWbemServices methods within 4 KiB, or one call within 64 KiB of the
    locator/services/login GUID bytes that position-independent WMI code carries inline. Measured on
    135 MiB of MSVC-built C++ (x64 and x86 DLLs of pyarrow, numpy and wxPython): no hit; the simpler
    "mov rax,[rcx] ... call [rax+0C0h]" forms fired in 13 of those 110 files.
    Each anchor loop looks at the first 256 calls of a kind per scanned block (cost stays linear).
*/

import "math"

rule WMI_IWbemServices_Vtable_Calls_x64 : wmi shellcode x64
{
    meta:
        description = "x64 code in unbacked executable memory calling two different IWbemServices methods (ExecMethod, ExecQuery, ExecNotificationQuery, PutInstance) through the vtable within 4 KiB, with the stack arguments each method needs, or one such call within 64 KiB of WMI locator/services/login GUID bytes"
        severity = "high"
        mitre_attack = "T1047, T1620"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmi/"
        scope = "unbacked-exec"
        author = "wmi-forensics"
        example_positive = "hex:48 8B 01 48 8D 54 24 50 48 89 54 24 28 48 83 64 24 20 00 41 B9 30 00 00 00 4C 8B C7 48 8B D6 FF 90 A0 00 00 00 + hex:85 C0 78 40 48 8B 0B + hex:48 8B 01 48 8D 54 24 60 48 89 54 24 38 48 83 64 24 30 00 48 89 7C 24 28 48 83 64 24 20 00 45 33 C9 4C 8B C6 48 8B D3 FF 90 C0 00 00 00 + hex:C3"
        example_positive_2 = "hex:48 8B 01 48 8B 80 B0 00 00 00 48 8D 54 24 50 48 89 54 24 28 48 83 64 24 20 00 41 B9 30 00 00 00 4C 8B C7 48 8B D6 FF 15 F2 3E 01 00 + hex:85 C0 78 20 48 8B 0B + hex:48 8B 01 48 8B 40 70 48 83 64 24 20 00 45 33 C9 41 B8 02 00 00 00 48 8B D7 FF 15 DA 3E 01 00 + hex:C3"
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

    condition:
        for any i in (1..math.min(#exec_method, 256)) : (
            any of ($exec_query, $exec_notification_query, $put_instance) in (@exec_method[i] - 0x1000 .. @exec_method[i] + 0x1000)
            or any of ($g_*) in (@exec_method[i] - 0x10000 .. @exec_method[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_query, 256)) : (
            any of ($exec_notification_query, $put_instance) in (@exec_query[i] - 0x1000 .. @exec_query[i] + 0x1000)
            or any of ($g_*) in (@exec_query[i] - 0x10000 .. @exec_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_notification_query, 256)) : (
            $put_instance in (@exec_notification_query[i] - 0x1000 .. @exec_notification_query[i] + 0x1000)
            or any of ($g_*) in (@exec_notification_query[i] - 0x10000 .. @exec_notification_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#put_instance, 256)) : (any of ($g_*) in (@put_instance[i] - 0x10000 .. @put_instance[i] + 0x10000))
}

rule WMI_IWbemServices_Vtable_Calls_x86 : wmi shellcode x86
{
    meta:
        description = "x86 code in unbacked executable memory calling two different IWbemServices methods (ExecMethod, ExecQuery, ExecNotificationQuery, PutInstance) through the vtable within 4 KiB, each after the pushes its arguments need with the interface pointer pushed last, or one such call within 64 KiB of WMI locator/services/login GUID bytes"
        severity = "high"
        mitre_attack = "T1047, T1620"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmi/"
        scope = "unbacked-exec"
        author = "wmi-forensics"
        example_positive = "hex:8B 06 8D 4D F8 51 6A 00 6A 30 57 53 56 FF 50 50 + hex:85 C0 78 1A + hex:8B 06 6A 00 6A 00 FF 75 F4 6A 00 FF 75 F0 FF 75 EC 56 FF 50 60 + hex:C3"
        example_positive_2 = "hex:87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 + zeros:32 + hex:8B 07 6A 00 6A 00 FF 75 08 6A 00 53 57 FF 50 58 C3"
        example_positive_3 = "hex:8B 01 6A 00 6A 00 6A 00 FF 74 24 1C 51 FF 50 38 85 C0 78 10 8B 06 6A 00 6A 00 6A 00 6A 00 57 53 56 FF 50 60 C3"
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

    condition:
        for any i in (1..math.min(#exec_method, 256)) : (
            any of ($exec_query, $exec_notification_query, $put_instance) in (@exec_method[i] - 0x1000 .. @exec_method[i] + 0x1000)
            or any of ($g_*) in (@exec_method[i] - 0x10000 .. @exec_method[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_query, 256)) : (
            any of ($exec_notification_query, $put_instance) in (@exec_query[i] - 0x1000 .. @exec_query[i] + 0x1000)
            or any of ($g_*) in (@exec_query[i] - 0x10000 .. @exec_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#exec_notification_query, 256)) : (
            $put_instance in (@exec_notification_query[i] - 0x1000 .. @exec_notification_query[i] + 0x1000)
            or any of ($g_*) in (@exec_notification_query[i] - 0x10000 .. @exec_notification_query[i] + 0x10000)
        )
        or for any i in (1..math.min(#put_instance, 256)) : (any of ($g_*) in (@put_instance[i] - 0x10000 .. @put_instance[i] + 0x10000))
}
