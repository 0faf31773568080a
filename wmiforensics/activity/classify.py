"""Turn carved WMI objects and requests into operations with a severity, a confidence and a reason.

Backend-neutral: it sees only decoded objects and request arguments. The rules follow what the
public WMI attack tools send (impacket wmiexec/wmipersist, Invoke-WMIExec, WMImplant, SharpWMI,
NetExec, PowerSploit/Empire persistence, Metasploit) and what a quiet provider host holds
(performance counters, monitoring queries, the default ``SCM Event Log Consumer``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..engine.findings import Confidence, Severity
from .carver import Carved

#: Properties shown in the ``Key`` column, in this order, when an object has them.
KEY_PROPERTIES = (
    "Name",
    "Query",
    "QueryLanguage",
    "EventNamespace",
    "CommandLineTemplate",
    "ExecutablePath",
    "ScriptingEngine",
    "ScriptText",
    "ScriptFileName",
    "CommandLine",
    "CurrentDirectory",
    "hDefKey",
    "sSubKeyName",
    "sValueName",
    "sValue",
    "uValue",
    "CLSID",
    "HostingModel",
    "Filter",
    "Consumer",
    "VariableValue",
    "DebugFilePath",
    "Command",
    "PathName",
    "PackageLocation",
    "ArchiveFileName",
    "TimerId",
    "IntervalBetweenEvents",
)
SCRIPT_PREVIEW = 160

CONSUMERS_THAT_RUN = {"commandlineeventconsumer", "activescripteventconsumer"}
BENIGN_CONSUMERS = {"scm event log consumer"}
BENIGN_FILTERS = {"scm event log filter", "bvtfilter"}
HKLM, HKCU, HKU = 0x80000002, 0x80000001, 0x80000003
SECURITY_KEYS = (
    (r"\\AMSI\\Providers", "an AMSI provider key (AMSI can be blinded or hijacked)"),
    (r"SecurityProviders\\WDigest", "WDigest (UseLogonCredential keeps clear-text credentials in LSASS)"),
    (r"Windows Defender\\Exclusions", "a Microsoft Defender exclusion"),
    (r"Windows Defender(\\|$)", "Microsoft Defender settings"),
    (r"WBEM\\CIMOM", "WMI's own CIMOM settings (Logging turns WMI tracing off)"),
    (r"WMI\\Autologger\\", "an ETW autologger (Enabled = 0 stops a trace session at boot)"),
    (r"\\Lsa(\\|$)", "LSA settings"),
    (r"CurrentVersion\\Run", "a Run key (autostart)"),
    (r"Image File Execution Options", "Image File Execution Options (debugger hijack)"),
    (r"\\Services\\", "a service definition"),
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\r\n]{256,}$")
_ENCODED_PS = re.compile(
    r"(?i)\b(powershell|pwsh)(\.exe)?\b.*\s-(e|ec|enc|encodedcommand)\s+[A-Za-z0-9+/=]{16,}"
)
_ADMIN_SHARE_REDIRECT = re.compile(r"(?i)1>\s*\\\\(127\.0\.0\.1|localhost)\\ADMIN\$\\__\d+\.\d+\s+2>&1")
_TEMP_REDIRECT = re.compile(r"(?i)>\s*\S*\\(Windows\\Temp|Temp)\\\S+\s+2>&1")
_ENV_IEX = re.compile(r"(?i)(\biex\b|invoke-expression).*\$env:|\$env:.*\|\s*(iex|invoke-expression)")
_DOWNLOAD = re.compile(
    r"(?i)(downloadstring|downloadfile|invoke-webrequest|\biwr\b|bitsadmin|certutil.*-urlcache)"
)
_TRIGGERS = (
    (re.compile(r"(?i)__TimerEvent|__IntervalTimerInstruction|__AbsoluteTimerInstruction"), "a timer"),
    (re.compile(r"(?i)Win32_LogonSession|Win32_LoggedOnUser|LogonType"), "a logon"),
    (re.compile(r"(?i)Win32_ProcessStartTrace|TargetInstance\s+ISA\s+'Win32_Process'"), "a process start"),
    (re.compile(r"(?i)SystemUpTime|Win32_PerfFormattedData_PerfOS_System"), "system start-up (uptime)"),
    (re.compile(r"(?i)Win32_LocalTime|Win32_UTCTime"), "a time of day"),
    (re.compile(r"(?i)Win32_VolumeChangeEvent|Win32_LogicalDisk"), "a volume or disk change"),
    (
        re.compile(r"(?i)RegistryKeyChangeEvent|RegistryValueChangeEvent|RegistryTreeChangeEvent"),
        "a registry change",
    ),
)
_WITHIN = re.compile(r"(?i)\bWITHIN\s+(\d+)")
RECON_CLASSES = re.compile(
    r"(?i)\b(Win32_(Process|Service|UserAccount|Group|GroupUser|ComputerSystem|OperatingSystem|Share|"
    r"NetworkAdapterConfiguration|LogicalDisk|Product|QuickFixEngineering|LoggedOnUser|StartupCommand|"
    r"Volume|BIOS|NTDomain)|AntiVirusProduct|FirewallProduct|MSFT_MpComputerStatus|__Namespace)\b"
)
BENIGN_QUERY_CLASSES = re.compile(
    r"(?i)\b(Win32_PerfFormattedData\w*|Win32_PerfRawData\w*|CIM_\w+|MSFT_\w+|Win32_Processor|__Provider)\b"
)


@dataclass
class Activity:
    """One recovered WMI operation or object, classified."""

    address: int
    size: int
    form: str
    namespace: Optional[str]
    class_name: str
    operation: str
    properties: Dict[str, Any] = field(default_factory=dict)
    kind: str = "object"
    severity: Severity = Severity.INFO
    confidence: Confidence = Confidence.MEDIUM
    reason: str = ""
    notes: List[str] = field(default_factory=list)
    #: The full decoded object (all properties, types, methods) for json output.
    detail: Dict[str, Any] = field(default_factory=dict)

    def key_text(self) -> str:
        parts = []
        for name in KEY_PROPERTIES:
            value = _lookup(self.properties, name)
            if value is None:
                continue
            text = _display(value)
            if name == "ScriptText" and len(text) > SCRIPT_PREVIEW:
                text = text[:SCRIPT_PREVIEW] + f"... ({len(text)} chars)"
            if name == "hDefKey" and isinstance(value, int):
                text = {HKLM: "HKLM", HKCU: "HKCU", HKU: "HKU", 0x80000000: "HKCR"}.get(value, f"0x{value:x}")
            parts.append(f"{name}={text}")
        return "; ".join(parts)


def _display(value: Any) -> str:
    if isinstance(value, list):
        if value and all(isinstance(item, int) for item in value) and len(value) > 8:
            return f"[{len(value)} numbers]"
        return (
            "["
            + ", ".join(_display(item) for item in value[:16])
            + (", ..." if len(value) > 16 else "")
            + "]"
        )
    if hasattr(value, "class_name"):
        return f"<{value.class_name} object>"
    return str(value)


def _lookup(properties: Dict[str, Any], name: str) -> Any:
    lowered = name.lower()
    for key, value in properties.items():
        if key.lower() == lowered:
            return value
    return None


def _text(properties: Dict[str, Any], name: str) -> str:
    value = _lookup(properties, name)
    return value if isinstance(value, str) else ""


def _set(activity: Activity, kind: str, severity: Severity, confidence: Confidence, reason: str) -> Activity:
    activity.kind, activity.severity, activity.confidence, activity.reason = (
        kind,
        severity,
        confidence,
        reason,
    )
    return activity


def launcher(command: str) -> Optional[str]:
    """How a process-creation command line was built, when a known tool's shape is recognised."""
    if _ADMIN_SHARE_REDIRECT.search(command):
        return "output redirected to \\\\127.0.0.1\\ADMIN$\\__<time> (impacket wmiexec)"
    if _TEMP_REDIRECT.search(command):
        return "output redirected to a temp file (NetExec/CrackMapExec wmiexec style)"
    if _ENCODED_PS.search(command):
        return "encoded PowerShell (-enc)"
    if _ENV_IEX.search(command):
        return "PowerShell runs code kept in an environment variable (IEX $env:...)"
    if _DOWNLOAD.search(command):
        return "downloads and runs a payload"
    if re.search(r"(?i)cmd(\.exe)?\s+/Q\s+/c", command):
        return "cmd.exe /Q /c without output redirection (no-output mode)"
    return None


