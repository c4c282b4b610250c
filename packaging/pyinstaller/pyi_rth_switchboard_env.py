"""PyInstaller runtime hook: child processes get the user's environment, not the bootloader's.

On Linux the bootloader prepends the bundle's `_internal/` to LD_LIBRARY_PATH (saving the user's value
in LD_LIBRARY_PATH_ORIG) and re-executes itself so that the loader sees it; it also sets `_PYI_*`
bookkeeping variables. Everything the helper starts would inherit them: delegated helpers
(docker-credential-pass, ...), exec routes, AWS `credential_process`, gcloud and az, which would then
load our bundled libssl, libcrypto, libz, ... instead of their own (the PyInstaller manual's "LD_LIBRARY_PATH
/ LIBPATH considerations"), and another copy of this executable would take itself for the re-executed
child. The dynamic loader read LD_LIBRARY_PATH when this process started, so restoring it now changes
nothing here. AIX's LIBPATH gets the same treatment.
"""


def _pyi_rthook() -> None:
    # Runtime hooks run in __main__'s namespace: everything stays inside this function.
    import os
    import sys

    for name in ("LD_LIBRARY_PATH", "LIBPATH"):
        original = os.environ.pop(name + "_ORIG", None)
        if original is not None:
            os.environ[name] = original
        elif os.environ.get(name) == sys._MEIPASS:  # type: ignore[attr-defined]  # the bootloader's alone
            del os.environ[name]
    for name in [key for key in os.environ if key.startswith("_PYI_")]:
        del os.environ[name]


_pyi_rthook()
del _pyi_rthook
