/*
    Footprints of public WMI lateral-movement and persistence tools, taken from their source.

    impacket wmiexec.py (and dcomexec.py): OUTPUT_FILENAME = '__' + str(time.time()); the command sent
        to Win32_Process.Create is 'cmd.exe /Q /c ' + cmd + ' 1> \\127.0.0.1\ADMIN$\__<epoch float> 2>&1'
        (-share picks another admin share).
    NetExec / CrackMapExec smb wmiexec: 'cmd.exe /Q /c ' + cmd + ' 1> \Windows\Temp\<6 letters> 2>&1';
        older releases wrote to '\\127.0.0.1\C$\Windows\Temp\<6 letters>'.
    impacket wmipersist.py: NTLMLogin('//./root/subscription'), ActiveScriptEventConsumer <name>,
        __EventFilter EF_<name>, __IntervalTimerInstruction TI_<name> with the filter
        'select * from __TimerEvent where TimerID = "TI_<name>" ', CreatorSID = S-1-5-32-544 as bytes
        01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00.
    SharpWMI: event name 'Debug', timer 'Timer' with 'SELECT * FROM __TimerEvent WHERE TimerID = 'Timer'',
        command output in a Win32_Environment variable named from '_Context##RANDOM##' (a number replaces
        ##RANDOM##), uploads through the made-up class Win32_OSRecoveryConfigurationData.
    Invoke-WMIExec (Invoke-TheHash): hand-built NTLMv2/DCOM packets; function and field names such as
        Get-PacketDCOMRemoteCreateInstance, DCOMRemoteCreateInstance_IActPropertiesCUSTOMOBJREF..., the
        response marker "4D454F570100000018AD09F36AD8D011A07500C04FB68820" (OBJREF + IID_IWbemLevel1Login
        as hex text) and its output messages.
*/

import "math"

