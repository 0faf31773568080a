"""``wmi-forensics triage PATH... --out DIR``: many dumps on a Dask cluster (see :mod:`..triage.batch`)."""

from __future__ import annotations

import argparse
import sys

from ..engine.findings import Severity
from ..triage.batch import ClusterError, run_batch
from ..triage.dumps import expand_inputs
from . import EXIT_BAD_INPUT, EXIT_CLEAN, EXIT_FINDINGS, plugin_options


def run_triage(args: argparse.Namespace) -> int:
    if not expand_inputs(args.inputs):
        sys.stderr.write("wmi-forensics: error: no dump found in " + " ".join(args.inputs) + "\n")
        return EXIT_BAD_INPUT
    try:
        result = run_batch(
            args.inputs,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            connect_timeout=args.connect_timeout,
            plugins=args.plugins,
            options=plugin_options(args),
            symbol_dirs=args.symbol_dirs,
            offline=not args.online,
            progress=not args.quiet,
        )
    except ClusterError as error:
        sys.stderr.write(f"wmi-forensics: error: {error}\n")
        return EXIT_BAD_INPUT
    print(
        f"{len(result.dumps)} dumps ({result.ran} triaged now, {result.skipped} already done), "
        f"{len(result.findings)} findings, {result.errors} errors; see {args.out / 'report.html'}"
    )
    if result.worst_rank() >= int(Severity.parse(args.fail_on)):
        return EXIT_FINDINGS
    return EXIT_BAD_INPUT if result.errors else EXIT_CLEAN