def _process_creation(activity: Activity, command: str, what: str) -> Activity:
    how = launcher(command)
    if how:
        return _set(
            activity, "process_create", Severity.CRITICAL, Confidence.HIGH, f"{what} runs '{command}': {how}"
        )
    return _set(
        activity,
        "process_create",
        Severity.HIGH,
        Confidence.MEDIUM,
        f"{what} runs '{command}' through WMI (remote process creation)",
    )


def _registry(activity: Activity) -> Activity:
    key = _text(activity.properties, "sSubKeyName")
    value_name = _text(activity.properties, "sValueName")
    for pattern, what in SECURITY_KEYS:
        if re.search(pattern, key, re.IGNORECASE):
            return _set(
                activity,
                "registry_security",
                Severity.HIGH,
                Confidence.HIGH,
                f"StdRegProv writes {value_name or '(default)'} under {key}: {what}",
            )
    return _set(
        activity,
        "registry_write",
        Severity.MEDIUM,
        Confidence.MEDIUM,
        f"StdRegProv registry change through WMI: {key}\\{value_name}",
    )


def describe_filter(query: str) -> str:
    triggers = [what for pattern, what in _TRIGGERS if pattern.search(query)]
    within = _WITHIN.search(query)
    if within:
        triggers.append(f"WITHIN {within.group(1)} s polling")
    return ", ".join(triggers) or "an event query"


