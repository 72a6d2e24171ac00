"""Run inside each notebook kernel at start-up by ``make figures`` (``IPKernelApp.exec_files``).

Two things, both invisible to the notebook's own code:

1. When ``SDSL_READS_LOG`` names a file, an audit hook (PEP 578) appends one line per file the
   kernel opens (``R`` read, ``W`` written) and per folder it lists (``L``). The runner turns this log
   into the notebook's data inputs (:func:`tools.fingerprint.read_log`), so the build reruns a
   notebook when a file it read changes and not when some other file under ``data/`` does. The log is
   written with ``os.write`` on a descriptor opened once, so logging never triggers the hook itself.
2. DataFrames display through :func:`sdsl_lib.nbtools.use_readable_tables` (significant digits,
   blank for missing values, wide tables scroll), so the report's tables read well.

Everything is defined inside a function and deleted, so the notebook's namespace stays clean.
"""


def _sdsl_kernel_startup():
    import os
    import sys

    log = os.environ.get("SDSL_READS_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        root = os.environ.get("SDSL_READS_ROOT", "/")
        seen = set()
        write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def hook(event, args):
            if event == "open":
                path, mode, flags = args
                if path is None or isinstance(path, int):
                    return
                writes = (mode is not None and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & write_flags)
                kind = "W" if writes else "R"
            elif event in ("os.listdir", "os.scandir"):
                path, kind = args[0], "L"
                if path is None or isinstance(path, int):
                    path = "."
            else:
                return
            try:
                full = os.path.realpath(os.fsdecode(path))
            except (TypeError, ValueError):
                return
            if (kind, full) in seen or not full.startswith(root):
                return
            seen.add((kind, full))
            os.write(fd, f"{kind}\t{full}\n".encode(errors="replace"))

        sys.addaudithook(hook)

    from sdsl_lib import nbtools

    nbtools.use_readable_tables()


_sdsl_kernel_startup()
del _sdsl_kernel_startup
