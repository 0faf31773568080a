"""A corpus of what WMI processes hold: footprints of public attack tools and benign WMI memory.

Every footprint is written from the tool's own source (``source`` names the repository and path the
text was read from) and laid out the way the WMI provider host holds it: property names and values of
the objects the tool puts or the method parameters it sends, as UTF-16 strings (BSTR/VARIANT), or the
script text a consumer carries. Values the tools randomise (names, uuids, base64 payloads) are filled
with fixed stand-ins of the same shape.

The benign set is what the same processes hold on a healthy, managed machine: monitoring and SCCM
queries, polling subscriptions, the default SCM Event Log consumer, Windows' own remote WMI clients and
WMI identifiers in DLL data. The corpus test (tests/test_yara_rules.py) checks that every family is
detected and that nothing in the benign set is reported at high severity.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import List, Tuple

PRIVATE = "private"  # heap / private allocation of the WMI process
IMAGE = "image"  # read-only data of a loaded DLL


@dataclass(frozen=True)
class Sample:
    family: str
    tool: str
    source: str
    data: bytes
    memory: str = PRIVATE


def wide(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


def wmi_object(class_name: str, *properties: Tuple[str, str]) -> bytes:
    """An instance as its strings sit in memory: class name, then each property name and value."""
    out = bytearray(wide(class_name) + bytes(8))
    for name, value in properties:
        out += wide(name) + bytes(4) + wide(value) + bytes(4)
    return bytes(out)


def method_call(class_name: str, method: str, *parameters: Tuple[str, str]) -> bytes:
    """ExecMethod on a class: object path, method name and the in-parameters object."""
    return wide(class_name) + wide(method) + wmi_object("__PARAMETERS", *parameters)


def guid_bytes(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


UUID_A = "0f8fad5b-d9cb-469f-a165-70867728950e"
UUID_B = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
B64 = "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA"
SID_ADMINS = bytes([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0])

IMPACKET_WMIEXEC = "fortra/impacket examples/wmiexec.py"
IMPACKET_WMIPERSIST = "fortra/impacket examples/wmipersist.py"
NXC_SMB = "Pennyw0rth/NetExec nxc/protocols/smb/wmiexec.py"
NXC_WMI = "Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py"
NXC_EVENT = "Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec_event.py"
PRO_EXEC = "XiaoliChan/wmiexec-Pro lib/modules/exec_command.py"
PRO_VBS = "XiaoliChan/wmiexec-Pro lib/vbscripts/Exec-Command-WithOutput.vbs"
PRO_EVENTS = "XiaoliChan/wmiexec-Pro lib/methods/executeVBS.py"
PRO_RID = "XiaoliChan/wmiexec-Pro lib/modules/rid_hijack.py"
PRO_CLEAR = "XiaoliChan/wmiexec-Pro lib/vbs-scripts/ClearEventlog.vbs"
EMPIRE = "mishmashclone/BC-SECURITY-Empire empire/server/modules/powershell/persistence/elevated/wmi.py"
POWERSPLOIT = "PowerShellMafia/PowerSploit Persistence/Persistence.psm1"
MSF = "rapid7/metasploit-framework modules/exploits/windows/local/wmi_persistence.rb"
WMIMPLANT = "RedSiege/WMImplant WMImplant.ps1"
SHARPWMI = "GhostPack/SharpWMI SharpWMI/Program.cs"
INVOKE_WMIEXEC = "Kevin-Robertson/Invoke-TheHash Invoke-WMIExec.ps1"
UPTIME_QUERY = (
    "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
    "'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 240 AND "
    "TargetInstance.SystemUpTime < 325"
)
PRO_TRIGGER = (
    "SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA "
    "'Win32_PerfFormattedData_PerfOS_System'"
)
PRO_SCRIPT = (
    'Dim command\r\ncommand = Base64StringDecode("d2hvYW1pIC9hbGw=")\r\n'
    'If FileExists("C:\\Windows\\Temp\\' + UUID_A + '.log") Then\r\n'
    '    Set oXML = CreateObject("Msxml2.DOMDocument")\r\n    Set oNode = oXML.CreateElement("base64")\r\n'
    '    oNode.dataType = "bin.base64"\r\n'
    '    Set objClass = GetObject("Winmgmts:root\\cimv2:Win32_OSRecoveryConfigurationDataBackup")\r\n'
    "    Set objInstance = objClass.spawninstance_\r\n"
    '    objInstance.CreationClassName = "' + UUID_B + '"\r\n'
    "    objInstance.DebugOptions = Base64Encode\r\n    objInstance.put_\r\nElse\r\n"
    '    Set service = CreateObject("Schedule.Service")\r\n    Call service.Connect\r\n'
    "    Set Action = taskDefinition.Actions.Create(ActionTypeExec)\r\n"
    '    Action.Path = "c:\\windows\\system32\\cmd.exe"\r\n'
    '    Action.arguments = "/c " & command & " 1> C:\\Windows\\Temp\\' + UUID_A + '.log 2>&1"\r\n'
    '    Call rootFolder.RegisterTaskDefinition("' + UUID_B + '", taskDefinition, 6, LoginUser, , 3)\r\n'
    "End If\r\n"
)
PRO_TAG = "windows-object-" + UUID_A


def _footprints() -> List[Sample]:
    create = "Win32_Process", "Create"
    samples = [
        # --- process creation: every launch form ---------------------------------------------------
        Sample(
            "process creation",
            "impacket wmiexec (output to ADMIN$)",
            IMPACKET_WMIEXEC,
            method_call(
                *create,
                ("CommandLine", "cmd.exe /Q /c cd \\ 1> \\\\127.0.0.1\\ADMIN$\\__1700000000.1234567 2>&1"),
                ("CurrentDirectory", "C:\\"),
            ),
        ),
        Sample(
            "process creation",
            "impacket wmiexec -nooutput / -silentcommand",
            IMPACKET_WMIEXEC,
            method_call(
                *create,
                ("CommandLine", "cmd.exe /Q /c net localgroup administrators backdoor /add"),
                ("CurrentDirectory", "C:\\"),
            ),
        ),
        Sample(
            "process creation",
            "impacket wmiexec -shell-type powershell",
            IMPACKET_WMIEXEC,
            method_call(
                *create,
                (
                    "CommandLine",
                    "cmd.exe /Q /c powershell.exe -NoP -NoL -sta -NonI -W Hidden -Exec Bypass "
                    "-Enc " + B64 + " 1> \\\\127.0.0.1\\ADMIN$\\__1700000001.5 2>&1",
                ),
            ),
        ),
        Sample(
            "process creation",
            "NetExec smb wmiexec (output to Temp)",
            NXC_SMB,
            method_call(
                *create,
                ("CommandLine", "cmd.exe /Q /c whoami 1> \\\\127.0.0.1\\C$\\Windows\\Temp\\KfTqWd 2>&1"),
            ),
        ),
        Sample(
            "process creation",
            "NetExec wmi wmiexec (output through the registry)",
            NXC_WMI,
            method_call(
                *create,
                (
                    "CommandLine",
                    "cmd.exe /Q /c  whoami 1> C:\\windows\\temp\\" + UUID_A + ".txt 2>&1 && "
                    "certutil -encodehex -f C:\\windows\\temp\\"
                    + UUID_A
                    + ".txt C:\\windows\\temp\\"
                    + UUID_B
                    + '.txt 0x40000001 && for /F "usebackq" %G in ("C:\\windows\\temp\\'
                    + UUID_B
                    + '.txt") '
                    "do reg add HKLM\\Software\\Classes\\hUyTre /v " + UUID_A + ' /t REG_SZ /d "%G" /f',
                ),
            ),
        ),
        Sample(
            "process creation",
            "wmiexec-Pro (scheduled task with temp output)",
            PRO_VBS,
            wide('Action.arguments = "/c " & command & " 1> C:\\Windows\\Temp\\' + UUID_A + '.log 2>&1"'),
        ),
        Sample(
            "process creation",
            "Empire persistence/elevated/wmi trigger command",
            EMPIRE,
            wmi_object(
                "CommandLineEventConsumer",
                ("Name", "Updater"),
                (
                    "CommandLineTemplate",
                    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NonI -W hidden -enc "
                    + B64,
                ),
                ("RunInteractively", "false"),
            ),
        ),
        Sample(
            "process creation",
            "WMImplant remote command (output to HKLM)",
            WMIMPLANT,
            method_call(
                *create,
                (
                    "CommandLine",
                    'powershell -nop -exec bypass -c "$fct = Get-ItemProperty HKLM:\\Software\\'
                    "Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\* | "
                    "Select-Object DisplayName | "
                    "format-list | out-string; $bytes = [System.Text.Encoding]::Ascii.GetBytes($fct); "
                    "$fctenc=[Convert]::ToBase64String($bytes); New-ItemProperty -Path "
                    "'HKLM:\\Software\\Microsoft\\Windows' -Name 'KxQpa' -Value $fctenc -PropertyType String "
                    '-Force"',
                ),
            ),
        ),
        Sample(
            "process creation",
            "Metasploit wmi_persistence consumer (cmd_psh_payload)",
            MSF,
            wmi_object(
                "CommandLineEventConsumer",
                ("Name", "UPDATER"),
                ("CommandLineTemplate", "powershell.exe -nop -w hidden -noni -e " + B64),
            ),
        ),
        Sample(
            "process creation",
            "Invoke-WMIExec script text",
            INVOKE_WMIEXEC,
            wide(
                "function Invoke-WMIExec\r\n{\r\n$packet_DCOMRemoteCreateInstance = "
                "Get-PacketDCOMRemoteCreateInstance $causality_ID $target_short\r\n"
            ),
        ),
        Sample(
            "process creation",
            "scheduled job through WMI (pre-Vista fallback)",
            PRO_RID,
            method_call(
                "Win32_ScheduledJob",
                "Create",
                ("Command", "cmd.exe /c C:\\windows\\temp\\windows-object.bat"),
                ("StartTime", "********123000.000000+000"),
            ),
        ),
        # --- subscription payloads without a launcher keyword ----------------------------------------
        Sample(
            "subscription payload",
            "wmiexec-Pro ActiveScriptEventConsumer (VBScript)",
            PRO_EVENTS,
            wmi_object(
                "ActiveScriptEventConsumer",
                ("Name", PRO_TAG),
                ("ScriptingEngine", "VBScript"),
                ("ScriptText", PRO_SCRIPT),
            ),
        ),
        Sample(
            "subscription payload",
            "NetExec wmiexec-event consumer",
            NXC_EVENT,
            wmi_object(
                "ActiveScriptEventConsumer",
                ("Name", "windows-object-" + UUID_B),
                ("ScriptingEngine", "VBScript"),
                (
                    "ScriptText",
                    'Set service = CreateObject("Schedule.Service")\r\nCall service.Connect\r\n'
                    'Call rootFolder.RegisterTaskDefinition("' + UUID_A + '", taskDefinition, 6, , , 3)\r\n',
                ),
            ),
        ),
        Sample(
            "subscription payload",
            "impacket wmipersist consumer",
            IMPACKET_WMIPERSIST,
            wmi_object(
                "ActiveScriptEventConsumer",
                ("Name", "ASEC"),
                ("ScriptingEngine", "VBScript"),
                ("ScriptText", 'Set objShell = CreateObject("WScript.Shell")\r\nobjShell.Run "notepad.exe"'),
            )
            + SID_ADMINS
            + wmi_object("__EventFilter", ("Name", "EF_ASEC"), ("EventNamespace", "root\\subscription")),
        ),
        # --- filters on their own --------------------------------------------------------------------
        Sample(
            "persistence filter",
            "PowerSploit Add-Persistence -PermanentWMI",
            POWERSPLOIT,
            wmi_object(
                "__EventFilter",
                ("Name", "Updater"),
                ("EventNameSpace", "root\\cimv2"),
                ("QueryLanguage", "WQL"),
                ("Query", UPTIME_QUERY),
            ),
        ),
        Sample(
            "persistence filter",
            "Empire wmi (OnStartup)",
            EMPIRE,
            wmi_object("__EventFilter", ("Name", "Updater"), ("Query", UPTIME_QUERY)),
        ),
        Sample(
            "persistence filter",
            "Empire wmi (FailedLogon)",
            EMPIRE,
            wmi_object(
                "__EventFilter",
                (
                    "Query",
                    "SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA "
                    "'Win32_NTLogEvent' AND TargetInstance.EventCode='4625' AND "
                    "TargetInstance.Message LIKE '%svc_bkp%'",
                ),
            ),
        ),
        Sample(
            "persistence filter",
            "Metasploit wmi_persistence USERNAME",
            MSF,
            wmi_object(
                "__EventFilter",
                (
                    "Query",
                    "SELECT * FROM __InstanceCreationEvent WITHIN 60 WHERE TargetInstance ISA "
                    "'Win32_NTLogEvent' AND Targetinstance.EventCode = '4625' And "
                    "Targetinstance.Message Like '%BOB%'",
                ),
            ),
        ),
        Sample(
            "persistence filter",
            "Metasploit wmi_persistence INTERVAL",
            MSF,
            wmi_object(
                "__IntervalTimerInstruction", ("TimerID", "Trigger"), ("IntervalBetweenEvents", "1800000")
            )
            + wmi_object("__EventFilter", ("Query", "Select * FROM __TimerEvent WHERE TimerID = 'trigger'")),
        ),
        Sample(
            "persistence filter",
            "Metasploit wmi_persistence PROCESS",
            MSF,
            wmi_object(
                "__EventFilter",
                ("Query", "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName= 'CALC.EXE'"),
            ),
        ),
        Sample(
            "persistence filter",
            "wmiexec-Pro command trigger",
            PRO_EXEC,
            wmi_object("__EventFilter", ("Name", PRO_TAG), ("Query", PRO_TRIGGER)),
        ),
        Sample(
            "persistence filter",
            "wmiexec-Pro / NetExec timer",
            PRO_EVENTS,
            wmi_object("__IntervalTimerInstruction", ("TimerId", PRO_TAG), ("IntervalBetweenEvents", "1000")),
        ),
        # --- staging and exfiltration through WMI ------------------------------------------------------
        Sample(
            "staging",
            "wmiexec-Pro output class instance",
            PRO_EXEC,
            wmi_object(
                "Win32_OSRecoveryConfigurationDataBackup",
                ("CreationClassName", UUID_B),
                ("DebugOptions", "bnQgYXV0aG9yaXR5XHN5c3RlbQ0K"),
            ),
        ),
        Sample("staging", "wmiexec-Pro file into class script", PRO_VBS, wide(PRO_SCRIPT)),
        Sample(
            "staging",
            "WMImplant registry output channel",
            WMIMPLANT,
            method_call(
                "StdRegProv",
                "GetStringValue",
                ("hDefKey", "2147483650"),
                ("sSubKeyName", "SOFTWARE\\Microsoft\\Windows"),
                ("sValueName", "KxQpa"),
            )
            + method_call(
                "StdRegProv",
                "DeleteValue",
                ("hDefKey", "2147483650"),
                ("sSubKeyName", "SOFTWARE\\Microsoft\\Windows"),
                ("sValueName", "KxQpa"),
            ),
        ),
        Sample(
            "staging",
            "SharpWMI upload class",
            SHARPWMI,
            wide("Win32_OSRecoveryConfigurationData") + wide("_Context##RANDOM##"),
        ),
        # --- registry tampering through StdRegProv ----------------------------------------------------
        Sample(
            "registry",
            "wmiexec-Pro RID hijack",
            PRO_RID,
            method_call(
                "StdRegProv",
                "SetBinaryValue",
                ("hDefKey", "2147483650"),
                ("sSubKeyName", "SAM\\SAM\\Domains\\Account\\Users\\000001F5"),
                ("sValueName", "F"),
            ),
        ),
        Sample(
            "registry",
            "wmiexec-Pro blank password logon",
            PRO_RID,
            method_call(
                "StdRegProv",
                "SetDWORDValue",
                ("hDefKey", "2147483650"),
                ("sSubKeyName", "SYSTEM\\CurrentControlSet\\Control\\Lsa"),
                ("sValueName", "LimitBlankPasswordUse"),
                ("uValue", "0"),
            ),
        ),
        Sample(
            "registry",
            "NetExec wmi output key removal",
            NXC_WMI,
            method_call(
                "StdRegProv",
                "DeleteKey",
                ("hDefKey", "2147483650"),
                ("sSubKeyName", "Software\\Classes\\hUyTre"),
            ),
        ),
        # --- event-log clearing ------------------------------------------------------------------------
        Sample(
            "event-log clearing",
            "wmiexec-Pro ClearEventlog.vbs",
            PRO_CLEAR,
            wide(
                'Set LogFileSet = GetObject("winmgmts:{(Backup,Security)}").ExecQuery("select * from '
                'Win32_NTEventLogFile")\r\n\r\nfor each Logfile in LogFileSet\r\n'
                " RetVal = LogFile.ClearEventlog()\r\nnext"
            ),
        ),
        # --- remote logins -----------------------------------------------------------------------------
        Sample(
            "remote login",
            "impacket NTLMLogin //./root/cimv2",
            IMPACKET_WMIEXEC,
            bytes(16) + wide("//./root/cimv2"),
        ),
        Sample(
            "remote login",
            "wmiexec-Pro NTLMLogin //./root/subscription",
            PRO_EVENTS,
            bytes(16) + wide("//./root/subscription"),
        ),
    ]
    return samples


FOOTPRINTS: List[Sample] = _footprints()

CLSID_WBEMLOCATOR = "4590F811-1D3A-11D0-891F-00AA004B2E24"
IID_IWBEMSERVICES = "9556DC99-828C-11CF-A37E-00AA003240C7"
IID_IWBEMCLASSOBJECT = "DC12A681-737F-11CF-884D-00AA004B2E24"


def _benign() -> List[Sample]:
    return [
        Sample(
            "monitoring",
            "performance polling subscription",
            "-",
            wmi_object(
                "__EventFilter",
                (
                    "Query",
                    "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
                    "'Win32_PerfFormattedData_PerfOS_Processor' AND TargetInstance.PercentProcessorTime > 90",
                ),
            ),
        ),
        Sample(
            "monitoring",
            "system counters query",
            "-",
            wide("SELECT SystemUpTime, Processes, Threads FROM Win32_PerfFormattedData_PerfOS_System"),
        ),
        Sample(
            "monitoring",
            "process start watch",
            "-",
            wide("SELECT * FROM __InstanceCreationEvent WITHIN 5 WHERE TargetInstance ISA 'Win32_Process'"),
        ),
        Sample(
            "monitoring",
            "service state poll",
            "-",
            wide(
                "SELECT Name, State, StartMode FROM Win32_Service "
                "WHERE StartMode = 'Auto' AND State <> 'Running'"
            ),
        ),
        Sample(
            "monitoring",
            "failed logon report query",
            "-",
            wide("SELECT * FROM Win32_NTLogEvent WHERE Logfile = 'Security' AND EventCode = 4625"),
        ),
        Sample(
            "SCCM",
            "ConfigMgr client queries",
            "-",
            wide("SELECT * FROM CCM_Application")
            + wide("root\\ccm\\ClientSDK")
            + wide("SELECT * FROM SMS_Client")
            + wide("SELECT * FROM CCM_SoftwareUpdate WHERE ComplianceState = 0"),
        ),
        Sample(
            "SCCM",
            "ConfigMgr script launch",
            "-",
            method_call(
                "Win32_Process",
                "Create",
                (
                    "CommandLine",
                    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -NoLogo '
                    "-Noninteractive -ExecutionPolicy Bypass -File C:\\Windows\\CCM\\SystemTemp\\detect.ps1",
                ),
            ),
        ),
        Sample(
            "SCCM",
            "ConfigMgr registry inventory",
            "-",
            method_call(
                "StdRegProv",
                "EnumKey",
                ("hDefKey", "2147483650"),
                ("sSubKeyName", "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"),
            ),
        ),
        Sample(
            "default consumer",
            "SCM Event Log consumer",
            "-",
            wmi_object(
                "NTEventLogEventConsumer",
                ("Name", "SCM Event Log Consumer"),
                ("SourceName", "Service Control Manager"),
            )
            + SID_ADMINS
            + wmi_object(
                "__EventFilter",
                ("Name", "SCM Event Log Filter"),
                ("Query", "select * from MSFT_SCMEventLogEvent"),
            )
            + wide(
                '__FilterToConsumerBinding.Consumer='
                '"NTEventLogEventConsumer.Name=\\"SCM Event Log Consumer\\"",'
                'Filter="__EventFilter.Name=\\"SCM Event Log Filter\\""'
            ),
        ),
        Sample(
            "default consumer",
            "BVTConsumer (Windows Server 2003 default)",
            "-",
            wmi_object(
                "CommandLineEventConsumer",
                ("Name", "BVTConsumer"),
                ("CommandLineTemplate", "cscript KernCap.vbs"),
                ("WorkingDirectory", "C:\\tools\\kernrate"),
            )
            + wmi_object(
                "__EventFilter",
                ("Name", "BVTFilter"),
                (
                    "Query",
                    "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
                    '"Win32_Processor" AND TargetInstance.LoadPercentage > 99',
                ),
            ),
        ),
        Sample(
            "remote client",
            "Windows remote WMI (wmic /node)",
            "-",
            bytes(8) + wide("\\\\SRV01\\root\\cimv2") + wide("SELECT * FROM Win32_OperatingSystem"),
        ),
        Sample(
            "remote client",
            "marshalled WMI objects with queries",
            "-",
            b"MEOW"
            + bytes([4, 0, 0, 0])
            + guid_bytes(IID_IWBEMCLASSOBJECT)
            + bytes(64)
            + wide("SELECT * FROM Win32_LogicalDisk WHERE DriveType = 3"),
        ),
        Sample(
            "script host",
            "admin VBScript moniker",
            "-",
            wide(
                'Set objWMI = GetObject("winmgmts://./root/cimv2")\r\n'
                'Set colItems = objWMI.ExecQuery("SELECT * FROM '
                'Win32_Service")'
            ),
        ),
        Sample(
            "admin",
            "recovery settings read",
            "-",
            wide("SELECT * FROM Win32_OSRecoveryConfiguration")
            + wmi_object("Win32_OSRecoveryConfiguration", ("DebugFilePath", "%SystemRoot%\\MEMORY.DMP")),
        ),
        Sample(
            "admin",
            "event log backup",
            "-",
            wmi_object("Win32_NTEventlogFile", ("LogfileName", "Security"))
            + wide("BackupEventlog")
            + wide("C:\\Backup\\Security.evtx"),
        ),
        Sample(
            "DLL data",
            "wbemprox.dll identifiers and class names",
            "-",
            guid_bytes(CLSID_WBEMLOCATOR)
            + guid_bytes(IID_IWBEMSERVICES)
            + wide("SELECT * FROM ")
            + wide("Win32_Process")
            + wide("Create")
            + wide("ExecMethod")
            + wide("CommandLineEventConsumer"),
            memory=IMAGE,
        ),
    ]


BENIGN: List[Sample] = _benign()
