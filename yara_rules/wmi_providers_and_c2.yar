/*
    Malicious WMI providers, WMI-themed command and control, and WMI audit tampering.

    - A provider is registered as an instance of __Win32Provider whose CLSID names a COM server; the
      DLL it points to loads into WmiPrvSE.exe. Legitimate providers live in System32\wbem or under
      Program Files; a provider DLL in ProgramData, a user profile or a temp folder is the technique.
    - Incident write-ups on WmiPrvSE.exe abuse mention the named pipe \\.\pipe\wmi_ctl (no Windows
      component uses that name) and base64-encoded WQL queries and results in C2 traffic. The base64
      rule asks for WMI-specific query text (SELECT * FROM followed by Win32_, CIM_, MSFT_ or __, or a
      root\cimv2 object path), each at all three byte alignments, base64 of ASCII and of UTF-16
      (PowerShell -EncodedCommand) and as UTF-16 base64 text; "SELECT * FROM " alone would also fire on
      base64-encoded SQL.
    - Setting HKLM\SOFTWARE\Microsoft\WBEM\CIMOM\Logging to 0, or disabling the
      Microsoft-Windows-WMI-Activity channels, hides WMI activity from defenders.
*/

import "math"

rule WMI_Provider_Registration_Writable_Path : wmi persistence provider
{
    meta:
        description = "__Win32Provider registration with a CLSID and a DLL in a user-writable folder (ProgramData, Users, AppData, Temp, PerfLogs) within 16 KiB, in non-image memory: a provider that loads attacker code into WmiPrvSE.exe"
        severity = "high"
        mitre_attack = "T1546.003, T1546.015, T1047"
        reference = "https://learn.microsoft.com/en-us/windows/win32/wmisdk/--win32provider"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:instance of __Win32Provider as $P { Name = \"WmiPerfProv\"; ClsId = \"{3F2D1C5B-7A1E-4B7C-9E55-0D1A2B3C4D5E}\"; HostingModel = \"NetworkServiceHost\"; }; + hex:00 + zeros:32 + wide:HKLM\\SOFTWARE\\Classes\\CLSID\\{3F2D1C5B-7A1E-4B7C-9E55-0D1A2B3C4D5E}\\InprocServer32 + hex:00 00 + wide:C:\\ProgramData\\Microsoft\\wbem\\wbemcorex.dll + hex:00 00"
        example_positive_2 = "wide:Set-WmiInstance -Class __Win32Provider -Arguments @{Name='Evil'; CLSID='{0c2e5a2b-1d4f-4b6a-9f1e-7d3c2b1a0f9e}'} ; New-ItemProperty -Path HKLM:\\SOFTWARE\\Classes\\CLSID\\{0c2e5a2b-1d4f-4b6a-9f1e-7d3c2b1a0f9e}\\InprocServer32 -Name '(default)' -Value C:\\Users\\Public\\evilprov.dll"
        example_near_miss = "ascii:instance of __Win32Provider as $P { Name = \"CIMWin32\"; ClsId = \"{d63a5850-8f16-11cf-9f47-00aa00bf345c}\"; }; + hex:00 + wide:C:\\Windows\\System32\\wbem\\cimwin32.dll"
        example_near_miss_2 = "wide:__Win32Provider + hex:00 00 + wide:C:\\ProgramData\\Vendor\\monitor.dll"

    strings:
        $provider = "__Win32Provider" ascii wide nocase
        $clsid = /CLSID[^{\x00]{0,16}\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}/ ascii wide nocase
        $path_programdata = "\\ProgramData\\" ascii wide nocase
        $path_users = "\\Users\\" ascii wide nocase
        $path_appdata = "\\AppData\\" ascii wide nocase
        $path_temp = "\\Temp\\" ascii wide nocase
        $path_perflogs = "\\PerfLogs\\" ascii wide nocase
        $dll = ".dll" ascii wide nocase

    condition:
        for any i in (1..math.min(#provider, 256)) : (
            $clsid in (@provider[i] - 0x4000 .. @provider[i] + 0x4000)
            and any of ($path_*) in (@provider[i] - 0x4000 .. @provider[i] + 0x4000)
            and $dll in (@provider[i] - 0x4000 .. @provider[i] + 0x4000)
        )
}

rule WMI_Named_Pipe_wmi_ctl : wmi lateral_movement c2
{
    meta:
        description = "Named pipe wmi_ctl (\\\\.\\pipe\\wmi_ctl or \\Device\\NamedPipe\\wmi_ctl, ASCII or UTF-16), reported for a WmiPrvSE.exe implant used for lateral movement; no Windows component uses the name"
        severity = "high"
        mitre_attack = "T1021.002, T1570"
        reference = "https://learn.microsoft.com/en-us/windows/win32/ipc/pipe-names"
        scope = "any"
        author = "wmi-forensics"
        example_positive = "wide:\\\\.\\pipe\\wmi_ctl + hex:00 00"
        example_positive_2 = "ascii:\\Device\\NamedPipe\\wmi_ctl + hex:00"
        example_positive_3 = "ascii:\\\\10.0.0.5\\PIPE\\WMI_CTL + hex:00"
        example_near_miss = "wide:\\\\.\\pipe\\winreg + hex:00 00 + zeros:8 + ascii:wmi_ctl.log"
        example_near_miss_2 = "wide:\\\\.\\pipe\\wmi_control + hex:00 00"

    strings:
        $pipe = "\\pipe\\wmi_ctl" ascii wide nocase
        $device = "\\NamedPipe\\wmi_ctl" ascii wide nocase

    condition:
        any of them
}

rule WMI_Base64_WQL : wmi c2 encoding
{
    meta:
        description = "Base64 of WMI query text or results (SELECT * FROM Win32_/CIM_/MSFT_/__, root\\cimv2:Win32_ object paths) at any byte alignment, of ASCII or UTF-16 text, stored as ASCII or UTF-16, in non-image memory: WQL carried through an encoded channel (C2, -EncodedCommand)"
        severity = "medium"
        mitre_attack = "T1047, T1132.001"
        reference = "https://attack.mitre.org/techniques/T1132/001/"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:U0VMRUNUICogRlJPTSBXaW4zMl9Qcm9jZXNzIFdIRVJFIE5hbWUgPSAnbHNhc3MuZXhlJw=="
        example_positive_2 = "wide:powershell.exe -NoP -enc RwBlAHQALQBXAG0AaQBPAGIAagBlAGMAdAAgAC0AUQB1AGUAcgB5ACAAIgBTAEUATABFAEMAVAAgACoAIABGAFIATwBNACAAVwBpAG4AMwAyAF8AUwBlAHIAdgBpAGMAZQAgAFcASABFAFIARQAgAFMAdABhAHQAZQAgAD0AIAAnAFIAdQBuAG4AaQBuAGcAJwAiAA=="
        example_positive_3 = "ascii:{\"q\":\"eFNFTEVDVCAqIEZST00gV2luMzJfU2VydmljZQ==\"}"
        example_positive_4 = "ascii:data=W3siX19QQVRIIjoiXFxXUzAxXHJvb3RcY2ltdjI6V2luMzJfUHJvY2Vzcy5IYW5kbGU9IjQiIn1d"
        example_near_miss = "ascii:SELECT * FROM Win32_Process WHERE Name = 'lsass.exe'"
        example_near_miss_2 = "ascii:U0VMRUNUICogRlJPTSB1c2VycyBXSEVSRSBpZCA9IDE="

    strings:
        $upper_win32 = "SELECT * FROM Win32_" ascii wide base64 base64wide
        $lower_win32 = "select * from Win32_" ascii wide base64 base64wide
        $lower_all_win32 = "select * from win32_" ascii wide base64 base64wide
        $title_win32 = "Select * From Win32_" ascii wide base64 base64wide
        $upper_cim = "SELECT * FROM CIM_" ascii wide base64 base64wide
        $upper_msft = "SELECT * FROM MSFT_" ascii wide base64 base64wide
        $upper_system = "SELECT * FROM __" ascii wide base64 base64wide
        $lower_system = "select * from __" ascii wide base64 base64wide
        $result_path = "root\\cimv2:Win32_" ascii wide base64 base64wide

    condition:
        any of them
}

rule WMI_Logging_Tampering : wmi defense_evasion
{
    meta:
        description = "WMI audit tampering: a write to HKLM\\SOFTWARE\\Microsoft\\WBEM\\CIMOM Logging (reg add, Set-/New-ItemProperty, StdRegProv Set*Value, RegSetValueEx) within 16 KiB, or the Microsoft-Windows-WMI-Activity channel being disabled, in non-image memory"
        severity = "high"
        mitre_attack = "T1562.006, T1562.002"
        reference = "https://learn.microsoft.com/en-us/windows/win32/wmisdk/tracing-wmi-activity"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:reg add \"HKLM\\SOFTWARE\\Microsoft\\WBEM\\CIMOM\" /v Logging /t REG_SZ /d 0 /f"
        example_positive_2 = "wide:wevtutil sl Microsoft-Windows-WMI-Activity/Trace /e:false"
        example_positive_3 = "wide:Set-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Wbem\\CIMOM' -Name 'Logging' -Value '0'"
        example_near_miss = "wide:SOFTWARE\\Microsoft\\WBEM\\CIMOM + hex:00 00 + wide:Logging Directory + hex:00 00 + wide:C:\\Windows\\System32\\wbem\\Logs\\"
        example_near_miss_2 = "wide:wevtutil qe Microsoft-Windows-WMI-Activity/Operational /c:5 /f:text"

    strings:
        $key = "SOFTWARE\\Microsoft\\WBEM\\CIMOM" ascii wide nocase
        $value = "Logging" ascii wide nocase fullword
        $w_reg_add = "reg add" ascii wide nocase
        $w_reg_exe_add = "reg.exe add" ascii wide nocase
        $w_set_item = "Set-ItemProperty" ascii wide nocase
        $w_new_item = "New-ItemProperty" ascii wide nocase
        $w_set_dword = "SetDWORDValue" ascii wide nocase
        $w_set_string = "SetStringValue" ascii wide nocase
        $w_reg_set = "RegSetValueEx" ascii wide nocase

        $channel = "Microsoft-Windows-WMI-Activity" ascii wide nocase
        $d_e_false = "/e:false" ascii wide nocase
        $d_enabled_false = "/enabled:false" ascii wide nocase
        $d_is_enabled = "IsEnabled = $false" ascii wide nocase
        $d_is_enabled2 = "IsEnabled=$false" ascii wide nocase

    condition:
        for any i in (1..math.min(#key, 256)) : (
            $value in (@key[i] - 0x4000 .. @key[i] + 0x4000)
            and any of ($w_*) in (@key[i] - 0x4000 .. @key[i] + 0x4000)
        )
        or for any i in (1..math.min(#channel, 256)) : (any of ($d_*) in (@channel[i] - 0x400 .. @channel[i] + 0x400))
}
