"""``[hall] tls_cert_file``/``tls_key_file``: the hall serves HTTPS, with HSTS and Secure
cookies. A self-signed certificate made here by openssl; no daemon is needed to answer."""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.support.hall import HallProcess, free_port

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")]


def test_https_with_hsts(tmp_path: Path) -> None:
    cert, key = tmp_path / "hall.pem", tmp_path / "hall.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port = free_port()
    config = tmp_path / "gated.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[site]\nid = "t"\n[booth]\n'
                      f'id = "b"\n[hall]\nlisten = "127.0.0.1:{port}"\n'
                      f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n', encoding="utf-8")
    hall = HallProcess(config, tmp_path, port)
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    try:
        hall.start_tls(ctx)
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        conn.request("GET", "/display")
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        assert r.getheader("strict-transport-security") == "max-age=31536000"
        conn.close()
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            plain.request("GET", "/display")
            plain.getresponse().read()
    finally:
        hall.kill()