rule WMI_Tool_Impacket_WMIExec : wmi lateral_movement impacket
{
    meta:
        description = "impacket wmiexec/dcomexec command line: 'cmd.exe /Q /c ... 1> \\\\127.0.0.1\\ADMIN$\\__<epoch float> 2>&1' (output redirected to an admin share under a time.time() name), in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1021.003"
        reference = "https://github.com/fortra/impacket/blob/master/examples/wmiexec.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:cmd.exe /Q /c whoami /all 1> \\\\127.0.0.1\\ADMIN$\\__1700000000.1234567 2>&1"
        example_positive_2 = "ascii:cmd.exe /Q /c cd  1> \\\\127.0.0.1\\ADMIN$\\__1699999999.12 2>&1"
        example_positive_3 = "wide:cmd.exe /Q /c powershell.exe -NoP -NoL -sta -NonI -W Hidden -Exec Bypass -Enc JABQAHIAbwBnAHIAZQBzAHMA 1> \\\\127.0.0.1\\C$\\__1712345678.9 2>&1"
        example_near_miss = "wide:cmd.exe /Q /c whoami 1> C:\\Windows\\Temp\\__1700000000.1234567 2>&1"
        example_near_miss_2 = "ascii:cmd.exe /c dir C:\\Windows\\Temp"
        example_near_miss_3 = "ascii:net use \\\\127.0.0.1\\ADMIN$ && type \\\\127.0.0.1\\ADMIN$\\__1700000000.1234567"

    strings:
        $redirect = / 1> \\\\127\.0\.0\.1\\[A-Za-z]{1,8}\$\\__[0-9]{10}\.[0-9]{1,7} 2>&1/ ascii wide
        $shell = "cmd.exe /Q /c " ascii wide nocase

    condition:
        for any i in (1..math.min(#redirect, 256)) : ($shell in (@redirect[i] - 0x8000 .. @redirect[i]))
}

rule WMI_Tool_NetExec_WMIExec : wmi lateral_movement netexec
{
    meta:
        description = "NetExec/CrackMapExec wmiexec command line: 'cmd.exe /Q /c ... 1> \\Windows\\Temp\\<6 letters> 2>&1' (optionally through \\\\127.0.0.1\\C$), in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1021.003"
        reference = "https://github.com/Pennyw0rth/NetExec/blob/main/nxc/protocols/smb/wmiexec.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:cmd.exe /Q /c ipconfig /all 1> \\Windows\\Temp\\qXbTzR 2>&1"
        example_positive_2 = "ascii:cmd.exe /Q /c whoami 1> \\\\127.0.0.1\\C$\\Windows\\Temp\\AbCdEf 2>&1"
        example_near_miss = "ascii:cmd.exe /c dir > C:\\Windows\\Temp\\listing.txt 2>&1"
        example_near_miss_2 = "wide:cmd.exe /Q /c whoami 1> \\Windows\\Temp\\output_1 2>&1"

    strings:
        $redirect = / 1> (\\\\127\.0\.0\.1\\[A-Za-z]{1,8}\$)?\\Windows\\Temp\\[A-Za-z]{6} 2>&1/ ascii wide
        $shell = "cmd.exe /Q /c " ascii wide nocase

    condition:
        for any i in (1..math.min(#redirect, 256)) : ($shell in (@redirect[i] - 0x8000 .. @redirect[i]))
}

rule WMI_Tool_Impacket_WMIPersist : wmi persistence impacket
{
    meta:
        description = "impacket wmipersist: ActiveScriptEventConsumer within 16 KiB of an EF_<name> event filter or TI_<name> timer and of root\\subscription or CreatorSID S-1-5-32-544 (bytes or text), in non-image memory"
        severity = "high"
        mitre_attack = "T1546.003, T1047"
        reference = "https://github.com/fortra/impacket/blob/master/examples/wmipersist.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:__EventFilter.Name=\"EF_ASEC\" + hex:00 + zeros:16 + ascii:ActiveScriptEventConsumer.Name=\"ASEC\" + hex:00 + zeros:16 + hex:01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00"
        example_positive_2 = "wide:Adding EventFilter EF_ASEC + hex:00 00 + wide:ActiveScriptEventConsumer + hex:00 00 + wide://./root/subscription"
        example_positive_3 = "wide:select * from __TimerEvent where TimerID = \"TI_ASEC\" + hex:00 00 + wide:root\\subscription + hex:00 00 + wide:ActiveScriptEventConsumer"
        example_near_miss = "wide:ActiveScriptEventConsumer + hex:00 00 + wide:root\\subscription + hex:00 00 + wide:__EventFilter.Name=\"Updater\" + hex:00 00 + wide:S-1-5-32-544"
        example_near_miss_2 = "ascii:__EventFilter.Name=\"EF_ASEC\" + hex:00 + hex:01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00"

    strings:
        $consumer = "ActiveScriptEventConsumer" ascii wide
        $ef_path = "__EventFilter.Name=\"EF_" ascii wide
        $ef_log = "EventFilter EF_" ascii wide
        $ti_query = "__TimerEvent where TimerID = \"TI_" ascii wide nocase
        $ti_path = "__IntervalTimerInstruction.TimerId=\"TI_" ascii wide nocase
        $ns = "root\\subscription" ascii wide nocase
        $ns_url = "//./root/subscription" ascii wide nocase
        $sid = { 01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00 }
        $sid_text = "S-1-5-32-544" ascii wide

    condition:
        for any i in (1..math.min(#consumer, 256)) : (
            any of ($ef_path, $ef_log, $ti_query, $ti_path) in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000)
            and any of ($ns, $ns_url, $sid, $sid_text) in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000)
        )
}

rule WMI_Tool_SharpWMI_Strings : wmi lateral_movement sharpwmi
{
    meta:
        description = "SharpWMI assembly (on disk or loaded in memory): the _Context##RANDOM## result-variable template, or two of its distinctive strings (Win32_OSRecoveryConfigurationData upload class, 'Timer' timer query, Win32_Environment CreateOnly command, XOR iex wrapper, method names)"
        severity = "high"
        mitre_attack = "T1047, T1546.003"
        reference = "https://github.com/GhostPack/SharpWMI"
        scope = "any"
        author = "wmi-forensics"
        example_positive = "wide:_Context##RANDOM## + hex:00 00"
        example_positive_2 = "ascii:RemoteWMIExecuteWithOutput + hex:00 + zeros:32 + wide:Win32_OSRecoveryConfigurationData + hex:00 00"
        example_positive_3 = "wide:SELECT * FROM __TimerEvent WHERE TimerID = 'Timer' + hex:00 00 + wide:iex([char[]](@({0})|%{{$_-bxor{1}}}) -join '')"
        example_near_miss = "wide:Win32_OSRecoveryConfiguration + hex:00 00 + wide:DebugFilePath + hex:00 00 + wide:Win32_Environment + hex:00 00 + wide:_Context"
        example_near_miss_2 = "ascii:RemoteWMIExecute + hex:00 + ascii:GetWMIQueryResults"

    strings:
        $placeholder = "_Context##RANDOM##" ascii wide
        $upload_class = "Win32_OSRecoveryConfigurationData" ascii wide
        $timer_query = "__TimerEvent WHERE TimerID = 'Timer'" ascii wide nocase
        $env_put = "-Class Win32_Environment -PutType CreateOnly" ascii wide nocase
        $xor_iex = "iex([char[]](@({0})|%{{$_-bxor{1}}}) -join '')" ascii wide
        $f_exec_output = "RemoteWMIExecuteWithOutput" ascii wide
        $f_exec_vbs = "RemoteWMIExecuteVBS" ascii wide
        $f_upload = "UploadFileViaWMI" ascii wide
        $f_result = "GetWMIResultProperty" ascii wide
        $f_firewall = "RemoteWMIFirewall" ascii wide

    condition:
        $placeholder or 2 of them
}

rule WMI_Tool_SharpWMI_Artifacts : wmi lateral_movement persistence sharpwmi
{
    meta:
        description = "What SharpWMI leaves in WMI memory: the 'Timer' __TimerEvent filter next to its ActiveScriptEventConsumer, interval timer or 'Debug' filter, or a _Context<number> Win32_Environment result variable, in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1546.003"
        reference = "https://github.com/GhostPack/SharpWMI"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:SELECT * FROM __TimerEvent WHERE TimerID = 'Timer' + hex:00 00 + zeros:64 + wide:__EventFilter.Name=\"Debug\" + hex:00 00"
        example_positive_2 = "wide:Win32_Environment + hex:00 00 + wide:_Context482913 + hex:00 00 + wide:NT AUTHORITY\\SYSTEM + hex:00 00 + wide:116,98,97"
        example_near_miss = "wide:Win32_Environment + hex:00 00 + wide:_ContextSwitchCount + hex:00 00 + wide:PATH"
        example_near_miss_2 = "wide:SELECT * FROM __TimerEvent WHERE TimerID = 'Timer' + hex:00 00 + wide:__EventFilter + hex:00 00 + wide:Heartbeat"

    strings:
        $timer_query = "__TimerEvent WHERE TimerID = 'Timer'" ascii wide nocase
        $consumer = "ActiveScriptEventConsumer" ascii wide nocase
        $interval = "__IntervalTimerInstruction" ascii wide nocase
        $filter_debug = "__EventFilter.Name=\"Debug\"" ascii wide nocase
        $env_class = "Win32_Environment" ascii wide nocase
        $result_var = /_Context[0-9]{1,7}/ ascii wide fullword

    condition:
        for any i in (1..math.min(#timer_query, 256)) : (
            any of ($consumer, $interval, $filter_debug) in (@timer_query[i] - 0x4000 .. @timer_query[i] + 0x4000)
        )
        or for any i in (1..math.min(#result_var, 256)) : ($env_class in (@result_var[i] - 0x4000 .. @result_var[i] + 0x4000))
}

rule WMI_Tool_Invoke_WMIExec : wmi lateral_movement powershell
{
    meta:
        description = "Invoke-WMIExec (Invoke-TheHash) script text: two of its function name, DCOM packet builders and field names, hex OBJREF marker or output messages, in any memory"
        severity = "high"
        mitre_attack = "T1047, T1021.003, T1550.002"
        reference = "https://github.com/Kevin-Robertson/Invoke-TheHash/blob/master/Invoke-WMIExec.ps1"
        scope = "any"
        author = "wmi-forensics"
        example_positive = "wide:function Invoke-WMIExec + zeros:16 + wide:$MEOW_index = $MEOW.IndexOf(\"4D454F570100000018AD09F36AD8D011A07500C04FB68820\")"
        example_positive_2 = "ascii:$packet_DCOMRemoteCreateInstance = Get-PacketDCOMRemoteCreateInstance $causality_ID_bytes $target_short + zeros:64 + ascii:$WMI_client_random_port.Connect($target_long,$WMI_random_port_int)"
        example_near_miss = "ascii:Invoke-WmiMethod -Class Win32_Process -Name Create -ArgumentList notepad.exe -ComputerName srv01"
        example_near_miss_2 = "wide:Invoke-WMIExec + hex:00 00 + wide:Invoke-SMBExec"

    strings:
        $name = "Invoke-WMIExec" ascii wide nocase
        $create_instance = "Get-PacketDCOMRemoteCreateInstance" ascii wide nocase
        $custom_objref = "DCOMRemoteCreateInstance_IActPropertiesCUSTOMOBJREF" ascii wide nocase
        $meow_hex = "4D454F570100000018AD09F36AD8D011A07500C04FB68820" ascii wide nocase
        $random_port = "$WMI_client_random_port" ascii wide nocase
        $rem_query = "Get-PacketDCOMRemQueryInterface" ascii wide nocase
        $denied = "WMI access denied on" ascii wide
        $executed = "Command executed with process ID" ascii wide

    condition:
        2 of them
}
