/*
    What WMI attack tools do through WMI besides starting processes: stage data in WMI properties and
    made-up classes, write the registry through StdRegProv, clear event logs through Win32_NTEventlogFile,
    register .NET providers, and log in remotely with the namespace strings of impacket-based clients.

    Sources (read from the tools' own code):
      XiaoliChan/wmiexec-Pro lib/modules/exec_command.py       output stored base64 in DebugOptions of an instance of
                                                               the made-up class Win32_OSRecoveryConfigurationDataBackup
      XiaoliChan/wmiexec-Pro lib/vbscripts/Exec-Command-WithOutput.vbs
                                                               Msxml2.DOMDocument "bin.base64" + GetObject("Winmgmts:root\cimv2:<class>")
                                                               .spawninstance_ ... .put_
      GhostPack/SharpWMI SharpWMI/Program.cs                   Win32_OSRecoveryConfigurationData upload class
      Win32_OSRecoveryConfiguration.DebugFilePath loaders      command/output staged in the property and rebuilt with
                                                               [char[]][int[]]...Split(',') (public PowerShell WMI-exec scripts
                                                               found by text search; repository not pinned)
      XiaoliChan/wmiexec-Pro lib/modules/rid_hijack.py         StdRegProv SetBinaryValue on SAM\SAM\Domains\Account\Users\<rid>,
                                                               SetDWORDValue SYSTEM\CurrentControlSet\Control\Lsa LimitBlankPasswordUse
      Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py          StdRegProv GetStringValue/DeleteKey of HKLM\Software\Classes\<6 letters>
      XiaoliChan/wmiexec-Pro lib/vbs-scripts/ClearEventlog.vbs GetObject("winmgmts:{(Backup,Security)}").ExecQuery("select * from
                                                               Win32_NTEventLogFile") ... LogFile.ClearEventlog()
      fortra/impacket examples/wmiexec.py, wmipersist.py       iWbemLevel1Login.NTLMLogin('//./root/cimv2' | '//./root/subscription')
*/

import "math"

