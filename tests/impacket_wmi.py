"""impacket, the independent MS-WMIO encoder: objects exactly as wmiexec/wmipersist build them.

impacket cannot write a class from nothing (it edits what a server sent), so each helper hands it a
class encoded by the fixture builder (written from the spec, sharing nothing with the reader), lets
impacket spawn and fill an instance or build a method's in-parameters, and returns impacket's bytes.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, List, Tuple

import pytest

from fixtures.labdump import wmiobjects as w

wmi = pytest.importorskip("impacket.dcerpc.v5.dcom.wmi")
dcomrt = pytest.importorskip("impacket.dcerpc.v5.dcomrt")


class RecordingServices:
    """Stands in for the remote IWbemServices: records each ExecMethod call impacket makes."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, Any]] = []

    def ExecMethod(self, path, method, lFlags=0, pCtx=None, pInParams=None, ppOutParams=None):  # noqa: N802
        self.calls.append((path, method, pInParams))


def class_object(block: bytes, services: Any = None):
    objref = w.objref_custom(w.encoding_unit(block))
    interface = dcomrt.INTERFACE(None, objref, None, target="lab")
    return wmi.IWbemClassObject(interface, services)


def in_params(class_block: bytes, method: str, *args: Any) -> bytes:
    """The OBJREF_CUSTOM impacket sends as pInParams of ``method`` (wmiexec: Win32_Process.Create)."""
    services = RecordingServices()
    getattr(class_object(class_block, services), method)(*args)
    return services.calls[0][2].getData()


def put_instance(spec: w.ClassSpec, values: Dict[str, Any], namespace: str = "ROOT\\subscription") -> bytes:
    """The OBJREF_CUSTOM impacket sends to PutInstance (wmipersist: SpawnInstance, set, marshalMe)."""
    instance = class_object(w.class_block(spec, namespace=namespace)).SpawnInstance()
    for name, value in values.items():
        setattr(instance, name, value)
    with contextlib.redirect_stdout(io.StringIO()):  # marshalMe prints every property
        return instance.marshalMe().getData()


def impacket_values(unit: bytes) -> Dict[str, Any]:
    """impacket's own reading of an encoding unit's instance values."""
    block = wmi.ENCODING_UNIT(unit)["ObjectBlock"]
    block.parseObject()
    return {name: prop["value"] for name, prop in block.ctCurrent["values"].items()}
