/*
    WMI COM identifiers in non-image memory, only together with WQL or method/consumer evidence.

    The GUIDs below sit in the read-only data of every WMI DLL, so a rule keyed on them alone fires in
    every process that uses WMI. These rules ask for a GUID (little-endian bytes, or the registry text
    form in ASCII or UTF-16, any case) within 16 KiB of a WQL query or of method/consumer evidence, and
    are meant for memory that no image backs (heap, private allocations, unbacked code).

    GUID bytes (fields little-endian):
      CLSID_WbemLocator      {4590F811-1D3A-11D0-891F-00AA004B2E24}  11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24
      IID_IWbemLocator       {DC12A687-737F-11CF-884D-00AA004B2E24}  87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24
      IID_IWbemServices      {9556DC99-828C-11CF-A37E-00AA003240C7}  99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7
      CLSID_WbemLevel1Login  {8BC3F05E-D86B-11D0-A075-00C04FB68820}  5E F0 C3 8B 6B D8 D0 11 A0 75 00 C0 4F B6 88 20
      IID_IWbemLevel1Login   {F309AD18-D86A-11D0-A075-00C04FB68820}  18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20

    IID_IWbemClassObject {DC12A681-737F-11CF-884D-00AA004B2E24} is deliberately absent: every marshalled WMI
    object (OBJREF_CUSTOM of IWbemClassObject) carries it, so it says "a WMI object passed through here",
    not "a WMI client was built here". The locator, services and level-1 login identifiers are what a
    client that connects by itself (CoCreateInstance of WbemLocator or WbemLevel1Login) must hold.
*/

import "math"