rule WMI_Staging_In_Made_Up_Or_Recovery_Class : wmi staging exfiltration
{
    meta:
        description = "Data staged in WMI properties: the made-up classes Win32_OSRecoveryConfigurationDataBackup (wmiexec-Pro) or an instance put with base64 in DebugOptions, or Win32_OSRecoveryConfiguration.DebugFilePath rewritten from a variable or char-code list ([Int[]][Char[]]) or read back and split into a script block (public PowerShell WMI-exec loaders), in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1074.001, T1041"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/modules/exec_command.py"
        source = "XiaoliChan/wmiexec-Pro lib/modules/exec_command.py, lib/vbscripts/Exec-Command-WithOutput.vbs; DebugFilePath loaders from public PowerShell WMI-exec scripts (text search, repository not pinned)"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:Win32_OSRecoveryConfigurationDataBackup + hex:00 00 + wide:CreationClassName + hex:00 00 + wide:DebugOptions + hex:00 00 + wide:d2luZG93c1xhZG1pbmlzdHJhdG9y"
        example_positive_2 = "ascii:$x = Get-WmiObject -Class Win32_OSRecoveryConfiguration + zeros:8 + ascii:$x.DebugFilePath = $encOutput + zeros:8 + ascii:$x.Put()"
        example_positive_3 = "wide:$encOutput = [Int[]][Char[]]$output.Trim() -Join ',' + hex:0D 00 0A 00 + wide:$o = Get-WmiObject Win32_OSRecoveryConfiguration; $o.DebugFilePath = \"$encOutput\""
        example_near_miss = "wide:Win32_OSRecoveryConfiguration + hex:00 00 + wide:DebugFilePath + hex:00 00 + wide:%SystemRoot%\\MEMORY.DMP"
        example_near_miss_2 = "wide:SELECT * FROM Win32_OSRecoveryConfiguration"

    strings:
        $made_up_class = "Win32_OSRecoveryConfigurationDataBackup" ascii wide nocase
        $recovery = "Win32_OSRecoveryConfiguration" ascii wide nocase fullword
        $debug_path_set = /\.DebugFilePath ?= ?\$/ ascii wide nocase
        $debug_path_read = /\.DebugFilePath\.Split\(/ ascii wide nocase
        $debug_path = "DebugFilePath" ascii wide nocase
        $char_codes = "[Int[]][Char[]]$" ascii wide nocase

    condition:
        $made_up_class
        or for any i in (1..math.min(#recovery, 256)) : (
            any of ($debug_path_set, $debug_path_read) in (@recovery[i] - 0x4000 .. @recovery[i] + 0x4000)
            or (
                $debug_path in (@recovery[i] - 0x4000 .. @recovery[i] + 0x4000)
                and $char_codes in (@recovery[i] - 0x4000 .. @recovery[i] + 0x4000)
            )
        )
}

rule WMI_Staging_Script_Puts_File_Into_Class : wmi staging exfiltration
{
    meta:
        description = "Script that base64-encodes bytes (Msxml2.DOMDocument bin.base64 or ADODB.Stream) and stores them in a WMI instance it spawns and puts through a winmgmts: moniker, within 16 KiB, in non-image memory: file or command-output transfer through WMI objects (wmiexec-Pro)"
        severity = "high"
        mitre_attack = "T1047, T1074.001, T1105"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/vbscripts/Exec-Command-WithOutput.vbs"
        source = "XiaoliChan/wmiexec-Pro lib/vbscripts/Exec-Command-WithOutput.vbs, lib/vbscripts/LocalFileIntoClass.vbs"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:oNode.dataType = \"bin.base64\"\r\nSet objClass = GetObject(\"Winmgmts:root\\cimv2:Win32_Backup\")\r\nSet objInstance = objClass.spawninstance_\r\nobjInstance.DebugOptions = Base64Encode\r\nobjInstance.put_"
        example_near_miss = "ascii:oNode.dataType = \"bin.base64\"\r\nWScript.Echo oNode.text"
        example_near_miss_2 = "ascii:Set objInstance = objClass.SpawnInstance_\r\nobjInstance.Name = \"Printer\"\r\nobjInstance.Put_"

    strings:
        $base64 = "bin.base64" ascii wide nocase
        $moniker = "winmgmts:" ascii wide nocase
        $spawn = ".spawninstance_" ascii wide nocase
        $put = ".put_" ascii wide nocase

    condition:
        for any i in (1..math.min(#base64, 256)) : (
            $moniker in (@base64[i] - 0x4000 .. @base64[i] + 0x4000)
            and $spawn in (@base64[i] - 0x4000 .. @base64[i] + 0x4000)
            and $put in (@base64[i] - 0x4000 .. @base64[i] + 0x4000)
        )
}

rule WMI_StdRegProv_Sensitive_Key_Write : wmi registry defense_evasion
{
    meta:
        description = "StdRegProv write or delete (SetBinaryValue, SetDWORDValue, SetStringValue, SetExpandedStringValue, CreateKey, DeleteKey, DeleteValue) within 4 KiB of a key that attackers change through WMI: SAM user records (RID hijack), Lsa LimitBlankPasswordUse/DisableRestrictedAdmin, Image File Execution Options, Run keys, RDP fDenyTSConnections, Defender policies, in non-image memory"
        severity = "high"
        mitre_attack = "T1112, T1047"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/modules/rid_hijack.py"
        source = "XiaoliChan/wmiexec-Pro lib/modules/rid_hijack.py, lib/modules/rdp.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:StdRegProv + hex:00 00 + wide:SetBinaryValue + hex:00 00 + wide:SAM\\SAM\\Domains\\Account\\Users\\000001F5 + hex:00 00 + wide:F"
        example_positive_2 = "wide:StdRegProv + hex:00 00 + wide:SetDWORDValue + hex:00 00 + wide:SYSTEM\\CurrentControlSet\\Control\\Lsa + hex:00 00 + wide:LimitBlankPasswordUse"
        example_near_miss = "wide:StdRegProv + hex:00 00 + wide:GetStringValue + hex:00 00 + wide:SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion + hex:00 00 + wide:ProductName"
        example_near_miss_2 = "wide:StdRegProv + hex:00 00 + wide:GetBinaryValue + hex:00 00 + wide:SAM\\SAM\\Domains\\Account\\Users\\000001F4 + hex:00 00 + wide:F"

    strings:
        $provider = "StdRegProv" ascii wide nocase
        $w_set = /Set(Binary|DWORD|QWORD|String|ExpandedString|MultiString)Value/ ascii wide nocase
        $w_key = /(CreateKey|DeleteKey|DeleteValue)/ ascii wide nocase
        $k_sam = "SAM\\SAM\\Domains\\Account\\Users" ascii wide nocase
        $k_lsa = /Control\\Lsa\x00{0,2}.{0,16}(LimitBlankPasswordUse|DisableRestrictedAdmin|RunAsPPL)/ ascii wide nocase
        $k_ifeo = "Image File Execution Options" ascii wide nocase
        $k_run = /CurrentVersion\\Run(Once)?\x00/ ascii wide nocase
        $k_rdp = "fDenyTSConnections" ascii wide nocase
        $k_defender = "Policies\\Microsoft\\Windows Defender" ascii wide nocase

    condition:
        for any i in (1..math.min(#provider, 256)) : (
            any of ($w_*) in (@provider[i] - 0x1000 .. @provider[i] + 0x1000)
            and any of ($k_*) in (@provider[i] - 0x1000 .. @provider[i] + 0x1000)
        )
}

rule WMI_StdRegProv_Registry_Write : wmi registry
{
    meta:
        description = "StdRegProv write or delete method within 4 KiB of the provider name in non-image memory: registry changed through WMI (NetExec wmi output channel, wmiexec-Pro modules, CIMplant); configuration management does the same, so medium"
        severity = "medium"
        mitre_attack = "T1112, T1047"
        reference = "https://learn.microsoft.com/en-us/previous-versions/windows/desktop/regprov/stdregprov"
        source = "Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py; RedSiege/CIMplant CIMplant/ExecuteWMI.cs (RegSetMethod); XiaoliChan/wmiexec-Pro lib/modules/rid_hijack.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:StdRegProv + hex:00 00 + wide:DeleteKey + hex:00 00 + wide:Software\\Classes\\hUyTre"
        example_positive_2 = "wide:StdRegProv + hex:00 00 + wide:SetStringValue + hex:00 00 + wide:SOFTWARE\\Contoso\\Agent"
        example_near_miss = "wide:StdRegProv + hex:00 00 + wide:EnumKey + hex:00 00 + wide:SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
        example_near_miss_2 = "wide:SetStringValue + zeros:0x2000 + wide:StdRegProv"

    strings:
        $provider = "StdRegProv" ascii wide nocase
        $w_set = /Set(Binary|DWORD|QWORD|String|ExpandedString|MultiString)Value/ ascii wide nocase
        $w_key = /(CreateKey|DeleteKey|DeleteValue)/ ascii wide nocase

    condition:
        for any i in (1..math.min(#provider, 256)) : (any of ($w_*) in (@provider[i] - 0x1000 .. @provider[i] + 0x1000))
}

rule WMI_Event_Log_Cleared_Through_WMI : wmi defense_evasion
{
    meta:
        description = "ClearEventLog called on every Win32_NTEventLogFile a query returns ('select * from Win32_NTEventLogFile' with no WHERE, or the (Backup,Security) privilege moniker) within 4 KiB, in non-image memory: all event logs wiped through WMI (wmiexec-Pro eventlog module)"
        severity = "high"
        mitre_attack = "T1070.001, T1047"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/vbs-scripts/ClearEventlog.vbs"
        source = "XiaoliChan/wmiexec-Pro lib/vbs-scripts/ClearEventlog.vbs, lib/modules/eventlog_fucker.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:Set LogFileSet = GetObject(\"winmgmts:{(Backup,Security)}\").ExecQuery(\"select * from Win32_NTEventLogFile\")\r\nfor each Logfile in LogFileSet\r\n RetVal = LogFile.ClearEventlog()\r\nnext"
        example_positive_2 = "wide:SELECT * FROM Win32_NTEventlogFile + hex:00 00 + zeros:32 + wide:ClearEventLog"
        example_near_miss = "wide:SELECT * FROM Win32_NTEventlogFile WHERE LogfileName = 'Application' + hex:00 00 + wide:BackupEventlog"
        example_near_miss_2 = "wide:ClearEventLog + zeros:0x2000 + wide:Win32_NTEventlogFile"

    strings:
        $clear = "ClearEventlog" ascii wide nocase
        $all_logs = /select \* from Win32_NTEventlogFile['"\x00)]/ ascii wide nocase
        $backup_privilege = "winmgmts:{(Backup,Security)}" ascii wide nocase

    condition:
        for any i in (1..math.min(#clear, 256)) : (
            any of ($all_logs, $backup_privilege) in (@clear[i] - 0x1000 .. @clear[i] + 0x1000)
        )
}

rule WMI_Event_Log_Clear_Method : wmi defense_evasion
{
    meta:
        description = "ClearEventLog within 4 KiB of Win32_NTEventlogFile in non-image memory: an event log cleared through WMI; admins rotate logs this way too, so medium"
        severity = "medium"
        mitre_attack = "T1070.001, T1047"
        reference = "https://learn.microsoft.com/en-us/previous-versions/windows/desktop/legacy/aa394225(v=vs.85)"
        source = "XiaoliChan/wmiexec-Pro lib/vbs-scripts/ClearEventlog.vbs"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:Win32_NTEventlogFile.Name=\"C:\\Windows\\System32\\Winevt\\Logs\\Security.evtx\" + hex:00 00 + wide:ClearEventLog"
        example_near_miss = "wide:Win32_NTEventlogFile + hex:00 00 + wide:BackupEventlog + hex:00 00 + wide:C:\\Backup\\sec.evtx"

    strings:
        $clear = "ClearEventlog" ascii wide nocase
        $class = "Win32_NTEventlogFile" ascii wide nocase

    condition:
        for any i in (1..math.min(#clear, 256)) : ($class in (@clear[i] - 0x1000 .. @clear[i] + 0x1000))
}

rule WMI_Provider_Registration_DotNet : wmi persistence provider
{
    meta:
        description = "__Win32Provider registration whose COM server is mscoree.dll (a .NET WMI provider, InprocServer32 = mscoree.dll with an Assembly/Class/CodeBase) within 16 KiB, in non-image memory: managed code loaded into WmiPrvSE on demand; vendors ship such providers too, so medium"
        severity = "medium"
        mitre_attack = "T1546.003, T1047"
        reference = "https://learn.microsoft.com/en-us/windows/win32/wmisdk/--win32provider"
        source = "installutil-registered managed WMI providers (System.Management.Instrumentation) as used by WMI provider persistence"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:__Win32Provider + hex:00 00 + wide:HostingModel + hex:00 00 + wide:Decoupled:Com + zeros:32 + wide:InprocServer32 + hex:00 00 + wide:mscoree.dll + hex:00 00 + wide:CodeBase + hex:00 00 + wide:file:///C:/Windows/Temp/Prov.dll"
        example_near_miss = "wide:__Win32Provider + hex:00 00 + wide:CIMWin32 + hex:00 00 + wide:InprocServer32 + hex:00 00 + wide:C:\\Windows\\System32\\wbem\\cimwin32.dll"

    strings:
        $provider = "__Win32Provider" ascii wide nocase
        $mscoree = "mscoree.dll" ascii wide nocase
        $managed = /(CodeBase|Assembly|RuntimeVersion)/ ascii wide

    condition:
        for any i in (1..math.min(#provider, 256)) : (
            $mscoree in (@provider[i] - 0x4000 .. @provider[i] + 0x4000)
            and $managed in (@provider[i] - 0x4000 .. @provider[i] + 0x4000)
        )
}

rule WMI_Remote_Login_Impacket_Namespace : wmi lateral_movement
{
    meta:
        description = "IWbemLevel1Login::NTLMLogin namespace in the forward-slash form impacket-based clients send ('//./root/cimv2', '//./root/subscription', '//./root/DEFAULT', UTF-16, not part of a winmgmts: moniker), in non-image memory: a remote WMI login from impacket, NetExec or wmiexec-Pro; pentest and admin tooling too, so medium"
        severity = "medium"
        mitre_attack = "T1047, T1021.003"
        reference = "https://github.com/fortra/impacket/blob/master/examples/wmiexec.py"
        source = "fortra/impacket examples/wmiexec.py, examples/wmipersist.py; XiaoliChan/wmiexec-Pro lib/methods/executeVBS.py; Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "hex:00 00 + wide://./root/cimv2 + hex:00 00"
        example_positive_2 = "hex:00 00 + wide://./root/subscription + hex:00 00"
        example_near_miss = "wide:winmgmts://./root/cimv2 + hex:00 00"
        example_near_miss_2 = "wide:\\\\.\\root\\cimv2 + hex:00 00"

    strings:
        $namespace = "//./root/" wide nocase
        $moniker = "winmgmts://./root/" wide nocase

    condition:
        for any i in (1..math.min(#namespace, 256)) : (not $moniker at (@namespace[i] - 18))
}
