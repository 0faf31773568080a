/*
    Process-creation command lines that public WMI lateral-movement tools hand to Win32_Process.Create
    (or to a consumer / scheduled task they plant), in every launch form the tools have, as the WMI
    provider host holds them: the marshalled CommandLine in-parameter (UTF-16) or the tool's script text.

    Sources (read from the tools' own code):
      fortra/impacket examples/wmiexec.py    'cmd.exe /Q /c ' + cmd + ' 1> \\127.0.0.1\ADMIN$\__<time.time()> 2>&1';
                                             -nooutput / -silentcommand: 'cmd.exe /Q /c ' + cmd with no redirect;
                                             -shell-type powershell: 'powershell.exe -NoP -NoL -sta -NonI -W Hidden -Exec Bypass -Enc '
      Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py
                                             'cmd.exe /Q /c  <cmd> 1> C:\windows\temp\<uuid4>.txt 2>&1 && certutil -encodehex -f ...
                                             && for /F "usebackq" %G in (...) do reg add HKLM\Software\Classes\<6 letters> /v <uuid4> ...'
      XiaoliChan/wmiexec-Pro lib/vbscripts/Exec-Command-WithOutput.vbs
                                             Action.arguments = "/c " & command & " 1> C:\Windows\Temp\<uuid4>.log 2>&1"
      BC-SECURITY Empire empire/server/modules/powershell/persistence/elevated/wmi.py (mirror mishmashclone/BC-SECURITY-Empire)
                                             '$($Env:SystemRoot)\System32\WindowsPowerShell\v1.0\powershell.exe -NonI -W hidden -enc <b64>'
      RedSiege/WMImplant WMImplant.ps1      'powershell -nop -exec bypass -c "$fct = ... $fctenc=[Convert]::ToBase64String($bytes);
                                             New-ItemProperty -Path 'HKLM:\Software\Microsoft\Windows' -Name '<5 letters>' -Value $fctenc ..."'
                                             (output staged in the registry, read back with StdRegProv GetStringValue)
      Win32_OSRecoveryConfiguration loaders  'powershell -NoP -NonI -C "$x = Get-WmiObject -Class Win32_OSRecoveryConfiguration; ...'
                                             (public PowerShell WMI-exec scripts found by text search; repository not pinned)
*/

import "math"

