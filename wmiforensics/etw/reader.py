"""Read the kernel's ETW state through a Volatility kernel module, on every build from 7 to 11.

Paths (offsets always from the ISF):

- Windows 10 1607+: ``nt!EtwpHostSiloState`` points to the host ``_ETW_SILODRIVERSTATE`` (also
  ``nt!PspHostSiloGlobals.EtwSiloState``). Server silos are the jobs on ``nt!PspJobList`` whose
  ``ServerSiloGlobals`` is set; each has its own ``_ESERVERSILO_GLOBALS.EtwSiloState``.
- Logger slots: the inline ``WmipLoggerContext[64]`` member (1607), else ``EtwpLoggerContext`` ->
  ``MaxLoggers`` pointers (1709+); on Windows 7/8.1 the global ``nt!WmipLoggerContext``. A free
  slot holds 1 and is never dereferenced.
- Providers: ``EtwpGuidHashTable[64]`` buckets (member, or the 7/8.1 global) with ``ListHead[3]``
  (trace, notification, group GUIDs) of ``_ETW_GUID_ENTRY``; registrations on ``RegListHead``.

Every count is bounded and every pointer is checked before it is followed.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

from volatility3.framework import constants as vol_constants
from volatility3.framework import exceptions, interfaces
from volatility3.framework.objects import utility

from ..errors import InputError
from . import knowledge

FREE_SLOT = 1
#: The kernel clamps MaxLoggers to 32..256; more slots than that are never read.
MAX_LOGGERS_READ = 256
MAX_LIST_ENTRIES = 4096
MAX_JOBS = 65_536
HASH_BUCKETS = 64
#: Fewer implausible logger contexts than this are tampering, not a symbol table of another patch level.
MISFIT_MINIMUM = 3
#: How far (bytes, either way) the logger array is looked for when the symbol table does not fit.
MISFIT_SEARCH = 0x40
MAX_NAME_CHARS = 256
#: Notes about damaged lists kept per silo (the rest are counted).
MAX_WALK_NOTES = 20


@dataclass
class Logger:
    slot: int
    slot_value: int
    address: int
    fields: Dict[str, object] = field(default_factory=dict)
    problem: Optional[str] = None
    #: Processes holding an EtwConsumer handle on this logger; None when handle tables were not read.
    consumers: Optional[List[str]] = None

    @property
    def name(self) -> str:
        return str(self.fields.get("LoggerName") or "")


@dataclass
class Registration:
    address: int
    owner: str
    kernel: bool


@dataclass
class Provider:
    guid: str
    guid_entry: int
    bucket: int
    list_name: str
    registrations: List[Registration]
    provider_enable: Dict[str, int]
    enabled_by: List[int]
    #: Address of ProviderEnableInfo: what a data-only attack zeroes.
    provider_enable_address: int = 0

    @property
    def name(self) -> str:
        return knowledge.provider_name(self.guid)

    @property
    def is_enabled(self) -> bool:
        return bool(self.provider_enable.get("IsEnabled"))


@dataclass
class SiloEtw:
    """One ``_ETW_SILODRIVERSTATE`` (or, on Windows 7/8.1, the globals that play its part)."""

    label: str
    address: Optional[int]
    fields: List[Tuple[int, str, str, object]]
    max_loggers: Optional[int]
    slots_source: str
    loggers: List[Logger]
    providers: List[Provider]
    notes: List[str] = field(default_factory=list)
    max_loggers_address: Optional[int] = None
    #: Why the symbol table does not fit this kernel (loggers and providers are then left out).
    layout_mismatch: Optional[str] = None

    @property
    def providers_damaged(self) -> bool:
        """The GUID hash table walk was cut or looped: provider findings rest on a damaged list."""
        return any(note.startswith("GUID list ") for note in self.notes)


class EtwReader:
    def __init__(self, context: interfaces.context.ContextInterface, kernel_module_name: str) -> None:
        self.context = context
        self.kernel = context.modules[kernel_module_name]
        self.table = self.kernel.symbol_table_name
        self.layer = context.layers[self.kernel.layer_name]
        self.pointer_size = self.kernel.get_type("pointer").size
        self.kernel_floor = 0xFFFF800000000000 if self.pointer_size == 8 else 0x80000000
        self._image_range: Optional[Tuple[int, int]] = None
        #: What list walks lost (cycles, garbage links, bounds), collected for the silo being read.
        self._walk_notes: List[str] = []

    # -- helpers ----------------------------------------------------------------------------------

    def has_symbol(self, name: str) -> bool:
        return self.kernel.has_symbol(name)

    def has_type(self, name: str) -> bool:
        return self.kernel.has_type(name)

    def symbol_address(self, name: str) -> int:
        return self.kernel.offset + self.kernel.get_symbol(name).address

    def read_pointer(self, address: int) -> Optional[int]:
        try:
            return int.from_bytes(self.layer.read(address, self.pointer_size), "little")
        except exceptions.InvalidAddressException:
            return None

    def is_kernel_address(self, value: int) -> bool:
        return value >= self.kernel_floor and value < (1 << (8 * self.pointer_size))

    def canonical(self, address: int) -> int:
        """``address`` as the kernel stores it: Volatility hands out 48-bit-masked offsets on x64."""
        if self.pointer_size == 8 and address & (1 << 47):
            return address | 0xFFFF_0000_0000_0000
        return address

    def readable(self, address: int, length: int = 1) -> bool:
        return self.layer.is_valid(address, length)

    def object(self, type_name: str, address: int):
        return self.kernel.object(object_type=type_name, offset=address, absolute=True)

    def member_offset(self, type_name: str, member: str) -> Optional[int]:
        with contextlib.suppress(KeyError, exceptions.SymbolError, AttributeError):
            return self.kernel.get_type(type_name).relative_child_offset(member)
        return None

    # -- silos ------------------------------------------------------------------------------------

    def require_support(self) -> None:
        modern = self.has_type("_ETW_SILODRIVERSTATE") and (
            self.has_symbol("EtwpHostSiloState") or self.has_symbol("PspHostSiloGlobals")
        )
        legacy = self.has_symbol("WmipLoggerContext") and self.has_symbol("EtwpGuidHashTable")
        if not (modern or legacy) or not self.has_type("_WMI_LOGGER_CONTEXT"):
            raise InputError(
                "ETW logger and provider structures are not supported on this build: its symbol table has "
                "neither EtwpHostSiloState/_ETW_SILODRIVERSTATE nor the WmipLoggerContext and "
                "EtwpGuidHashTable globals"
            )

    def silos(self) -> List[SiloEtw]:
        self.require_support()
        if not self.has_type("_ETW_SILODRIVERSTATE"):
            return [self._legacy_globals()]
        found: List[SiloEtw] = []
        host = self._host_state()
        servers = list(self._server_silo_states())
        job_notes = self._take_walk_notes()  # the job list's damage belongs to no silo: the host shows it
        if host is not None:
            found.append(self._silo("host", host))
        read = {host}
        for label, state in servers:
            if state in read:  # two jobs (or a looping job list) naming one state: read it once
                continue
            read.add(state)
            found.append(self._silo(label, state))
        if found:
            found[0].notes.extend(job_notes)
        return found

    def _host_state(self) -> Optional[int]:
        candidates = []
        if self.has_symbol("EtwpHostSiloState"):
            candidates.append(self.read_pointer(self.symbol_address("EtwpHostSiloState")))
        if self.has_symbol("PspHostSiloGlobals"):
            offset = self.member_offset("_ESERVERSILO_GLOBALS", "EtwSiloState")
            if offset is not None:
                candidates.append(self.read_pointer(self.symbol_address("PspHostSiloGlobals") + offset))
        for value in candidates:
            if value and self.is_kernel_address(value) and self.readable(value):
                return value
        if self.has_symbol("EtwpHostSiloState"):
            return self.symbol_address("EtwpHostSiloState")  # a build that keeps the state itself there
        return None

    def _server_silo_states(self) -> Iterator[Tuple[str, int]]:
        if not self.has_symbol("PspJobList") or not self.has_type("_EJOB"):
            return
        links = self.member_offset("_EJOB", "JobLinks")
        globals_offset = self.member_offset("_EJOB", "ServerSiloGlobals")
        state_offset = self.member_offset("_ESERVERSILO_GLOBALS", "EtwSiloState")
        if None in (links, globals_offset, state_offset):
            return
        for job in self._walk_list(self.symbol_address("PspJobList"), links, MAX_JOBS, "PspJobList"):
            globals_address = self.read_pointer(job + globals_offset)
            if not globals_address or not self.is_kernel_address(globals_address):
                continue
            state = self.read_pointer(globals_address + state_offset)
            if state and self.is_kernel_address(state) and self.readable(state):
                yield f"server silo (job 0x{job:x})", state

    def _walk_list(self, head: int, link_offset: int, limit: int, what: str = "list") -> Iterator[int]:
        """Containing-record addresses of a LIST_ENTRY chain, with loop and length bounds.

        A walk that ends anywhere but back at its head (a loop into the middle, a link outside the
        kernel or unreadable, more entries than ``limit``) leaves a note of what was lost.
        """
        seen = {head}
        cursor = self.read_pointer(head)
        count = 0
        while cursor and cursor != head:
            problem = None
            if cursor in seen:
                problem = f"loops back to 0x{cursor:x}"
            elif count >= limit:
                problem = f"has more than {limit} entries"
            elif not self.is_kernel_address(cursor):
                problem = f"links to 0x{cursor:x}, not a kernel address"
            if problem:
                self._walk_notes.append(
                    f"{what} at 0x{head:x} {problem} after {count} entries; the walk stopped"
                )
                return
            seen.add(cursor)
            count += 1
            yield cursor - link_offset
            cursor = self.read_pointer(cursor)
        if cursor is None:
            self._walk_notes.append(f"{what} at 0x{head:x}: a link after {count} entries cannot be read")

    def _take_walk_notes(self) -> List[str]:
        notes, self._walk_notes = self._walk_notes, []
        if len(notes) > MAX_WALK_NOTES:
            notes = notes[:MAX_WALK_NOTES] + [f"{len(notes) - MAX_WALK_NOTES} more damaged lists not shown"]
        return notes

    def _silo(self, label: str, address: int) -> SiloEtw:
        state = self.object("_ETW_SILODRIVERSTATE", address)
        fields = list(self._scalar_fields(state, address))
        max_loggers = None
        with contextlib.suppress(AttributeError, exceptions.InvalidAddressException):
            if state.has_member("MaxLoggers"):
                max_loggers = int(state.MaxLoggers)
        notes: List[str] = []
        if state.has_member("WmipLoggerContext"):
            base = address + state.vol.members["WmipLoggerContext"][0]
            count = state.WmipLoggerContext.vol.count
            source = f"inline WmipLoggerContext[{count}]"
        elif state.has_member("EtwpLoggerContext"):
            base = self.read_pointer(address + state.vol.members["EtwpLoggerContext"][0]) or 0
            count = max_loggers if max_loggers is not None else 64
            source = f"EtwpLoggerContext -> {count} slots"
            if not (0 < count <= MAX_LOGGERS_READ):
                notes.append(f"MaxLoggers {count} is out of range; 64 slots are read")
                count = 64
            if not base or not self.is_kernel_address(base):
                notes.append(f"EtwpLoggerContext 0x{base:x} is not a kernel address; no slot is read")
                count = 0
        else:
            base, count, source = 0, 0, "no logger slots in this layout"
        hash_offset = (
            state.vol.members["EtwpGuidHashTable"][0] if state.has_member("EtwpGuidHashTable") else None
        )
        providers = (
            self._providers(address + hash_offset, self.kernel.get_type("_ETW_HASH_BUCKET").size)
            if (hash_offset is not None and self.has_type("_ETW_HASH_BUCKET"))
            else []
        )
        max_address = (
            address + self.member_offset("_ETW_SILODRIVERSTATE", "MaxLoggers")
            if (max_loggers is not None)
            else None
        )
        silo = SiloEtw(
            label,
            address,
            fields,
            max_loggers,
            source,
            self._loggers(base, count),
            providers,
            notes + self._take_walk_notes(),
            max_address,
        )
        self._check_fit(silo, state)
        return silo

    def _legacy_globals(self) -> SiloEtw:
        """Windows 7/8.1: untyped globals (64 slot pointers; 64 buckets of three list heads + a lock)."""
        slots = self.symbol_address("WmipLoggerContext")
        list_entry = self.kernel.get_type("_LIST_ENTRY").size
        stride = 3 * list_entry + self.pointer_size
        providers = self._providers(self.symbol_address("EtwpGuidHashTable"), stride)
        silo = SiloEtw(
            "host (global state)",
            None,
            [],
            None,
            "global WmipLoggerContext[64]",
            self._loggers(slots, 64),
            providers,
            self._take_walk_notes(),
        )
        self._check_fit(silo, None)
        return silo

    # -- does the symbol table fit the kernel? ------------------------------------------------------

    def _check_fit(self, silo: SiloEtw, state) -> None:
        """Refuse to list loggers and providers read through an ISF of another patch level.

        A patch level can move ``_ETW_SILODRIVERSTATE`` members (17763/18362 RTM vs late patches: 0x18
        bytes); read through the wrong table, hash-bucket heads pass for logger slots. Real contexts sit
        in the slot of their own LoggerId and carry a readable name; real providers hash to their bucket.
        Both failing, or slots that hold plausible contexts a few bytes off, name a mismatch; damage of
        one kind alone is left to the tamper checks (an attacker can overwrite many slots).
        """
        readable = [logger for logger in silo.loggers if not logger.problem]
        wrong = [logger for logger in readable if not _plausible_logger(logger)]
        misplaced = [p for p in silo.providers if p.bucket != _guid_bucket(p.guid)]
        bad_loggers = len(wrong) >= MISFIT_MINIMUM and len(wrong) > len(readable) - len(wrong)
        bad_providers = len(misplaced) >= MISFIT_MINIMUM and 2 * len(misplaced) > len(silo.providers)
        if not (bad_loggers or bad_providers):
            return
        evidence = []
        if bad_loggers:
            evidence.append(
                f"{len(wrong)} of {len(readable)} logger contexts have a LoggerId other than their slot or "
                "no readable name"
            )
        if bad_providers:
            evidence.append(
                f"{len(misplaced)} of {len(silo.providers)} providers sit in a bucket their GUID "
                "does not hash to"
            )
        shift = self._find_logger_array_shift(silo, state)
        if not shift and not (bad_loggers and bad_providers):
            return  # one kind of damage, no layout that explains it: tampering, which the checks report
        where = (
            f"; the logger array is found {abs(shift):#x} bytes {'after' if shift > 0 else 'before'} where "
            "the symbol table puts it, as members move between patch levels"
            if shift
            else ""
        )
        silo.layout_mismatch = (
            f"the symbol table {self._table_identity()} does not fit this kernel ({self._build_lab()}): "
            f"{' and '.join(evidence)}{where}. It probably comes from another patch level of the same "
            "build; loggers and providers of this silo are not listed. Use the ISF made from this "
            "kernel's own PDB (GUID and age)."
        )
        silo.notes.append(silo.layout_mismatch)
        silo.loggers, silo.providers = [], []

    def _find_logger_array_shift(self, silo: SiloEtw, state) -> int:
        """The member shift (bytes) at which the slots hold plausible contexts, or 0 if none does."""
        if silo.address is None:
            return 0
        pointer = state.has_member("EtwpLoggerContext")
        member = "EtwpLoggerContext" if pointer else "WmipLoggerContext"
        if not state.has_member(member):
            return 0
        offset = state.vol.members[member][0]
        for step in range(8, MISFIT_SEARCH + 1, 8):
            for shift in (-step, step):
                if pointer:
                    base = self.read_pointer(silo.address + offset + shift) or 0
                    if not self.is_kernel_address(base):
                        continue
                else:
                    base = silo.address + offset + shift
                found = [logger for logger in self._loggers(base, 64) if not logger.problem]
                if found and all(_plausible_logger(logger) for logger in found):
                    return shift
        return 0

    def _table_identity(self) -> str:
        with contextlib.suppress(AttributeError, KeyError, TypeError):
            metadata = self.context.symbol_space[self.table].metadata
            if metadata.pdb_guid:
                return f"{metadata.pdb_guid}-{metadata.pdb_age}"
        return self.table

    def _build_lab(self) -> str:
        """The kernel's own NtBuildLab string: which build and branch it says it is."""
        if self.has_symbol("NtBuildLab"):
            with contextlib.suppress(exceptions.InvalidAddressException):
                raw = self.layer.read(self.symbol_address("NtBuildLab"), 80).split(b"\x00")[0]
                text = raw.decode("ascii", "replace")
                if text and text.isprintable():
                    return f"NtBuildLab {text!r}"
        return "its NtBuildLab is unreadable"

    def _scalar_fields(self, obj, address: int) -> Iterator[Tuple[int, str, str, object]]:
        """(offset, member, type, value) for every member a ``dt`` would print as one value."""
        for name, (offset, template) in sorted(obj.vol.members.items(), key=lambda item: item[1][0]):
            type_name = str(template.vol.get("type_name", "")).split(vol_constants.BANG)[-1]
            with contextlib.suppress(
                exceptions.InvalidAddressException, AttributeError, TypeError, ValueError
            ):
                member = getattr(obj, name)
                if type(member).__name__ == "Pointer":
                    raw = self.read_pointer(address + offset)  # unmasked, as the kernel stored it
                    value = f"0x{raw:x}" if raw is not None else None
                else:
                    value = _render(member)
                if value is not None:
                    yield offset, name, type_name, value

    # -- loggers ----------------------------------------------------------------------------------

    def _loggers(self, base: int, count: int) -> List[Logger]:
        loggers: List[Logger] = []
        for slot in range(count):
            value = self.read_pointer(base + slot * self.pointer_size)
            if value is None or value == 0 or value & FREE_SLOT:
                continue
            logger = Logger(slot, value, value)
            if not self.is_kernel_address(value):
                logger.problem = "not a kernel address"
            elif not self.readable(value, 8):
                logger.problem = "unreadable"
            else:
                logger.fields = self._logger_fields(value)
            loggers.append(logger)
        return loggers

    def _logger_fields(self, address: int) -> Dict[str, object]:
        context = self.object("_WMI_LOGGER_CONTEXT", address)
        fields: Dict[str, object] = {}
        for name in ("GetCpuClock", "LoggerThread"):
            # Raw reads: Volatility masks pointer values to the layer's address width.
            offset = self.member_offset("_WMI_LOGGER_CONTEXT", name)
            if offset is not None:
                value = self.read_pointer(address + offset)
                if value is not None:
                    fields[name] = value
        for name in (
            "LoggerId",
            "LoggerMode",
            "BufferSize",
            "MinimumBuffers",
            "MaximumBuffers",
            "NumberOfBuffers",
            "BuffersAvailable",
            "EventsLost",
            "BuffersWritten",
            "ClockType",
            "MaximumFileSize",
            "FlushTimer",
        ):
            with contextlib.suppress(AttributeError, exceptions.InvalidAddressException, TypeError):
                if context.has_member(name):
                    fields[name] = int(getattr(context, name))
        for name in ("LoggerName", "LogFileName"):
            with contextlib.suppress(AttributeError, exceptions.InvalidAddressException, TypeError):
                if context.has_member(name):
                    text = getattr(context, name).get_string()
                    raw = str(text) if isinstance(text, str) else ""
                    fields[name] = display_text(raw)
                    if name == "LoggerName":
                        fields["LoggerNameIsText"] = 0 < len(raw) <= MAX_NAME_CHARS and raw.isprintable()
        with contextlib.suppress(AttributeError, exceptions.InvalidAddressException):
            if context.has_member("InstanceGuid"):
                fields["InstanceGuid"] = _guid_text(self.layer.read(context.InstanceGuid.vol.offset, 16))
        with contextlib.suppress(AttributeError, exceptions.InvalidAddressException):
            if context.has_member("StartTime"):
                fields["StartTime"] = int(context.StartTime.QuadPart)
        fields["GetCpuClockIsPointer"] = self._clock_is_pointer()
        return fields

    def kernel_image_range(self) -> Tuple[int, int]:
        """[base, end) of ntoskrnl from its PE header, else bounded by its highest symbol."""
        if self._image_range is None:
            from ..engine import pe

            # canonical, as the raw pointers compared with this range are (GetCpuClock, LoggerThread)
            base = self.canonical(self.kernel.offset)
            try:
                header = pe.parse_headers(self.layer.read(self.kernel.offset, 0x1000), base)
            except exceptions.InvalidAddressException:
                header = None
            if header:
                self._image_range = (base, base + header.size_of_image)
            else:
                # No readable header (memory smear, paged out): the highest kernel symbol bounds the image.
                table = self.context.symbol_space[self.table]
                highest = max((table.get_symbol(name).address for name in table.symbols), default=0)
                self._image_range = (base, base + ((highest + 0x2000) & ~0xFFF))
        return self._image_range

    def in_kernel_image(self, address: int) -> bool:
        base, end = self.kernel_image_range()
        return base <= address < end

    def _clock_is_pointer(self) -> bool:
        with contextlib.suppress(KeyError, AttributeError):
            template = self.kernel.get_type("_WMI_LOGGER_CONTEXT").vol.members["GetCpuClock"][1]
            return "pointer" in str(template.vol.get("object_class", "")).lower() or (
                "pointer" in str(template.vol.get("type_name", "")).lower()
            )
        return False

    # -- providers --------------------------------------------------------------------------------

    def _providers(self, table: int, stride: int) -> List[Provider]:
        list_entry = self.kernel.get_type("_LIST_ENTRY").size
        links = self.member_offset("_ETW_GUID_ENTRY", "GuidList") or 0
        providers: List[Provider] = []
        listed = set()
        for bucket in range(HASH_BUCKETS):
            for list_index, list_name in enumerate(knowledge.GUID_LISTS):
                head = table + bucket * stride + list_index * list_entry
                what = f"GUID list {bucket}/{list_name}"
                for entry in self._walk_list(head, links, MAX_LIST_ENTRIES, what):
                    if entry in listed:  # a link into another bucket's chain: listed (and checked) once
                        self._walk_notes.append(f"{what} reaches _ETW_GUID_ENTRY 0x{entry:x} listed before")
                        break
                    listed.add(entry)
                    provider = self._provider(entry, bucket, list_name)
                    if provider is not None:
                        providers.append(provider)
        return providers

    def _provider(self, address: int, bucket: int, list_name: str) -> Optional[Provider]:
        try:
            entry = self.object("_ETW_GUID_ENTRY", address)
            guid = _guid_text(self.layer.read(entry.Guid.vol.offset, 16))
            enable = _enable_info(entry.ProviderEnableInfo)
            enabled_by = []
            for info in entry.EnableInfo:
                with contextlib.suppress(exceptions.InvalidAddressException):
                    if int(info.IsEnabled):
                        enabled_by.append(int(info.LoggerId))
        except exceptions.InvalidAddressException:
            return None
        return Provider(
            guid,
            address,
            bucket,
            list_name,
            self._registrations(address),
            enable,
            enabled_by,
            address + (self.member_offset("_ETW_GUID_ENTRY", "ProviderEnableInfo") or 0),
        )

    def _registrations(self, entry_address: int) -> List[Registration]:
        """Registrations on RegListHead (computed addresses: Volatility masks object offsets)."""
        found: List[Registration] = []
        head = entry_address + (self.member_offset("_ETW_GUID_ENTRY", "RegListHead") or 0)
        links = self.member_offset("_ETW_REG_ENTRY", "RegList") or 0
        what = f"RegListHead of _ETW_GUID_ENTRY 0x{entry_address:x}"
        for address in self._walk_list(head, links, MAX_LIST_ENTRIES, what):
            owner, kernel = "kernel", True
            with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
                reg = self.object("_ETW_REG_ENTRY", address)
                process_offset = self.member_offset("_ETW_REG_ENTRY", "Process")
                process = (
                    (self.read_pointer(address + process_offset) or 0) if process_offset is not None else 0
                )
                flags = int(reg.Flags) if reg.has_member("Flags") else 0
                user = bool(flags & 0x2) or (process and not flags & 0x1)
                if user and process and self.is_kernel_address(process):
                    eprocess = self.object("_EPROCESS", process)
                    name = display_text(utility.array_to_string(eprocess.ImageFileName))
                    owner, kernel = f"{name} ({int(eprocess.UniqueProcessId)})", False
            found.append(Registration(address, owner, kernel))
        return found


