/*
    Permanent-subscription pieces that public persistence tools plant, caught without a launcher keyword:
    script consumers whose VBScript/JScript starts processes or writes files through COM, and event filters
    whose trigger is one of the tools' known forms even when the filter is seen on its own.

    Sources (read from the tools' own code):
      XiaoliChan/wmiexec-Pro lib/methods/executeVBS.py, lib/vbscripts/Exec-Command-WithOutput.vbs
          ActiveScriptEventConsumer named "windows-object-<uuid4>", __IntervalTimerInstruction with the same
          TimerId, 'select * from __TimerEvent where TimerID = "<tag>" '; the script uses Schedule.Service
          (RegisterTaskDefinition), Scripting.FileSystemObject, ADODB.Stream and
          GetObject("Winmgmts:root\Cimv2:<class>") spawninstance_/put_; filter
          "SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System'"
      Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec_event.py   the same "windows-object-<uuid4>" naming and timer
      PowerShellMafia/PowerSploit Persistence/Persistence.psm1,
      mishmashclone/BC-SECURITY-Empire empire/server/modules/powershell/persistence/elevated/wmi.py,
      rapid7/metasploit-framework modules/exploits/windows/local/wmi_persistence.rb
          "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA
           'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 240 AND TargetInstance.SystemUpTime < 325";
          "SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_NTLogEvent' AND
           Targetinstance.EventCode = '4625' And Targetinstance.Message Like '%BOB%'";
          __IntervalTimerInstruction TimerID "Trigger" + "Select * FROM __TimerEvent WHERE TimerID = 'trigger'";
          "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName= 'CALC.EXE'";
          "Select * from __InstanceCreationEvent WITHIN 15 WHERE TargetInstance ISA 'Win32_LogonSession' and TargetInstance.LogonType = 2"
*/

import "math"

rule WMI_Script_Consumer_Starts_Process_Or_Writes_Files : wmi persistence execution
{
    meta:
        description = "Script consumer (ActiveScriptEventConsumer or ScriptText) within 16 KiB of script code that starts processes or writes files through COM without any launcher keyword: winmgmts:/Win32_Process Create, Schedule.Service RegisterTaskDefinition, WScript.Shell Run/Exec, or FileSystemObject/ADODB.Stream writers, in non-image memory"
        severity = "high"
        mitre_attack = "T1546.003, T1047, T1053.005"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/vbscripts/Exec-Command-WithOutput.vbs"
        source = "XiaoliChan/wmiexec-Pro lib/vbscripts/Exec-Command-WithOutput.vbs, lib/methods/executeVBS.py; Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec_event.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:ActiveScriptEventConsumer + hex:00 00 + wide:ScriptText + hex:00 00 + wide:Set service = CreateObject(\"Schedule.Service\")\r\nCall service.Connect\r\nCall rootFolder.RegisterTaskDefinition(\"a\", taskDefinition, 6, LoginUser, , 3)"
        example_positive_2 = "ascii:ActiveScriptEventConsumer + zeros:16 + ascii:Set p = GetObject(\"winmgmts:root\\cimv2:Win32_Process\")\r\np.Create \"rundll32 C:\\ProgramData\\x.dll,Start\", Null, Null, pid"
        example_positive_3 = "wide:ScriptText + hex:00 00 + wide:Set fso = CreateObject(\"Scripting.FileSystemObject\")\r\nSet f = fso.CreateTextFile(\"C:\\Windows\\Temp\\a.bat\", True)"
        example_near_miss = "wide:ActiveScriptEventConsumer + hex:00 00 + wide:ScriptText + hex:00 00 + wide:Set oLog = CreateObject(\"Scripting.FileSystemObject\")\r\nWScript.Echo oLog.FileExists(\"C:\\x\")"
        example_near_miss_2 = "wide:Set service = CreateObject(\"Schedule.Service\")\r\nCall rootFolder.RegisterTaskDefinition(\"a\", taskDefinition, 6)"

    strings:
        $consumer = "ActiveScriptEventConsumer" ascii wide nocase
        $script_text = "ScriptText" ascii wide
        $c_winmgmts_process = /winmgmts:[^"\r\n]{0,80}Win32_Process/ ascii wide nocase
        $c_process_create = /Win32_Process"?\)?[\r\n]{0,2}[^\r\n]{0,40}\.Create[ (]/ ascii wide nocase
        $c_task_register = "RegisterTaskDefinition" ascii wide nocase
        $c_shell_run = /CreateObject\("WScript\.Shell"\)[^\r\n]{0,40}[\r\n]{1,2}[^\r\n]{0,80}\.(Run|Exec) / ascii wide nocase
        $c_fso_write = /\.(CreateTextFile|OpenTextFile)\(/ ascii wide nocase
        $c_stream_write = /\.SaveToFile[ (]/ ascii wide nocase
        $schedule_service = "Schedule.Service" ascii wide nocase
        $fso = "Scripting.FileSystemObject" ascii wide nocase
        $stream = "ADODB.Stream" ascii wide nocase

    condition:
        for any i in (1..math.min(#consumer, 256)) : (
            any of ($c_winmgmts_process, $c_process_create, $c_shell_run) in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000)
            or ($c_task_register in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000) and $schedule_service in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000))
            or ($c_fso_write in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000) and $fso in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000))
            or ($c_stream_write in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000) and $stream in (@consumer[i] - 0x4000 .. @consumer[i] + 0x4000))
        )
        or for any i in (1..math.min(#script_text, 256)) : (
            any of ($c_winmgmts_process, $c_process_create, $c_shell_run) in (@script_text[i] .. @script_text[i] + 0x4000)
            or ($c_task_register in (@script_text[i] .. @script_text[i] + 0x4000) and $schedule_service in (@script_text[i] .. @script_text[i] + 0x4000))
            or ($c_fso_write in (@script_text[i] .. @script_text[i] + 0x4000) and $fso in (@script_text[i] .. @script_text[i] + 0x4000))
            or ($c_stream_write in (@script_text[i] .. @script_text[i] + 0x4000) and $stream in (@script_text[i] .. @script_text[i] + 0x4000))
        )
}