def _payload(activity: Activity) -> str:
    props = activity.properties
    if activity.class_name.lower() == "activescripteventconsumer":
        engine = _text(props, "ScriptingEngine") or "script"
        source = _text(props, "ScriptText") or _text(props, "ScriptFileName")
        return f"{engine} script '{source[:80]}'" if source else "a script (not in this object)"
    command = _text(props, "CommandLineTemplate") or _text(props, "ExecutablePath")
    return repr(command) if command else "a command line (not in this object)"


def _subscription_part(activity: Activity, lowered: str) -> Activity:
    name = _text(activity.properties, "Name")
    if lowered == "__eventfilter":
        query = _text(activity.properties, "Query")
        if name.lower() in BENIGN_FILTERS:
            return _set(
                activity,
                "subscription_filter",
                Severity.INFO,
                Confidence.HIGH,
                f"the Windows default event filter '{name}'",
            )
        return _set(
            activity,
            "subscription_filter",
            Severity.MEDIUM,
            Confidence.MEDIUM,
            f"permanent event filter '{name}' fires on {describe_filter(query)}: '{query}'"
            if query
            else f"permanent event filter '{name}' (its query is not in this object)",
        )
    if lowered in CONSUMERS_THAT_RUN:
        return _set(
            activity,
            "subscription_consumer",
            Severity.HIGH,
            Confidence.HIGH,
            f"{activity.class_name} '{name}' runs {_payload(activity)} when its filter fires",
        )
    if lowered == "__filtertoconsumerbinding":
        filter_name = _reference_name(_text(activity.properties, "Filter")).lower()
        consumer_name = _reference_name(_text(activity.properties, "Consumer")).lower()
        if filter_name in BENIGN_FILTERS or consumer_name in BENIGN_CONSUMERS:
            return _set(
                activity,
                "subscription_binding",
                Severity.INFO,
                Confidence.HIGH,
                "the Windows default SCM Event Log subscription binding",
            )
        return _set(
            activity,
            "subscription_binding",
            Severity.MEDIUM,
            Confidence.MEDIUM,
            f"binding of '{_text(activity.properties, 'Filter')}' "
            f"to '{_text(activity.properties, 'Consumer')}'",
        )
    if name.lower() in BENIGN_CONSUMERS:
        return _set(
            activity,
            "subscription_consumer",
            Severity.INFO,
            Confidence.HIGH,
            f"the Windows default consumer '{name}'",
        )
    return _set(
        activity,
        "subscription_consumer",
        Severity.LOW,
        Confidence.MEDIUM,
        f"{activity.class_name} '{name}' (a consumer that does not run code)",
    )


