"""Regenerate the Python gRPC code in clients/logsvc_wire/_proto/ from proto/logsvc/v1/*.proto.

grpc_tools writes absolute imports (``from logsvc.v1 import logsvc_pb2``) that would collide with
the ``logsvc`` server package, so the generated modules are flattened into one package and the
import is made relative. Run with ``make proto``; never edit the output by hand.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys
import tempfile

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "clients" / "logsvc_wire" / "_proto"


def main() -> int:
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        include = pathlib.Path(protoc.__file__).parent / "_proto"
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTO_DIR}",
                f"-I{include}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                *sources,
            ]
        )
        if rc != 0:
            return rc
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for generated in pathlib.Path(tmp).rglob("*_pb2*.py*"):
            text = generated.read_text()
            text = re.sub(r"^from logsvc\.v1 import ", "from . import ", text, flags=re.M)
            (OUT_DIR / generated.name).write_text(text)
        init = OUT_DIR / "__init__.py"
        init.write_text('"""Generated from proto/ by `make proto`; do not edit."""\n')
    shutil.rmtree(OUT_DIR / "__pycache__", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