rule WMI_Tool_WMIExecPro_Event_Objects : wmi persistence lateral_movement
{
    meta:
        description = "wmiexec-Pro / NetExec wmiexec-event subscription objects: the 'windows-object-<uuid4>' name or TimerId within 16 KiB of ActiveScriptEventConsumer, __IntervalTimerInstruction, __TimerEvent or __EventFilter, in non-image memory"
        severity = "high"
        mitre_attack = "T1546.003, T1047"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/methods/executeVBS.py"
        source = "XiaoliChan/wmiexec-Pro lib/methods/executeVBS.py; Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec_event.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:__IntervalTimerInstruction + hex:00 00 + wide:TimerId + hex:00 00 + wide:windows-object-0f8fad5b-d9cb-469f-a165-70867728950e"
        example_positive_2 = "ascii:select * from __TimerEvent where TimerID = \"windows-object-7c9e6679-7425-40de-944b-e07fc1f90ae7\" "
        example_near_miss = "wide:__IntervalTimerInstruction + hex:00 00 + wide:TimerId + hex:00 00 + wide:BackupTimer"
        example_near_miss_2 = "wide:windows-object-model.xml"

    strings:
        $tag = /windows-object-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/ ascii wide
        $consumer = "ActiveScriptEventConsumer" ascii wide nocase
        $timer = "__IntervalTimerInstruction" ascii wide nocase
        $timer_event = "__TimerEvent" ascii wide nocase
        $filter = "__EventFilter" ascii wide nocase

    condition:
        for any i in (1..math.min(#tag, 256)) : (
            any of ($consumer, $timer, $timer_event, $filter) in (@tag[i] - 0x4000 .. @tag[i] + 0x4000)
        )
}

rule WMI_Filter_Startup_Uptime_Window : wmi persistence filter
{
    meta:
        description = "Event filter that fires once shortly after boot: Win32_PerfFormattedData_PerfOS_System modification polled WITHIN n seconds with a SystemUpTime >= a AND SystemUpTime < b window (PowerSploit, Empire, Metasploit 'logon' trigger), in non-image memory; a known persistence form even without its consumer"
        severity = "high"
        mitre_attack = "T1546.003"
        reference = "https://github.com/PowerShellMafia/PowerSploit/blob/master/Persistence/Persistence.psm1"
        source = "PowerShellMafia/PowerSploit Persistence/Persistence.psm1; mishmashclone/BC-SECURITY-Empire empire/server/modules/powershell/persistence/elevated/wmi.py; rapid7/metasploit-framework modules/exploits/windows/local/wmi_persistence.rb"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 240 AND TargetInstance.SystemUpTime < 325"
        example_positive_2 = "ascii:select * from __InstanceModificationEvent within 5 where TargetInstance isa \"Win32_PerfFormattedData_PerfOS_System\" and TargetInstance.SystemUpTime >= 200 and TargetInstance.SystemUpTime < 320"
        example_near_miss = "wide:SELECT * FROM __InstanceModificationEvent WITHIN 30 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_Processor' AND TargetInstance.PercentProcessorTime > 90"
        example_near_miss_2 = "wide:SELECT SystemUpTime FROM Win32_PerfFormattedData_PerfOS_System"

    strings:
        $window = /Win32_PerfFormattedData_PerfOS_System['"]? AND TargetInstance\.SystemUpTime ?>=? ?[0-9]{1,6} AND TargetInstance\.SystemUpTime ?<=? ?[0-9]{1,6}/ ascii wide nocase

    condition:
        $window
}

rule WMI_Filter_Frequent_System_Perf_Polling : wmi persistence filter
{
    meta:
        description = "Event filter polling Win32_PerfFormattedData_PerfOS_System modifications WITHIN 1-9 seconds with no further condition (wmiexec-Pro's command trigger: fires within seconds of being bound), in non-image memory; monitoring also polls performance classes, so medium"
        severity = "medium"
        mitre_attack = "T1546.003, T1047"
        reference = "https://github.com/XiaoliChan/wmiexec-Pro/blob/main/lib/modules/exec_command.py"
        source = "XiaoliChan/wmiexec-Pro lib/modules/exec_command.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System'"
        example_near_miss = "wide:SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_Processor'"
        example_near_miss_2 = "wide:SELECT * FROM __InstanceModificationEvent WITHIN 30 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System'"

    strings:
        $poll = /__InstanceModificationEvent WITHIN [1-9] WHERE TargetInstance ISA ['"]Win32_PerfFormattedData_PerfOS_System['"]/ ascii wide nocase

    condition:
        $poll
}

rule WMI_Filter_Failed_Logon_Trigger : wmi persistence filter
{
    meta:
        description = "Event filter on Win32_NTLogEvent creations with EventCode 4625 and a Message LIKE '%user%' condition (Empire FailedLogon and Metasploit USERNAME triggers: a backdoor woken by a failed logon as a chosen name), in non-image memory"
        severity = "high"
        mitre_attack = "T1546.003"
        reference = "https://github.com/rapid7/metasploit-framework/blob/master/modules/exploits/windows/local/wmi_persistence.rb"
        source = "rapid7/metasploit-framework modules/exploits/windows/local/wmi_persistence.rb; mishmashclone/BC-SECURITY-Empire empire/server/modules/powershell/persistence/elevated/wmi.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_NTLogEvent' AND Targetinstance.EventCode = '4625' And Targetinstance.Message Like '%BOB%'"
        example_positive_2 = "ascii:SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_NTLogEvent' AND TargetInstance.EventCode='4625' AND TargetInstance.Message LIKE '%fakeuser%'"
        example_near_miss = "wide:SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_NTLogEvent' AND TargetInstance.EventCode = '4624' AND TargetInstance.Message LIKE '%admin%'"
        example_near_miss_2 = "wide:SELECT * FROM Win32_NTLogEvent WHERE Logfile = 'Security' AND EventCode = 4624"

    strings:
        $failed_logon_like = /Win32_NTLogEvent['"]? AND TargetInstance\.EventCode ?= ?'?4625'? AND TargetInstance\.Message LIKE '%/ ascii wide nocase

    condition:
        $failed_logon_like
}

rule WMI_Filter_Logon_Process_Or_Timer_Trigger : wmi persistence filter
{
    meta:
        description = "Event filter whose trigger is a persistence-tool form that admins also use: failed-logon (4625) creations, interactive logon sessions (Win32_LogonSession LogonType = 2, Win32_LoggedOnUser), Win32_ProcessStartTrace for one process name, or a __TimerEvent bound to an __IntervalTimerInstruction, in non-image memory; medium on its own"
        severity = "medium"
        mitre_attack = "T1546.003"
        reference = "https://github.com/rapid7/metasploit-framework/blob/master/modules/exploits/windows/local/wmi_persistence.rb"
        source = "rapid7/metasploit-framework modules/exploits/windows/local/wmi_persistence.rb; PowerShellMafia/PowerSploit Persistence/Persistence.psm1; fortra/impacket examples/wmipersist.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_NTLogEvent' AND TargetInstance.EventCode = '4625'"
        example_positive_2 = "wide:Select * from __InstanceCreationEvent WITHIN 15 WHERE TargetInstance ISA 'Win32_LogonSession' and TargetInstance.LogonType = 2"
        example_positive_3 = "wide:SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName= 'CALC.EXE'"
        example_positive_4 = "wide:__IntervalTimerInstruction + hex:00 00 + zeros:64 + wide:Select * FROM __TimerEvent WHERE TimerID = 'trigger'"
        example_near_miss = "wide:SELECT * FROM Win32_LogonSession WHERE LogonType = 2"
        example_near_miss_2 = "wide:SELECT * FROM Win32_ProcessStartTrace"
        example_near_miss_3 = "wide:SELECT * FROM __InstanceCreationEvent WITHIN 5 WHERE TargetInstance ISA 'Win32_Process'"

    strings:
        $failed_logon = /Win32_NTLogEvent['"]? AND TargetInstance\.EventCode ?= ?'?4625/ ascii wide nocase
        $logon_session = /__InstanceCreationEvent WITHIN [0-9]{1,5} WHERE TargetInstance ISA ['"](Win32_LogonSession['"] AND TargetInstance\.LogonType ?= ?[0-9]{1,2}|Win32_LoggedOnUser['"])/ ascii wide nocase
        $process_start = /Win32_ProcessStartTrace WHERE ProcessName ?= ?['"]/ ascii wide nocase
        $timer_event = /__TimerEvent WHERE TimerID ?= ?['"]/ ascii wide nocase
        $interval = "__IntervalTimerInstruction" ascii wide nocase

    condition:
        any of ($failed_logon, $logon_session, $process_start)
        or for any i in (1..math.min(#timer_event, 256)) : ($interval in (@timer_event[i] - 0x4000 .. @timer_event[i] + 0x4000))
}