def _staging(activity: Activity) -> Optional[Activity]:
    for key, value in activity.properties.items():
        if isinstance(value, str) and len(value) >= 256 and _BASE64.match(value):
            return _set(
                activity,
                "staging",
                Severity.HIGH,
                Confidence.MEDIUM,
                f"{activity.class_name}.{key} holds {len(value)} characters of base64: data staged in a "
                "WMI property (upload or exfiltration)",
            )
    return None


def classify_object(activity: Activity, is_class: bool, derivation: List[str]) -> Activity:
    lowered = activity.class_name.lower()
    props = activity.properties
    staged = _staging(activity)
    if staged is not None:
        return staged
    if is_class:
        return _set(
            activity, "class", Severity.INFO, Confidence.HIGH, f"definition of class {activity.class_name}"
        )
    if lowered == "__parameters":
        command = _text(props, "CommandLine") or _text(props, "Command") or _text(props, "PathName")
        if command:
            what = {
                "commandline": "Win32_Process.Create",
                "command": "Win32_ScheduledJob.Create",
                "pathname": "Win32_Service.Create",
            }
            name = next(what[k.lower()] for k in props if k.lower() in what and isinstance(props[k], str))
            return _process_creation(activity, command, name)
        if _lookup(props, "PackageLocation"):
            return _set(
                activity,
                "process_create",
                Severity.HIGH,
                Confidence.MEDIUM,
                f"Win32_Product.Install of '{_text(props, 'PackageLocation')}'",
            )
        if _lookup(props, "hDefKey") is not None and _lookup(props, "sSubKeyName") is not None:
            if any(k.lower() in ("uvalue", "svalue", "uvalue", "svalues", "uvalues") for k in props):
                return _registry(activity)
            return _set(
                activity,
                "registry_read",
                Severity.LOW,
                Confidence.MEDIUM,
                f"StdRegProv reads {_text(props, 'sSubKeyName')}",
            )
        if "archivefilename" in {k.lower() for k in props}:
            return _set(
                activity,
                "eventlog_clear",
                Severity.HIGH,
                Confidence.MEDIUM,
                "Win32_NTEventlogFile ClearEventlog/BackupEventlog parameters (event log cleared or copied)",
            )
        return _set(
            activity, "method_parameters", Severity.LOW, Confidence.LOW, "parameters of a WMI method call"
        )
    if (
        lowered in ("__eventfilter", "__filtertoconsumerbinding")
        or "__eventconsumer" in (d.lower() for d in derivation)
        or lowered.endswith("eventconsumer")
    ):
        return _subscription_part(activity, lowered)
    if lowered in ("__intervaltimerinstruction", "__absolutetimerinstruction"):
        return _set(
            activity,
            "subscription_timer",
            Severity.MEDIUM,
            Confidence.MEDIUM,
            f"timer '{_text(props, 'TimerId')}' every {_lookup(props, 'IntervalBetweenEvents')} ms "
            "(drives a __TimerEvent filter)",
        )
    if lowered == "__win32provider":
        hosting = _text(props, "HostingModel")
        clsid = _text(props, "CLSID")
        if re.search(r"(?i)decoupled|mscoree|\.net|clr", hosting):
            return _set(
                activity,
                "provider_registration",
                Severity.HIGH,
                Confidence.MEDIUM,
                f"provider '{_text(props, 'Name')}' registered with hosting model '{hosting}' "
                f"(CLSID {clsid})",
            )
        return _set(
            activity,
            "provider_registration",
            Severity.MEDIUM,
            Confidence.MEDIUM,
            f"provider '{_text(props, 'Name')}' registered (CLSID {clsid}, hosting {hosting or 'default'})",
        )
    if lowered == "win32_environment":
        return _set(
            activity,
            "environment",
            Severity.LOW,
            Confidence.MEDIUM,
            f"environment variable '{_text(props, 'Name')}' set through WMI",
        )
    if lowered == "win32_osrecoveryconfiguration" and len(_text(props, "DebugFilePath")) > 260:
        return _set(
            activity,
            "staging",
            Severity.HIGH,
            Confidence.MEDIUM,
            "Win32_OSRecoveryConfiguration.DebugFilePath holds more than a path (data staged in WMI)",
        )
    return _set(activity, "object", Severity.INFO, Confidence.HIGH, f"instance of {activity.class_name}")