def _plausible_logger(logger: Logger) -> bool:
    return logger.fields.get("LoggerId") == logger.slot and bool(logger.fields.get("LoggerNameIsText"))


def display_text(text: str, limit: int = 4 * MAX_NAME_CHARS) -> str:
    """A string from kernel memory made safe to print: control characters escaped, length capped."""
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text[:limit]
    )
    return shown + ("..." if len(text) > limit else "")


def _guid_bucket(guid: str) -> int:
    """EtwpGuidHashTable index: XOR of the GUID's four little-endian dwords, low six bits."""
    try:
        raw = uuid.UUID(guid).bytes_le
    except ValueError:
        return -1
    words = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 16, 4)]
    return (words[0] ^ words[1] ^ words[2] ^ words[3]) % HASH_BUCKETS


def _enable_info(info) -> Dict[str, int]:
    values = {}
    for name in ("IsEnabled", "Level", "LoggerId", "EnableProperty", "MatchAnyKeyword", "MatchAllKeyword"):
        with contextlib.suppress(AttributeError, exceptions.InvalidAddressException):
            values[name] = int(getattr(info, name))
    return values


def _guid_text(raw: bytes) -> str:
    if len(raw) < 16:
        return "?"
    data1 = int.from_bytes(raw[0:4], "little")
    data2 = int.from_bytes(raw[4:6], "little")
    data3 = int.from_bytes(raw[6:8], "little")
    return f"{data1:08X}-{data2:04X}-{data3:04X}-{raw[8:10].hex().upper()}-{raw[10:16].hex().upper()}"


def _render(member) -> Optional[object]:
    """A member's value as a ``dt`` line shows it, or None for aggregates that need their own walk."""
    class_name = type(member).__name__
    if class_name in ("Pointer",):
        return f"0x{int(member):x}"
    if class_name in ("Integer", "BitField", "Enumeration", "Boolean", "Char"):
        return int(member)
    if member.vol.type_name.endswith("_GUID"):
        return (
            "{" + _guid_text(member._context.layers.read(member.vol.layer_name, member.vol.offset, 16)) + "}"
        )
    if member.vol.type_name.endswith("_LARGE_INTEGER"):
        return int(member.QuadPart)
    if class_name == "Array" and member.vol.count <= 16:
        with contextlib.suppress(TypeError, ValueError):
            return ", ".join(str(int(item)) for item in member)
    return None
