"""A process's handle table on a full image: object type, name and granted access of each handle.

Windows 8+ x64 layout (offsets and bit positions from the kernel's ISF):

- ``_EPROCESS.ObjectTable`` -> ``_HANDLE_TABLE.TableCode``: low two bits = levels (0: a page of
  ``_HANDLE_TABLE_ENTRY``; 1 and 2: pages of pointers to such pages). Entry ``i`` of leaf page ``n`` is
  handle ``4 * (n * entries_per_page + i)``.
- An entry's ``ObjectPointerBits`` << 4, made canonical, is the ``_OBJECT_HEADER``;
  ``GrantedAccessBits`` the access mask.
- ``_OBJECT_HEADER.TypeIndex`` XOR ``nt!ObHeaderCookie`` XOR bits 8..15 of the header address indexes
  ``nt!ObTypeIndexTable`` (10+; earlier builds store the index plainly).
- Names: ``_OBJECT_HEADER_NAME_INFO`` at ``header - ObpInfoMaskToOffset[InfoMask & 3]`` with its
  ``Directory`` chain; files are ``\\Device\\<device name>`` + ``FileName``; keys are the
  ``_CM_KEY_CONTROL_BLOCK`` chain of name blocks; an ``EtwConsumer`` names the logger it reads.

Everything read is bounded (pages, levels, chain depth, string length); what is lost goes to ``notes``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from volatility3.framework import exceptions

from ..engine.facts import HandleFact

MAX_HANDLE_PAGES = 4096
MAX_CHAIN = 64
MAX_TYPES = 256
NAME_INFO_BIT = 0x02
LEVEL_MASK = 3


@dataclass
class ObjectTypes:
    """The type map and header cookie of one kernel, read once per plugin run."""

    names: Dict[int, str]
    cookie: Optional[int]


def _canonical(address: int) -> int:
    return address | 0xFFFF_0000_0000_0000 if address & (1 << 47) else address


class HandleWalker:
    def __init__(self, context, module_name: str) -> None:
        self.context = context
        self.module = context.modules[module_name]
        self.layer = context.layers[self.module.layer_name]
        self.types = self._object_types()
        self.body_offset = self._offset("_OBJECT_HEADER", "Body")
        self.entry_size = self.module.get_type("_HANDLE_TABLE_ENTRY").size

    # -- primitives --------------------------------------------------------------------------------

    def _offset(self, type_name: str, member: str) -> int:
        return self.module.get_type(type_name).relative_child_offset(member)

    def _pointer(self, address: int) -> int:
        return int.from_bytes(self.layer.read(address, 8), "little")

    def _object(self, type_name: str, address: int):
        return self.module.object(object_type=type_name, offset=address, absolute=True)

    def _unicode(self, address: int, limit: int = 0x1000) -> str:
        length = int.from_bytes(self.layer.read(address, 2), "little")
        buffer = self._pointer(address + 8)
        if not length or not buffer:
            return ""
        raw = self.layer.read(buffer, min(length, limit) & ~1)
        return _printable(raw.decode("utf-16-le", "replace"))

    def _object_types(self) -> ObjectTypes:
        module = self.module
        names: Dict[int, str] = {}
        if module.has_symbol("ObTypeIndexTable"):
            table = module.offset + module.get_symbol("ObTypeIndexTable").address
            name_offset = self._offset("_OBJECT_TYPE", "Name")
            for index in range(MAX_TYPES):
                with contextlib.suppress(exceptions.InvalidAddressException):
                    pointer = self._pointer(table + 8 * index)
                    if index > 1 and pointer == 0:
                        break
                    if pointer and pointer != 0xBAD0B0B0:
                        names[index] = self._unicode(pointer + name_offset, 256)
        cookie = None
        if module.has_symbol("ObHeaderCookie"):
            with contextlib.suppress(exceptions.InvalidAddressException):
                cookie = self.layer.read(module.offset + module.get_symbol("ObHeaderCookie").address, 1)[0]
        return ObjectTypes(names, cookie)

    # -- the table ---------------------------------------------------------------------------------

    def leaf_pages(self, table_code: int, notes: List[str]) -> List[int]:
        """Leaf pages in handle order (level 1 and 2 tables are pages of page pointers)."""
        pages = [table_code & ~LEVEL_MASK]
        for _ in range(table_code & LEVEL_MASK):
            lower: List[int] = []
            for page in pages:
                for index in range(0x1000 // 8):
                    try:
                        pointer = self._pointer(page + 8 * index)
                    except exceptions.InvalidAddressException:
                        notes.append(f"handle table page 0x{page:x} cannot be read")
                        break
                    if pointer:
                        lower.append(pointer)
            pages = lower
            if len(pages) > MAX_HANDLE_PAGES:
                notes.append(f"handle table lists {len(pages)} pages; the first {MAX_HANDLE_PAGES} are read")
                pages = pages[:MAX_HANDLE_PAGES]
        return pages

    def handles(self, proc, notes: List[str]) -> List[HandleFact]:
        try:
            table = int(proc.ObjectTable)
        except exceptions.InvalidAddressException:
            return []
        if not table:
            return []
        table_code = self.table_code(proc, notes)
        if not table_code & ~LEVEL_MASK:
            return []  # no handle page allocated yet (or none readable)
        return [
            self._describe(handle, header, access)
            for handle, header, access in self.entries(table_code, notes)
        ]

    def entries(self, table_code: int, notes: List[str]) -> Iterator[Tuple[int, int, int]]:
        """(handle value, object header, granted access) of every used entry."""
        per_page = 0x1000 // self.entry_size
        for page_number, page in enumerate(self.leaf_pages(table_code, notes)):
            for index in range(per_page):
                address = page + index * self.entry_size
                try:
                    entry = self._object("_HANDLE_TABLE_ENTRY", address)
                    bits = int(entry.ObjectPointerBits)
                    access = int(entry.GrantedAccessBits)
                except exceptions.InvalidAddressException:
                    notes.append(f"handle table page 0x{page:x} cannot be read")
                    break
                if bits:
                    yield 4 * (page_number * per_page + index), _canonical(bits << 4), access

    def table_code(self, proc, notes: List[str]) -> int:
        try:
            table = int(proc.ObjectTable)
            return self._pointer(table + self._offset("_HANDLE_TABLE", "TableCode")) if table else 0
        except exceptions.InvalidAddressException:
            notes.append("handle table cannot be read")
            return 0

    def consumers(self, proc, notes: List[str]) -> Iterator[Tuple[int, Optional[int]]]:
        """(LoggerId, silo state or None) of each EtwConsumer handle the process holds."""
        code = self.table_code(proc, notes)
        if not code & ~LEVEL_MASK:
            return
        for _handle, header, _access in self.entries(code, notes):
            with contextlib.suppress(exceptions.InvalidAddressException):
                if self.type_name(header, self._object("_OBJECT_HEADER", header)) != "EtwConsumer":
                    continue
                consumer = self._object("_ETW_REALTIME_CONSUMER", header + self.body_offset)
                silo = None
                if consumer.has_member("SiloState"):
                    silo = self._pointer(consumer.SiloState.vol.offset) or None
                yield int(consumer.LoggerId), silo

    # -- objects -----------------------------------------------------------------------------------

    def type_name(self, header: int, obj) -> Optional[str]:
        """The object's type: TypeIndex, decoded with the cookie and header address on 10+."""
        index = int(obj.TypeIndex)
        if self.types.cookie is not None:
            index ^= self.types.cookie ^ ((header >> 8) & 0xFF)
        return self.types.names.get(index)

    def _describe(self, handle: int, header: int, access: int) -> HandleFact:
        type_name = name = None
        with contextlib.suppress(exceptions.InvalidAddressException):
            obj = self._object("_OBJECT_HEADER", header)
            type_name = self.type_name(header, obj)
            name = self._name(type_name, header, obj)
        return HandleFact(handle, type_name, name or None, access)

    def _name_info(self, header: int, obj) -> Optional[int]:
        mask = int(obj.InfoMask)
        if not mask & NAME_INFO_BIT or not self.module.has_symbol("ObpInfoMaskToOffset"):
            return None
        table = self.module.offset + self.module.get_symbol("ObpInfoMaskToOffset").address
        offset = self.layer.read(table + (mask & (NAME_INFO_BIT | (NAME_INFO_BIT - 1))), 1)[0]
        return header - offset if offset else None

    def _object_name(self, header: int, obj) -> str:
        """The name with its directory path (``\\BaseNamedObjects\\X``), or just the name."""
        info = self._name_info(header, obj)
        if info is None:
            return ""
        name_offset = self._offset("_OBJECT_HEADER_NAME_INFO", "Name")
        parts = [self._unicode(info + name_offset)]
        directory = self._pointer(info)
        seen = set()
        while directory and directory not in seen and len(seen) < MAX_CHAIN:
            seen.add(directory)
            parent_header = directory - self.body_offset
            parent_info = self._name_info(parent_header, self._object("_OBJECT_HEADER", parent_header))
            if parent_info is None:
                break
            part = self._unicode(parent_info + name_offset)
            if part in ("\\", ""):
                return "\\" + "\\".join(reversed(parts))
            parts.append(part)
            directory = self._pointer(parent_info)
        return "\\".join(reversed(parts))

    def _name(self, type_name: Optional[str], header: int, obj) -> str:
        body = header + self.body_offset
        if type_name == "File":
            device = self._pointer(body + self._offset("_FILE_OBJECT", "DeviceObject"))
            prefix = ""
            if device:
                device_header = device - self.body_offset
                device_name = self._object_name(device_header, self._object("_OBJECT_HEADER", device_header))
                prefix = "\\Device\\" + device_name.rpartition("\\")[2] if device_name else ""
            return prefix + self._unicode(body + self._offset("_FILE_OBJECT", "FileName"))
        if type_name == "Key":
            return self._key_name(self._pointer(body + self._offset("_CM_KEY_BODY", "KeyControlBlock")))
        if type_name == "EtwConsumer":
            logger = self._object("_ETW_REALTIME_CONSUMER", body)
            return f"LoggerId {int(logger.LoggerId)}"
        if type_name == "EtwRegistration":
            entry = self._pointer(body + self._offset("_ETW_REG_ENTRY", "GuidEntry"))
            raw = self.layer.read(entry + self._offset("_ETW_GUID_ENTRY", "Guid"), 16)
            return "{" + str(uuid.UUID(bytes_le=raw)).upper() + "}"
        if type_name == "Process":
            process = self._object("_EPROCESS", body)
            image = bytes(process.ImageFileName).split(b"\0")[0].decode("ascii", "replace")
            return f"{_printable(image)} ({int(process.UniqueProcessId)})"
        if type_name == "Thread":
            thread = self._object("_ETHREAD", body)
            return f"Tid {int(thread.Cid.UniqueThread)} Pid {int(thread.Cid.UniqueProcess)}"
        return self._object_name(header, obj)

    def _key_name(self, kcb: int) -> str:
        parts: List[str] = []
        seen = set()
        name_block = self._offset("_CM_KEY_CONTROL_BLOCK", "NameBlock")
        parent = self._offset("_CM_KEY_CONTROL_BLOCK", "ParentKcb")
        while kcb and kcb not in seen and len(seen) < MAX_CHAIN:
            seen.add(kcb)
            block = self._object("_CM_NAME_CONTROL_BLOCK", self._pointer(kcb + name_block))
            length = min(int(block.NameLength), 0x200)
            raw = self.layer.read(block.Name.vol.offset, length)
            text = raw.decode("latin-1") if int(block.Compressed) else raw.decode("utf-16-le", "replace")
            parts.append(_printable(text))
            kcb = self._pointer(kcb + parent)
        return "\\" + "\\".join(reversed(parts)) if parts else ""


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


_WALKERS: Dict[tuple, HandleWalker] = {}


def walker_for(context, module_name: str) -> HandleWalker:
    """One walker (type map, cookie) per kernel and context."""
    key = (id(context), module_name)
    if key not in _WALKERS:
        _WALKERS.clear()  # one image per run: keep no stale contexts alive
        _WALKERS[key] = HandleWalker(context, module_name)
    return _WALKERS[key]


def process_handles(context, module_name: str, proc, notes: List[str]) -> List[HandleFact]:
    """Handles of one ``_EPROCESS``; unreadable parts are noted, never raised."""
    try:
        return walker_for(context, module_name).handles(proc, notes)
    except (exceptions.InvalidAddressException, exceptions.SymbolError) as error:
        notes.append(f"handle table not read: {error}")
        return []