def classify_request(activity: Activity, operation: str, strings: List[str]) -> Activity:
    if operation in ("ExecQuery", "ExecNotificationQuery"):
        query = strings[1] if len(strings) > 1 else ""
        activity.properties.setdefault("Query", query)
        if operation == "ExecNotificationQuery":
            return _set(
                activity,
                "temporary_subscription",
                Severity.MEDIUM,
                Confidence.MEDIUM,
                f"temporary event subscription on {describe_filter(query)}: '{query}'",
            )
        if RECON_CLASSES.search(query) and not BENIGN_QUERY_CLASSES.search(query):
            return _set(activity, "reconnaissance", Severity.LOW, Confidence.MEDIUM, f"query '{query}'")
        return _set(activity, "query", Severity.INFO, Confidence.MEDIUM, f"query '{query}'")
    if operation in ("NTLMLogin", "OpenNamespace"):
        activity.namespace = strings[0]
    if operation == "NTLMLogin":
        return _set(
            activity,
            "login",
            Severity.INFO,
            Confidence.MEDIUM,
            f"IWbemLevel1Login::NTLMLogin to '{strings[0]}' (a remote client connects)",
        )
    if operation == "ExecMethod":
        return _set(
            activity,
            "method_call",
            Severity.LOW,
            Confidence.MEDIUM,
            f"ExecMethod {strings[1]} on '{strings[0]}'",
        )
    return _set(
        activity,
        "request",
        Severity.INFO,
        Confidence.LOW,
        f"{operation} {', '.join(repr(s) for s in strings)}",
    )


_WQL = re.compile(r"(?is)^\s*select\s.+?\sfrom\s+\w")
_EVENT_QUERY = re.compile(r"(?i)\b(__\w*Event\b|WITHIN\s+\d)")
_OBJECT_PATH = re.compile(
    r"^(?:(?P<namespace>(?:\\\\|//)[^\\/:]+[\\/]\w+(?:[\\/]\w+)*|root(?:[\\/]\w+)*):)?"
    r"(?P<class>[A-Za-z_]\w*)(?:\.(?P<keys>\w+\s*=.*)|=@)$",
    re.IGNORECASE | re.DOTALL,
)
_PATH_KEY = re.compile(r'\s*(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)')
_NAMESPACE_PATH = re.compile(  # namespace names are ASCII identifiers
    r"(?ia)^(?:winmgmts:(?:\{[^}]*\}!?)?)?(?:(?:\\\\|//)(?P<host>[^\\/]+)[\\/])?root(?:[\\/]\w+)*$"
)
_LOCAL_HOSTS = {".", "localhost", "127.0.0.1"}
#: Script source (an ActiveScriptEventConsumer's ScriptText as scrcons.exe holds it, a WMI script).
_SCRIPT = re.compile(r"(?i)\b(CreateObject|GetObject)\s*\(|\bWScript\.|\r\n|\bfunction\s+\w+\s*\(")
_WMI_MONIKER = re.compile(r"(?i)winmgmts:")
CUT_NOTE = "cut at the end of the captured memory: no terminator, the text may go on"
_LOWER_CONFIDENCE = {Confidence.HIGH: Confidence.MEDIUM, Confidence.MEDIUM: Confidence.LOW}