rule WMI_Client_Locator_Login_GUID_With_WQL : wmi com wql
{
    meta:
        description = "WMI client identifiers (WbemLocator/IWbemLocator/IWbemServices/WbemLevel1Login GUID, bytes or text, never the IWbemClassObject IID that every marshalled object carries) within 16 KiB of a WQL query in non-image memory: a WMI client built outside any loaded image (shellcode, in-memory assembly, script host buffer)"
        severity = "low"
        mitre_attack = "T1047"
        reference = "https://learn.microsoft.com/en-us/windows/win32/api/wbemcli/nn-wbemcli-iwbemservices"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:{4590F811-1D3A-11D0-891F-00AA004B2E24} + zeros:16 + wide:SELECT * FROM Win32_Process WHERE Name = 'lsass.exe'"
        example_positive_2 = "hex:99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 + zeros:64 + wide:ASSOCIATORS OF {Win32_Service.Name='WinRM'} WHERE ResultClass = Win32_Process"
        example_positive_3 = "wide:{dc12a687-737f-11cf-884d-00aa004b2e24} + zeros:8 + ascii:SELECT * FROM __InstanceCreationEvent WITHIN 5 WHERE TargetInstance ISA 'Win32_Process'"
        example_positive_4 = "hex:5E F0 C3 8B 6B D8 D0 11 A0 75 00 C0 4F B6 88 20 + zeros:32 + ascii:select ProcessId, CommandLine from Win32_Process"
        example_near_miss = "hex:11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24"
        example_near_miss_2 = "wide:SELECT * FROM Win32_Process WHERE Name = 'notepad.exe'"
        example_near_miss_3 = "hex:99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 + zeros:20000 + wide:SELECT * FROM Win32_Service"
        example_near_miss_4 = "ascii:{4590F811-1D3A-11D0-891F-00AA004B2E24} + zeros:16 + ascii:SELECT name FROM accounts"
        example_near_miss_5 = "hex:4D 45 4F 57 04 00 00 00 81 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 + zeros:64 + wide:SELECT * FROM Win32_Service"

    strings:
        $g_clsid_locator = { 11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 }
        $g_iid_locator = { 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 }
        $g_iid_services = { 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 }
        $g_clsid_level1 = { 5E F0 C3 8B 6B D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $g_iid_level1 = { 18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $t_clsid_locator = "4590F811-1D3A-11D0-891F-00AA004B2E24" ascii wide nocase
        $t_iid_locator = "DC12A687-737F-11CF-884D-00AA004B2E24" ascii wide nocase
        $t_iid_services = "9556DC99-828C-11CF-A37E-00AA003240C7" ascii wide nocase
        $t_clsid_level1 = "8BC3F05E-D86B-11D0-A075-00C04FB68820" ascii wide nocase
        $t_iid_level1 = "F309AD18-D86A-11D0-A075-00C04FB68820" ascii wide nocase

        $q_select_all = "SELECT * FROM " ascii wide nocase
        $q_select_props = /SELECT [A-Za-z0-9_, ]{1,200} FROM (Win32_|CIM_|MSFT_|__)/ ascii wide nocase
        $q_associators = "ASSOCIATORS OF {" ascii wide nocase
        $q_references = "REFERENCES OF {" ascii wide nocase
        $q_event = /__Instance(Creation|Modification|Deletion|Operation)Event WITHIN/ ascii wide nocase

    condition:
        for any i in (1..math.min(#q_select_all, 256)) : (any of ($g_*, $t_*) in (@q_select_all[i] - 0x4000 .. @q_select_all[i] + 0x4000))
        or for any i in (1..math.min(#q_select_props, 256)) : (any of ($g_*, $t_*) in (@q_select_props[i] - 0x4000 .. @q_select_props[i] + 0x4000))
        or for any i in (1..math.min(#q_associators, 256)) : (any of ($g_*, $t_*) in (@q_associators[i] - 0x4000 .. @q_associators[i] + 0x4000))
        or for any i in (1..math.min(#q_references, 256)) : (any of ($g_*, $t_*) in (@q_references[i] - 0x4000 .. @q_references[i] + 0x4000))
        or for any i in (1..math.min(#q_event, 256)) : (any of ($g_*, $t_*) in (@q_event[i] - 0x4000 .. @q_event[i] + 0x4000))
}

rule WMI_Client_Locator_Login_GUID_With_Process_Or_Consumer : wmi com execution
{
    meta:
        description = "WMI client identifiers (WbemLocator/IWbemLocator/IWbemServices/WbemLevel1Login GUID, bytes or text, never the IWbemClassObject IID) within 16 KiB of method or consumer evidence (Win32_Process with Create, ExecMethod, a command-line or script event consumer) in non-image memory: a hand-built WMI client that starts processes or plants consumers"
        severity = "medium"
        mitre_attack = "T1047, T1546.003"
        reference = "https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/create-method-in-class-win32-process"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "hex:11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 + wide:ROOT\\CIMV2 + hex:00 00 + wide:Win32_Process + hex:00 00 + wide:Create + hex:00 00 + wide:CommandLine"
        example_positive_2 = "wide:{F309AD18-D86A-11D0-A075-00C04FB68820} + zeros:40 + ascii:ExecMethod"
        example_positive_3 = "hex:99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 + zeros:128 + wide:ActiveScriptEventConsumer"
        example_near_miss = "hex:11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 + wide:Win32_Process + hex:00 00 + wide:Handle + hex:00 00 + wide:ProcessId"
        example_near_miss_2 = "wide:Win32_Process + hex:00 00 + wide:Create + hex:00 00 + wide:CommandLine + hex:00 00 + wide:notepad.exe"
        example_near_miss_3 = "wide:{DC12A681-737F-11CF-884D-00AA004B2E24} + zeros:64 + wide:Win32_Process + hex:00 00 + wide:Create"

    strings:
        $g_clsid_locator = { 11 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 }
        $g_iid_locator = { 87 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 }
        $g_iid_services = { 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 }
        $g_clsid_level1 = { 5E F0 C3 8B 6B D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $g_iid_level1 = { 18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 }
        $t_clsid_locator = "4590F811-1D3A-11D0-891F-00AA004B2E24" ascii wide nocase
        $t_iid_locator = "DC12A687-737F-11CF-884D-00AA004B2E24" ascii wide nocase
        $t_iid_services = "9556DC99-828C-11CF-A37E-00AA003240C7" ascii wide nocase
        $t_clsid_level1 = "8BC3F05E-D86B-11D0-A075-00C04FB68820" ascii wide nocase
        $t_iid_level1 = "F309AD18-D86A-11D0-A075-00C04FB68820" ascii wide nocase

        $e_process = "Win32_Process" ascii wide nocase
        $e_create = "Create" ascii wide fullword
        $e_execmethod = "ExecMethod" ascii wide
        $e_consumer_cmd = "CommandLineEventConsumer" ascii wide nocase
        $e_consumer_script = "ActiveScriptEventConsumer" ascii wide nocase

    condition:
        for any i in (1..math.min(#e_process, 256)) : (
            $e_create in (@e_process[i] - 0x4000 .. @e_process[i] + 0x4000)
            and any of ($g_*, $t_*) in (@e_process[i] - 0x4000 .. @e_process[i] + 0x4000)
        )
        or for any i in (1..math.min(#e_execmethod, 256)) : (any of ($g_*, $t_*) in (@e_execmethod[i] - 0x4000 .. @e_execmethod[i] + 0x4000))
        or for any i in (1..math.min(#e_consumer_cmd, 256)) : (any of ($g_*, $t_*) in (@e_consumer_cmd[i] - 0x4000 .. @e_consumer_cmd[i] + 0x4000))
        or for any i in (1..math.min(#e_consumer_script, 256)) : (any of ($g_*, $t_*) in (@e_consumer_script[i] - 0x4000 .. @e_consumer_script[i] + 0x4000))
}
