"""PyInstaller runtime hook: TLS verification that works on Linux distributions other than the build's.

The frozen build carries the build machine's libssl/libcrypto, whose compiled-in default CA locations
(OPENSSLDIR: `/usr/lib/ssl/cert.pem` and `/usr/lib/ssl/certs` on Debian) need not exist on the machine
that runs it (Fedora, RHEL, Arch, SUSE keep theirs elsewhere). urllib, which the ACR backend uses, trusts
only those defaults, so it would reject every certificate there. botocore (ECR) and requests (google-auth)
are not affected: they verify against certifi's bundle, which the build carries.

So, only when the user set neither SSL_CERT_FILE nor SSL_CERT_DIR and NONE of the build OpenSSL's defaults
exists, SSL_CERT_FILE is set to the first system CA bundle found at a well-known place (Go's list: the
system store, so a corporate CA added to it is still trusted), else to the bundled certifi file. On the
build's own distribution nothing changes. Child processes (delegate and exec backends) inherit the variable,
which names the system's own bundle. The cost is a few stat() calls and no import.

`switchboard.spec` copies this file into its work folder with `openssl_defaults` filled in from
`ssl.get_default_verify_paths()` of the interpreter being frozen; as it stands (empty) it does nothing.
"""


def _pyi_rthook() -> None:
    # Runtime hooks run in __main__'s namespace: everything stays inside this function.
    import os
    import sys

    openssl_defaults: tuple[str, ...] = ()  # filled in by switchboard.spec
    system_bundles = (
        "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch (p11-kit), Alpine
        "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL, CentOS, Amazon Linux
        "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
        "/etc/pki/tls/cacert.pem",  # OpenELEC
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 7+, CentOS 7+
        "/etc/ssl/cert.pem",  # Alpine, macOS, the BSDs
    )
    if sys.platform == "win32" or not openssl_defaults:  # Windows: Python also reads the system store
        return
    if "SSL_CERT_FILE" in os.environ or "SSL_CERT_DIR" in os.environ:  # the user's choice, even an odd one
        return
    if any(os.path.exists(path) for path in openssl_defaults):
        return
    bundled = os.path.join(sys._MEIPASS, "certifi", "cacert.pem")  # type: ignore[attr-defined]
    for candidate in (*system_bundles, bundled):
        if os.path.isfile(candidate):
            os.environ["SSL_CERT_FILE"] = candidate
            return


_pyi_rthook()
del _pyi_rthook