def _path_keys(keys: str) -> Dict[str, str]:
    """``Name="x",Other=3`` -> {"Name": "x", "Other": "3"} (escapes in quoted values undone)."""
    values: Dict[str, str] = {}
    for match in _PATH_KEY.finditer(keys):
        if not match.group(1):
            continue
        value = match.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values[match.group(1)] = value
    return values


def _string_shape(activity: Activity, text: str) -> Optional[Activity]:
    """Classify one string by the rule its shape falls under, or None if it is no WMI operation."""
    if _WQL.match(text):
        activity.operation = "WQL query"
        if not _EVENT_QUERY.search(text):
            return classify_request(activity, "ExecQuery", ["WQL", text])
        activity.properties["Query"] = text
        return _set(
            activity,
            "event_query",
            Severity.MEDIUM,
            Confidence.MEDIUM,
            f"event query on {describe_filter(text)} (a permanent filter's or a temporary subscription's): "
            f"'{text}'",
        )
    path = _OBJECT_PATH.match(text)
    if path:
        activity.class_name = path.group("class")
        activity.operation = "object path"
        activity.namespace = path.group("namespace")
        activity.properties = _path_keys(path.group("keys") or "")
        activity.properties["__PATH"] = text
        return classify_object(activity, False, [])
    namespace = _NAMESPACE_PATH.match(text)
    if namespace:
        activity.operation, activity.namespace = "namespace path", text
        host = namespace.group("host")
        if host and host.lower() not in _LOCAL_HOSTS:
            return _set(
                activity, "namespace", Severity.LOW, Confidence.MEDIUM, f"namespace on another host: '{text}'"
            )
        return _set(activity, "namespace", Severity.INFO, Confidence.MEDIUM, f"namespace '{text}'")
    if _SCRIPT.search(text):
        activity.operation = "script"
        activity.properties = {"ScriptText": text}
        if launcher(text):
            return _process_creation(activity, text, "a script")
        if _WMI_MONIKER.search(text):
            return _set(activity, "script", Severity.LOW, Confidence.MEDIUM, "a script that uses WMI")
        return None
    if launcher(text):
        activity.operation = "command line"
        activity.properties = {"CommandLine": text}
        return _process_creation(activity, text, "a command line")
    if any(re.search(pattern, text, re.IGNORECASE) for pattern, _ in SECURITY_KEYS) and "\\" in text:
        activity.operation = "registry key"
        activity.properties = {"sSubKeyName": text}
        reason = f"StdRegProv key path '{text}'"
        return _set(activity, "registry_read", Severity.LOW, Confidence.MEDIUM, reason)
    return None


def string_activity(item: Carved) -> Optional[Activity]:
    """A free-standing WMI string classified by the rules for objects and requests, one confidence
    step lower (a string alone shows an operation was prepared or seen, not its whole object)."""
    text = item.text or ""
    activity = Activity(item.address, item.size, "string", None, "-", "string", {"Text": text})
    activity.detail = {"encoding": "BSTR" if item.bstr else "UTF-16LE", "characters": len(text)}
    classified = _string_shape(activity, text)
    if classified is None:
        return None
    classified.properties.setdefault("Text", text)
    classified.confidence = _LOWER_CONFIDENCE.get(classified.confidence, Confidence.LOW)
    what = "BSTR" if item.bstr else "UTF-16LE string"
    if item.cut:
        # the rest of the text (and its terminator) was not captured: one step lower again
        classified.confidence = _LOWER_CONFIDENCE.get(classified.confidence, Confidence.LOW)
        classified.notes.append(CUT_NOTE)
        classified.detail["cut"] = True
        what += " cut at the end of the captured memory"
    classified.reason = f"{what} without its object or request (lower confidence): {classified.reason}"
    return classified


