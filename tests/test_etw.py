"""ETW reader, plugins and tamper checks on synthetic kernel memory for builds 7601 to 22000.

The memory and its manifest come from ``fixtures/etw`` (written from the ISFs without the reader);
every value the reader reports is compared with what the builder says it wrote.
"""

from __future__ import annotations

import io
import json
import lzma
from collections import Counter
from csv import DictReader
from pathlib import Path

import pytest
from volatility3.framework import contexts

from fixtures.etw import BUILDS, SCENARIOS, EtwManifest, build_etw_memory, load_kernel, scenario_applies
from fixtures.winimage import build_image
from tests.conftest import EXAMPLE_DUMP, ISF_DIR, run_vol, vol_json
from wmiforensics.errors import InputError
from wmiforensics.etw.checks import check_all
from wmiforensics.etw.reader import EtwReader

CASES = [(build, name) for build in BUILDS for name in sorted(SCENARIOS) if scenario_applies(build, name)]
_TABLES: dict = {}


def read(build: int, scenario: str):
    memory = build_etw_memory(build, scenario)
    context = contexts.Context()
    name = load_kernel(context, build, memory, validate=False)
    reader = EtwReader(context, name)
    return memory.manifest, reader, reader.silos()


@pytest.mark.parametrize(("build", "scenario"), CASES, ids=[f"{b}-{s}" for b, s in CASES])
def test_tamper_checks_report_exactly_what_was_planted(build, scenario):
    manifest, reader, silos = read(build, scenario)
    found = Counter((finding.kind, finding.start) for finding in check_all(reader, silos))
    planted = Counter()
    for item in manifest.tamperings:
        address = item.address
        if item.kind == "session_missing":
            address = manifest.silo(item.silo).state or 0
        if item.kind == "slot_not_kernel_address":
            address = item.value
        planted[(item.kind, address)] += 1
    assert found == planted


@pytest.mark.parametrize("build", BUILDS)
def test_loggers_match_the_manifest(build):
    manifest, _, silos = read(build, "clean")
    by_silo = {silo.label.split(" ")[0]: silo for silo in silos}
    for record in manifest.loggers:
        silo = by_silo["host" if record.silo == "host" else "server"]
        logger = next(item for item in silo.loggers if item.slot == record.slot)
        fields = logger.fields
        assert logger.address == record.address
        assert (fields["LoggerId"], fields["LoggerName"], fields["LogFileName"]) == (
            record.logger_id,
            record.name,
            record.log_file,
        )
        assert fields["InstanceGuid"] == record.instance_guid.strip("{}").upper()
        assert (fields["LoggerMode"], fields["BufferSize"], fields["EventsLost"]) == (
            record.logger_mode,
            record.buffer_size,
            record.events_lost,
        )
        assert (fields["MinimumBuffers"], fields["MaximumBuffers"]) == (
            record.minimum_buffers,
            record.maximum_buffers,
        )
        assert (fields["GetCpuClock"], fields["StartTime"], fields["LoggerThread"]) == (
            record.get_cpu_clock,
            record.start_time,
            record.logger_thread,
        )
    host = manifest.silo("host")
    assert sum(len(silo.loggers) for silo in silos) == len(manifest.loggers)
    assert by_silo["host"].max_loggers == host.max_loggers
    if host.state:
        assert by_silo["host"].address == host.state


@pytest.mark.parametrize("build", BUILDS)
def test_providers_match_the_manifest(build):
    manifest, _, silos = read(build, "clean")
    host = silos[0]
    found = {(provider.guid, provider.bucket, provider.list_name): provider for provider in host.providers}
    expected = [record for record in manifest.providers if record.silo == "host"]
    assert len(found) == len(expected)
    for record in expected:
        list_name = ("trace", "notification", "group")[record.list_index]
        provider = found[(record.guid.strip("{}").upper(), record.bucket, list_name)]
        assert provider.guid_entry == record.guid_entry
        assert [r.address for r in provider.registrations] == [r.address for r in record.registrations]
        owners = {r.process_name for r in record.registrations if r.kind == "user"}
        assert {r.owner.split(" (")[0] for r in provider.registrations if not r.kernel} == owners
        assert provider.is_enabled == bool(record.provider_enable_info.is_enabled)
        assert sorted(provider.enabled_by) == sorted(e.logger_id for e in record.enable_info if e.is_enabled)
    names = {provider.name for provider in host.providers}
    assert "Microsoft-Windows-WMI-Activity" in names
    if build >= 17763:
        assert "Microsoft-Windows-Threat-Intelligence" in names


