/*
    Marshalled WMI interfaces and objects in non-image memory.

    OBJREF (MS-DCOM 2.2.18): signature "MEOW" (4D 45 4F 57), flags (1 standard, 2 handler, 4 custom,
    8 extended) as a little-endian DWORD, then the IID. A remote WMI session carries OBJREFs for
    IWbemLevel1Login, IWbemServices, IEnumWbemClassObject, IWbemCallResult, IWbemObjectSink and
    IWbemLoginClientID; WMI objects travel as OBJREF_CUSTOM with IID_IWbemClassObject and the
    CLSID_WbemClassObject unmarshaler {4590F812-1D3A-11D0-891F-00AA004B2E24}, followed by an encoding
    unit (MS-WMIO 2.2.1) whose signature is 0x12345678 (78 56 34 12).

    The OBJREF rule keeps to the session interfaces (login, services, login client id): the per-object and
    per-call IIDs (IWbemClassObject, IEnumWbemClassObject, IWbemCallResult, IWbemObjectSink) travel in every
    WMI exchange. It is context (legitimate remote and out-of-process WMI clients hold such buffers);
    the encoding-unit rule asks for the parameters object of Win32_Process.Create, which is what
    impacket wmiexec, Invoke-WMIExec and every other "Win32_Process.Create over DCOM" tool sends.
*/

import "math"

rule WMI_Marshalled_Session_Interface_OBJREF : wmi dcom
{
    meta:
        description = "OBJREF ('MEOW', valid flags) carrying a WMI session interface IID (IWbemLevel1Login, IWbemServices or IWbemLoginClientID; not the per-object and per-call interfaces every WMI exchange marshals) in non-image memory: a marshalled WMI session, context for remote WMI use"
        severity = "low"
        mitre_attack = "T1047, T1021.003"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-dcom/"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "hex:4D 45 4F 57 01 00 00 00 18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 + zeros:16 + hex:C8 12 00 00 00 00 00 00"
        example_positive_2 = "hex:4D 45 4F 57 01 00 00 00 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 00 00 00 00 05 00 00 00"
        example_positive_3 = "hex:4D 45 4F 57 01 00 00 00 D6 1C 78 D4 D3 E5 DF 44 AD 94 93 0E FE 48 A8 87 + zeros:16"
        example_near_miss = "hex:4D 45 4F 57 01 00 00 00 31 01 00 00 00 00 00 00 C0 00 00 00 00 00 00 46 + zeros:16"
        example_near_miss_2 = "hex:4D 45 4F 57 10 00 00 00 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7"
        example_near_miss_3 = "hex:18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7"
        example_near_miss_4 = "hex:4D 45 4F 57 04 00 00 00 81 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 12 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24"
        example_near_miss_5 = "hex:4D 45 4F 57 01 00 00 00 01 78 85 7C 81 73 CF 11 88 4D 00 AA 00 4B 2E 24 + zeros:16"

    strings:
        $objref = {
            4D 45 4F 57 (01|02|04|08) 00 00 00
            (
                18 AD 09 F3 6A D8 D0 11 A0 75 00 C0 4F B6 88 20 |
                99 DC 56 95 8C 82 CF 11 A3 7E 00 AA 00 32 40 C7 |
                D6 1C 78 D4 D3 E5 DF 44 AD 94 93 0E FE 48 A8 87
            )
        }

    condition:
        $objref
}

rule WMI_Marshalled_Process_Create_Object : wmi dcom execution
{
    meta:
        description = "WMI object encoding unit (signature 0x12345678) with CommandLine in its body and Win32_Process plus Create or __PARAMETERS around it, in non-image memory: the marshalled in-parameters of Win32_Process.Create (remote process creation through WMI)"
        severity = "medium"
        mitre_attack = "T1047, T1021.003"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmio/"
        scope = "non-image"
        author = "wmi-forensics"
        example_positive = "wide:Win32_Process + hex:00 00 55 73 65 72 06 00 00 00 0C 00 00 00 06 00 00 00 + wide:Create + hex:00 00 00 00 4D 45 4F 57 04 00 00 00 81 A6 12 DC 7F 73 CF 11 88 4D 00 AA 00 4B 2E 24 12 F8 90 45 3A 1D D0 11 89 1F 00 AA 00 4B 2E 24 00 00 00 00 F0 06 00 00 78 56 34 12 E2 06 00 00 02 53 06 00 + ascii:__PARAMETERS + hex:00 00 + ascii:abstract + hex:00 + zeros:40 + ascii:CommandLine + hex:00 00 + ascii:string + hex:00 + zeros:64 + ascii:Win32API|Process and Thread Functions|CreateProcess|lpCommandLine + hex:00 + zeros:48 + ascii:object:Win32_ProcessStartup + hex:00 00 + ascii:cmd.exe /Q /c whoami + hex:00"
        example_positive_2 = "hex:78 56 34 12 40 02 00 00 02 53 06 00 + wide:__PARAMETERS + hex:00 00 + zeros:32 + wide:CommandLine + hex:00 00 + zeros:32 + wide:Win32_ProcessStartup + hex:00 00 + wide:powershell -nop -w hidden -c calc"
        example_near_miss = "hex:78 56 34 12 40 02 00 00 02 53 06 00 + ascii:__PARAMETERS + hex:00 00 + zeros:32 + ascii:Name + hex:00 + zeros:16 + ascii:Win32_Service + hex:00 + ascii:StartService + hex:00"
        example_near_miss_2 = "wide:Win32_Process + hex:00 00 + wide:Create + hex:00 00 + wide:CommandLine + hex:00 00 + wide:notepad.exe"

    strings:
        $unit = { 78 56 34 12 }
        $command_line = "CommandLine" ascii wide
        $win32_process = "Win32_Process" ascii wide nocase
        $create = "Create" ascii wide fullword
        $parameters = "__PARAMETERS" ascii wide

    condition:
        for any i in (1..math.min(#unit, 256)) : (
            $command_line in (@unit[i] .. @unit[i] + 0x4000)
            and $win32_process in (@unit[i] - 0x400 .. @unit[i] + 0x4000)
            and any of ($create, $parameters) in (@unit[i] - 0x400 .. @unit[i] + 0x4000)
        )
}