def activity_of(item: Carved) -> Optional[Activity]:
    """The classified activity for one carved item (None for a string that is no WMI operation)."""
    if item.form == "string":
        return string_activity(item)
    activity = _structured_activity(item)
    if item.request is not None and item.request.extensions:
        activity.detail["orpc_extensions"] = [
            {"id": extent_id, "size": size} for extent_id, size in item.request.extensions
        ]
    return activity


def _structured_activity(item: Carved) -> Activity:
    obj = item.obj
    if item.request is not None:
        request = item.request
        operation = request.operation
        class_name = request.strings[0].split(".", 1)[0] if operation == "ExecMethod" else "-"
        if obj is not None and operation == "PutInstance":
            operation = "PutClass" if obj.is_class else "PutInstance"
            class_name = obj.class_name
        activity = Activity(
            item.address,
            item.size,
            "request",
            None,
            class_name,
            operation if operation != "ExecMethod" else f"{class_name}.{request.strings[1]}",
        )
        if obj is not None:
            activity.properties = obj.values()
            activity.namespace = obj.namespace
            activity.detail = obj.to_dict()
            activity.notes = list(obj.notes)
            if operation == "ExecMethod":
                method = request.strings[1].lower()
                if method in ("cleareventlog", "backupeventlog"):
                    return _set(
                        activity,
                        "eventlog_clear",
                        Severity.HIGH,
                        Confidence.HIGH,
                        f"{activity.operation} on '{request.strings[0]}'",
                    )
                if method == "install" and class_name.lower() == "win32_product":
                    return _set(
                        activity,
                        "process_create",
                        Severity.HIGH,
                        Confidence.HIGH,
                        f"Win32_Product.Install of '{_text(activity.properties, 'PackageLocation')}'",
                    )
            shown_class = activity.class_name
            activity.class_name = obj.class_name
            classified = classify_object(activity, obj.is_class, obj.derivation)
            if operation == "ExecMethod":
                activity.class_name = shown_class
            if classified.kind not in ("method_parameters", "object"):
                return classified
        if item.error:
            activity.notes.append(f"object in the request not decoded: {item.error}")
        return classify_request(activity, request.operation, list(request.strings))
    if obj is None:
        activity = Activity(item.address, item.size, item.form, None, "-", "-")
        what = (
            "an object in a WBEMDATA packet" if item.form == "result" else "an MS-WMIO encoding unit header"
        )
        return _set(
            activity,
            "undecodable",
            Severity.INFO,
            Confidence.LOW,
            f"{what} that does not decode: {item.error}",
        )
    operation = "class" if obj.is_class else "instance"
    if item.form == "result":
        operation = f"result {operation}"
    activity = Activity(
        item.address,
        item.size,
        item.form,
        obj.namespace,
        obj.class_name,
        operation,
        obj.values(),
        detail=obj.to_dict(),
        notes=list(obj.notes),
    )
    return classify_object(activity, obj.is_class, obj.derivation)


def _reference_name(reference: str) -> str:
    match = re.search(r'(?i)\.Name\s*=\s*"((?:[^"\\]|\\.)*)"', reference)
    return match.group(1).replace('\\"', '"').replace("\\\\", "\\") if match else reference


#: The class of an object path, after an optional ``\\host\namespace:`` prefix (a host may hold dots).
_REFERENCE_CLASS = re.compile(r'^(?:[^"=]*:)?([A-Za-z_]\w*)\s*[.=]')