def test_silo_fields_follow_the_isf():
    _, _, silos = read(19041, "clean")
    fields = {name: value for _, name, _, value in silos[0].fields}
    assert fields["MaxLoggers"] == 64
    assert "EtwpSecurityProviderPID" in fields and "PartitionType" in fields
    assert silos[1].label.startswith("server silo (job 0x")


def test_build_without_etw_types_is_not_supported(tmp_path):
    source = next((ISF_DIR / "windows" / "ntkrnlmp.pdb").glob("606FF669*"))
    with lzma.open(source) as compressed:
        document = json.loads(compressed.read())
    for symbol in ("EtwpHostSiloState", "PspHostSiloGlobals", "WmipLoggerContext", "EtwpGuidHashTable"):
        document["symbols"].pop(symbol, None)
    document["user_types"].pop("_ETW_SILODRIVERSTATE")
    trimmed = tmp_path / "trimmed.json.xz"
    trimmed.write_bytes(lzma.compress(json.dumps(document).encode()))
    from volatility3.framework.symbols.windows import WindowsKernelIntermedSymbols

    memory = build_etw_memory(19041, "clean")
    context = contexts.Context()
    table = WindowsKernelIntermedSymbols(
        context, "trim", "trimmed", isf_url=Path(trimmed).as_uri(), validate=False
    )
    context.symbol_space.append(table)
    name = load_kernel(context, 19041, memory, symbol_table="trimmed", validate=False)
    with pytest.raises(InputError, match="not supported on this build"):
        EtwReader(context, name).silos()


@pytest.fixture(scope="module")
def tampered_image(tmp_path_factory):
    image = tmp_path_factory.mktemp("etw-image") / "image.raw"
    manifest = build_image(19041, out_path=image, etw="lab_tampered")
    return image, manifest


def test_plugins_on_a_full_image(tampered_image, symbol_cache):
    image, image_manifest = tampered_image
    manifest = EtwManifest.from_dict(image_manifest.etw)
    planted = sorted(item.kind for item in manifest.tamperings)
    rows = vol_json(image, "wmi.etwtamper", symbols=symbol_cache)
    assert sorted(row["Kind"] for row in rows) == planted
    ti = next(row for row in rows if row["Kind"] == "ti_provider_disabled")
    # lab_tampered also stopped DefenderAuditLogger, whose LoggerId the TI entry still lists.
    assert ti["Severity"] == "critical" and "LoggerId 8 (no longer running)" in ti["Reason"]
    loggers = vol_json(image, "wmi.etwloggers", symbols=symbol_cache)
    written = {(record.slot, record.name) for record in manifest.loggers if record.in_slot}
    assert {(row["Slot"], row["Name"]) for row in loggers} == written
    svchost = f"svchost.exe ({image_manifest.process('svchost.exe').pid})"
    consumed = {
        h.logger_id for h in image_manifest.process("svchost.exe").handles if h.type_name == "EtwConsumer"
    }
    assert consumed and {row["Slot"] for row in loggers if row["Consumers"] == svchost} == consumed
    providers = vol_json(image, "wmi.etwproviders", symbols=symbol_cache)
    wmi = [
        row for row in providers if row["Name"] == "Microsoft-Windows-WMI-Activity" and row["Silo"] == "host"
    ]
    assert wmi and wmi[0]["Enabled"] is True and "WmiPrvSE.exe" in wmi[0]["RegisteredBy"]
    silos = vol_json(image, "wmi.etwsilos", symbols=symbol_cache)
    assert {"host", *(row["Silo"] for row in silos if row["Silo"].startswith("server silo"))} == {
        row["Silo"] for row in silos
    }
    assert any(row["Field"] == "MaxLoggers" and row["Value"] == "64" for row in silos)
    csv = run_vol(image, "wmi.etwloggers", renderer="csv", symbols=symbol_cache)
    assert csv.returncode == 0
    assert len(list(DictReader(io.StringIO(csv.stdout)))) == len(loggers)


def test_clean_full_image_has_no_tampering(tmp_path, symbol_cache):
    image = tmp_path / "clean.raw"
    build_image(19041, out_path=image, etw="clean")
    assert vol_json(image, "wmi.etwtamper", symbols=symbol_cache) == []


def test_minidump_input_is_explained():
    result = run_vol(EXAMPLE_DUMP, "wmi.etwloggers")
    assert result.returncode == 2
    assert "a process minidump holds no kernel memory" in result.stderr