rule WMI_Process_Create_Output_Redirect_To_Admin_Share : wmi lateral_movement execution
{
    meta:
        description = "Shell command line with its output redirected to an administrative share of the local host ('cmd.exe /Q /c ... 1> \\\\127.0.0.1\\<share>$\\<name> 2>&1'), the remote-output form of impacket wmiexec/dcomexec and its ports whatever the file name, in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1021.002"
        reference = "https://github.com/fortra/impacket/blob/master/examples/wmiexec.py"
        source = "fortra/impacket examples/wmiexec.py; Pennyw0rth/NetExec nxc/protocols/smb/wmiexec.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:cmd.exe /Q /c whoami /all 1> \\\\127.0.0.1\\C$\\Windows\\Temp\\out4242.tmp 2>&1"
        example_positive_2 = "ascii:cmd.exe /Q /c (cd /d C:\\ && ipconfig) 1> \\\\127.0.0.1\\ADMIN$\\a8Fk2.txt 2>&1"
        example_near_miss = "wide:cmd.exe /c ipconfig > C:\\Windows\\Temp\\ip.txt"
        example_near_miss_2 = "wide:robocopy C:\\logs \\\\127.0.0.1\\backup\\logs /E 1> C:\\logs\\copy.txt 2>&1"

    strings:
        $redirect = / 1> \\\\127\.0\.0\.1\\[A-Za-z]{1,8}\$\\[A-Za-z0-9_.\\-]{1,80} 2>&1/ ascii wide
        $shell = "cmd.exe /Q /c " ascii wide nocase

    condition:
        for any i in (1..math.min(#redirect, 256)) : ($shell in (@redirect[i] - 0x8000 .. @redirect[i]))
}

rule WMI_Process_Create_Output_To_Temp_Then_Registry_Or_Class : wmi lateral_movement execution
{
    meta:
        description = "Command line that writes its output to a uuid-named file under C:\\Windows\\Temp and then moves it into the registry (certutil -encodehex + reg add HKLM\\Software\\Classes) or a WMI object (NetExec wmi protocol, wmiexec-Pro scheduled-task form), in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1112"
        reference = "https://github.com/Pennyw0rth/NetExec/blob/main/nxc/protocols/wmi/wmiexec.py"
        source = "Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py; XiaoliChan/wmiexec-Pro lib/vbscripts/Exec-Command-WithOutput.vbs"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:cmd.exe /Q /c  whoami 1> C:\\windows\\temp\\0f8fad5b-d9cb-469f-a165-70867728950e.txt 2>&1 && certutil -encodehex -f C:\\windows\\temp\\0f8fad5b-d9cb-469f-a165-70867728950e.txt C:\\windows\\temp\\7c9e6679-7425-40de-944b-e07fc1f90ae7.txt 0x40000001"
        example_positive_2 = "ascii:Action.arguments = \"/c \" & command & \" 1> C:\\Windows\\Temp\\3f2504e0-4f89-41d3-9a0c-0305e82c3301.log 2>&1\""
        example_near_miss = "wide:cmd.exe /c dir 1> C:\\Windows\\Temp\\dir.txt 2>&1"
        example_near_miss_2 = "wide:certutil -encodehex -f C:\\data\\in.bin C:\\data\\out.txt 0x40000001"

    strings:
        $uuid_out = /1> C:\\windows\\temp\\[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(txt|log) 2>&1/ ascii wide nocase
        $certutil = "certutil -encodehex -f " ascii wide nocase
        $reg_add = /reg add HKLM\\Software\\Classes\\[A-Za-z]{6} \/v / ascii wide nocase

    condition:
        $uuid_out or for any i in (1..math.min(#reg_add, 256)) : ($certutil in (@reg_add[i] - 0x1000 .. @reg_add[i]))
}

rule WMI_Process_Create_Quiet_Shell : wmi lateral_movement execution
{
    meta:
        description = "'cmd.exe /Q /c ' within 16 KiB of Win32_Process, CommandLine or a command-line consumer in non-image memory: the echo-off shell every impacket-derived WMI executor uses, including its no-output and silent modes; admins rarely pass /Q, so medium"
        severity = "medium"
        mitre_attack = "T1047, T1059.003"
        reference = "https://github.com/fortra/impacket/blob/master/examples/wmiexec.py"
        source = "fortra/impacket examples/wmiexec.py (self.__shell); Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:Win32_Process + hex:00 00 + wide:Create + hex:00 00 + wide:CommandLine + hex:00 00 + wide:cmd.exe /Q /c net user backup P@ss /add"
        example_near_miss = "wide:Win32_Process + hex:00 00 + wide:Create + hex:00 00 + wide:CommandLine + hex:00 00 + wide:cmd.exe /c gpupdate /force"
        example_near_miss_2 = "ascii:cmd.exe /Q /c build.bat"

    strings:
        $shell = "cmd.exe /Q /c " ascii wide nocase
        $process = "Win32_Process" ascii wide nocase
        $command_line = "CommandLine" ascii wide
        $consumer = "CommandLineEventConsumer" ascii wide nocase

    condition:
        for any i in (1..math.min(#shell, 256)) : (
            any of ($process, $command_line, $consumer) in (@shell[i] - 0x4000 .. @shell[i] + 0x4000)
        )
}

rule WMI_Process_Create_Tool_PowerShell_Launcher : wmi lateral_movement execution powershell
{
    meta:
        description = "The exact PowerShell launch prefix of a public WMI tool: impacket's '-NoP -NoL -sta -NonI -W Hidden -Exec Bypass -Enc ', Empire's '\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NonI -W hidden -enc ', or the Win32_OSRecoveryConfiguration DebugFilePath loader, in non-image memory"
        severity = "high"
        mitre_attack = "T1047, T1059.001"
        reference = "https://github.com/fortra/impacket/blob/master/examples/wmiexec.py"
        source = "fortra/impacket examples/wmiexec.py; mishmashclone/BC-SECURITY-Empire empire/server/modules/powershell/persistence/elevated/wmi.py; DebugFilePath loader from public PowerShell WMI-exec scripts (text search, repository not pinned)"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:powershell.exe -NoP -NoL -sta -NonI -W Hidden -Exec Bypass -Enc JABQAHIAbwBnAHIAZQBzAHMA"
        example_positive_2 = "wide:C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NonI -W hidden -enc SQBFAFgAIAAoAE4AZQB3AC0A"
        example_positive_3 = "ascii:powershell -NoP -NonI -C \"$x = Get-WmiObject -Class Win32_OSRecoveryConfiguration; $y = [char[]][int[]]$x.DebugFilePath.Split(',') -Join ''; $z = [ScriptBlock]::Create($y); & $z\""
        example_near_miss = "wide:powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\Windows\\CCM\\SystemTemp\\inventory.ps1"
        example_near_miss_2 = "wide:powershell.exe -NonInteractive -Command Get-Service"

    strings:
        $impacket = "powershell.exe -NoP -NoL -sta -NonI -W Hidden -Exec Bypass -Enc " ascii wide nocase
        $empire = "\\WindowsPowerShell\\v1.0\\powershell.exe -NonI -W hidden -enc " ascii wide nocase
        $osrecovery_loader = "[char[]][int[]]$x.DebugFilePath.Split(" ascii wide nocase

    condition:
        any of them
}

rule WMI_Process_Create_Hidden_Encoded_PowerShell : wmi execution powershell
{
    meta:
        description = "PowerShell started hidden (-W Hidden / -WindowStyle Hidden / -w 1) with an encoded command (-e, -enc, -EncodedCommand and base64) in non-image memory: the generic launch form of WMI lateral movement and consumer payloads; admin tooling uses it too, so medium"
        severity = "medium"
        mitre_attack = "T1047, T1059.001, T1027"
        reference = "https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.core/about/about_powershell_exe"
        source = "fortra/impacket examples/wmiexec.py; rapid7/metasploit-framework modules/exploits/windows/local/wmi_persistence.rb"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:powershell -w 1 -nop -e SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA"
        example_positive_2 = "ascii:powershell.exe -WindowStyle Hidden -NoProfile -EncodedCommand JABjAGwAaQBlAG4AdAAgAD0A"
        example_near_miss = "wide:powershell.exe -WindowStyle Hidden -File C:\\Scripts\\backup.ps1"
        example_near_miss_2 = "wide:powershell.exe -EncodedCommand RwBlAHQALQBTAGUAcgB2AGkAYwBlAA=="

    strings:
        $hidden_then_enc = /powershell(\.exe)? [ -~]{0,100}(-w(indowstyle)? +(hidden|1)) [ -~]{0,100}-e(nc|ncodedcommand)? +[A-Za-z0-9+\/]{16}/ ascii wide nocase

    condition:
        $hidden_then_enc
}

rule WMI_Process_Create_Environment_Variable_Launcher : wmi execution powershell
{
    meta:
        description = "PowerShell code parked in an environment variable through Win32_Environment and launched by a short command that reads it back ($env:/gci env: piped to iex) within 16 KiB, in non-image memory: the 'environment-variable PowerShell' launch form that keeps the payload off the command line"
        severity = "high"
        mitre_attack = "T1047, T1059.001, T1027"
        reference = "https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/win32-environment"
        source = "GhostPack/SharpWMI SharpWMI/Program.cs (Win32_Environment staging); environment-variable launchers in WMI lateral-movement scripts"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:Win32_Environment + hex:00 00 + wide:VariableValue + hex:00 00 + zeros:32 + wide:powershell -w 1 (gci env:Updt7).Value|iex"
        example_positive_2 = "ascii:Swmi Win32_Environment -Arg @{Name=$VarName;VariableValue=$OSiRis} + zeros:64 + ascii:powershell -w 1 iex $env:Updt7"
        example_near_miss = "wide:Win32_Environment + hex:00 00 + wide:VariableValue + hex:00 00 + wide:C:\\Program Files\\Java\\bin"
        example_near_miss_2 = "wide:powershell -Command Write-Output $env:PATH"

    strings:
        $env_class = "Win32_Environment" ascii wide nocase
        $launch_gci = /(gci|Get-ChildItem|ls|dir) env:[A-Za-z0-9_]{1,32}\)?(\.Value)? ?\| ?(iex|Invoke-Expression)/ ascii wide nocase
        $launch_env = /(iex|Invoke-Expression) ?\(?\$env:[A-Za-z0-9_]{1,32}/ ascii wide nocase

    condition:
        for any i in (1..math.min(#env_class, 256)) : (
            any of ($launch_*) in (@env_class[i] - 0x4000 .. @env_class[i] + 0x4000)
        )
}

rule WMI_Process_Create_Scheduled_Job : wmi execution persistence
{
    meta:
        description = "Win32_ScheduledJob with its Create method and a Command (AT-style job created through WMI, the pre-Vista fallback of wmiexec-Pro and NetExec) within 4 KiB, in non-image memory; legacy admin scripts use it too, so medium"
        severity = "medium"
        mitre_attack = "T1047, T1053.002"
        reference = "https://learn.microsoft.com/en-us/previous-versions/windows/desktop/legacy/aa394399(v=vs.85)"
        source = "XiaoliChan/wmiexec-Pro lib/modules/rid_hijack.py (Win32_ScheduledJob create method); Pennyw0rth/NetExec nxc/protocols/wmi/wmiexec_event.py"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:Win32_ScheduledJob + hex:00 00 + wide:Create + hex:00 00 + wide:Command + hex:00 00 + wide:cmd.exe /c C:\\windows\\temp\\w.bat"
        example_near_miss = "wide:SELECT * FROM Win32_ScheduledJob"

    strings:
        $job = "Win32_ScheduledJob" ascii wide nocase
        $create = "Create" ascii wide fullword
        $command = "Command" ascii wide fullword

    condition:
        for any i in (1..math.min(#job, 256)) : (
            $create in (@job[i] - 0x1000 .. @job[i] + 0x1000) and $command in (@job[i] - 0x1000 .. @job[i] + 0x1000)
        )
}

rule WMI_Process_Create_Output_Staged_In_Registry : wmi lateral_movement exfiltration powershell
{
    meta:
        description = "PowerShell command line that base64-encodes its output ([Convert]::ToBase64String) and writes it to an HKLM value with New-ItemProperty within 1 KiB, in non-image memory: WMImplant's output channel (read back through StdRegProv GetStringValue, then DeleteValue)"
        severity = "high"
        mitre_attack = "T1047, T1112, T1074.001"
        reference = "https://github.com/RedSiege/WMImplant/blob/master/WMImplant.ps1"
        source = "RedSiege/WMImplant WMImplant.ps1 (Get-InstalledPrograms and the other remote-command functions)"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:powershell -nop -exec bypass -c \"$fct = Get-ItemProperty HKLM:\\Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\* | format-list | out-string; $bytes = [System.Text.Encoding]::Ascii.GetBytes($fct); $fctenc=[Convert]::ToBase64String($bytes); New-ItemProperty -Path 'HKLM:\\Software\\Microsoft\\Windows' -Name 'KxQpa' -Value $fctenc -PropertyType String -Force\""
        example_near_miss = "wide:New-ItemProperty -Path 'HKLM:\\Software\\Contoso' -Name 'Version' -Value '1.2' -PropertyType String -Force"
        example_near_miss_2 = "wide:$b64 = [Convert]::ToBase64String($bytes); Set-Content -Path C:\\out.txt -Value $b64"

    strings:
        $encode = "[Convert]::ToBase64String(" ascii wide nocase
        $store = /New-ItemProperty -Path ['"]?HKLM:/ ascii wide nocase

    condition:
        for any i in (1..math.min(#encode, 256)) : ($store in (@encode[i] .. @encode[i] + 0x400))
}