def _reference_class(reference: str) -> str:
    match = _REFERENCE_CLASS.match(reference.strip())
    return match.group(1).lower() if match else ""


def _parts(items: List[Activity], kind: str, key: Callable[[Activity], Any]) -> Dict[Any, Activity]:
    """Subscription parts of one kind by ``key``; a decoded object wins over a string of the same
    part."""
    parts = sorted((a for a in items if a.kind == kind), key=lambda a: a.form != "string")
    return {key(activity): activity for activity in parts}


def subscriptions(activities: Iterable[Activity]) -> List[Activity]:
    """One ``subscription`` row per binding whose filter and consumer were found too: decoded
    objects first; parts known only from strings (object paths, their objects gone) are joined the
    same way, one confidence step lower."""
    items = list(activities)
    filters = _parts(items, "subscription_filter", lambda a: _text(a.properties, "Name").lower())
    consumers = _parts(
        items, "subscription_consumer", lambda a: (a.class_name.lower(), _text(a.properties, "Name").lower())
    )
    bindings = sorted(
        (a for a in items if a.kind == "subscription_binding"), key=lambda a: (a.form == "string", a.address)
    )
    chains, seen = [], set()
    for binding in bindings:
        filter_name = _reference_name(_text(binding.properties, "Filter"))
        consumer_ref = _text(binding.properties, "Consumer")
        consumer_key = (_reference_class(consumer_ref), _reference_name(consumer_ref).lower())
        consumer = consumers.get(consumer_key)
        found_filter = filters.get(filter_name.lower())
        key = (filter_name.lower(), consumer_key)
        if key in seen or consumer is None or found_filter is None:
            continue
        seen.add(key)
        chains.append(_chain(binding, found_filter, consumer, filter_name, consumer_ref))
    return chains


def _chain(
    binding: Activity, found_filter: Activity, consumer: Activity, filter_name: str, consumer_ref: str
) -> Activity:
    query = _text(found_filter.properties, "Query")
    runs = consumer.class_name.lower() in CONSUMERS_THAT_RUN
    severity = Severity.CRITICAL if runs else Severity.LOW
    if consumer.severity <= Severity.INFO and found_filter.severity <= Severity.INFO:
        severity = Severity.INFO
    chain = Activity(
        binding.address,
        binding.size,
        "chain",
        binding.namespace or found_filter.namespace,
        "__FilterToConsumerBinding",
        "permanent subscription",
        {
            "Filter": filter_name,
            "Query": query,
            "Consumer": consumer_ref,
            **{
                k: v
                for k, v in consumer.properties.items()
                if k not in ("Name", "CreatorSID", "Text", "__PATH")
            },
        },
    )
    chain.detail = {
        "filter_address": found_filter.address,
        "consumer_address": consumer.address,
        "binding_address": binding.address,
    }
    how = f"runs {_payload(consumer)}" if runs else f"feeds {consumer.class_name}"
    reason = f"permanent event subscription: filter '{filter_name}' ({describe_filter(query)}) {how}"
    from_strings = [
        what
        for what, part in (("filter", found_filter), ("consumer", consumer), ("binding", binding))
        if part.form == "string"
    ]
    confidence = Confidence.HIGH
    if from_strings:
        # object paths name the parts but carry none of their properties: one step lower
        confidence = Confidence.MEDIUM
        chain.detail["joined_from_strings"] = from_strings
        known = " and ".join(from_strings)
        reason = f"joined from strings (the {known} known only by object path): {reason}"
    return _set(chain, "subscription", severity, confidence, reason)


def classify(items: Iterable[Carved]) -> List[Activity]:
    """Every carved item classified, followed by the subscription chains joined from them (from
    decoded objects and requests, and from strings)."""
    classified = (activity_of(item) for item in items)
    activities = sorted((item for item in classified if item is not None), key=lambda item: item.address)
    return activities + subscriptions(activities)
