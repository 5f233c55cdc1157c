"""fetch_data against a real loopback HTTP server (127.0.0.1, ephemeral port) and a local mirror."""

import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from optical.data.fetch import fetch_data
from optical.data.registry import load_file_registry
from optical.errors import OpticalError
from optical.storage import sha256_file


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves the server's directory, honouring ``Range: bytes=N-`` and logging requests."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        if header:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, mirror_dir):
    """A temp copy of the mirror's xquad/ folder served over loopback HTTP: (root, base_url, requests)."""
    root = tmp_path / "served"
    shutil.copytree(mirror_dir / "xquad", root / "xquad", ignore=shutil.ignore_patterns("*.png", "*.txt", "*.md"))
    handler = lambda *args, **kwargs: RangeHandler(*args, directory=str(root), **kwargs)  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


def expected(path: str):
    return next(entry for entry in load_file_registry() if entry.path == path)


def test_http_fetch_installs_verified_files_and_skips_present_ones(served, tmp_path):
    _, base_url, requests = served
    dest = tmp_path / "data"
    report = fetch_data(dest, base_url=base_url, only=["xquad"], progress=False)
    assert len(report.installed) == 12 and not report.already_present
    for path in report.installed:
        assert sha256_file(dest / path) == expected(path).sha256
    assert not list(dest.rglob("*.part"))
    requests.clear()
    again = fetch_data(dest, base_url=base_url + "/", only=["xquad"], progress=False)
    assert len(again.already_present) == 12 and not again.installed and requests == []


def test_tampered_and_truncated_files_are_refused(served, tmp_path):
    root, base_url, _ = served
    tampered = root / "xquad/xquad.de.json"
    data_before = tampered.read_bytes()
    data = bytearray(data_before)
    data[1000] ^= 1
    tampered.write_bytes(bytes(data))
    truncated = root / "xquad/xquad.zh.json"
    truncated.write_bytes(truncated.read_bytes()[:-10])
    dest = tmp_path / "data"
    with pytest.raises(OpticalError) as caught:
        fetch_data(dest, base_url=base_url, only=["xquad"], progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("xquad/xquad.de.json from ")
    assert f"sha256 {sha256_file(tampered)}, expected {expected('xquad/xquad.de.json').sha256}" in message
    assert "(and 1 more file(s) refused)" in message
    assert not (dest / "xquad/xquad.de.json").exists() and not (dest / "xquad/xquad.zh.json").exists()
    assert not list(dest.rglob("*.part"))  # a bad download is not kept for resuming
    assert (dest / "xquad/xquad.en.json").is_file()  # good files were installed
    tampered.write_bytes(data_before)  # once the server is fixed, only the truncated file is refused
    with pytest.raises(OpticalError, match=r"xquad/xquad.zh.json from .* refused: \d+ bytes, expected 808652"):
        fetch_data(dest, base_url=base_url, only=["xquad"], progress=False)


def test_partial_download_is_resumed_with_range(served, tmp_path, mirror_dir):
    _, base_url, requests = served
    dest = tmp_path / "data"
    original = (mirror_dir / "xquad/xquad.en.json").read_bytes()
    part = dest / "xquad/xquad.en.json.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(original[:100_000])
    report = fetch_data(dest, base_url=base_url, only=["xquad"], progress=False)
    assert report.resumed == ["xquad/xquad.en.json"]
    assert ("/xquad/xquad.en.json", "bytes=100000-") in requests
    assert (dest / "xquad/xquad.en.json").read_bytes() == original and not part.exists()


def test_corrupt_partial_download_is_refused_then_refetched(served, tmp_path):
    _, base_url, _ = served
    dest = tmp_path / "data"
    part = dest / "xquad/xquad.ar.json.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage" * 1000)
    with pytest.raises(OpticalError, match="xquad/xquad.ar.json from .* refused: sha256"):
        fetch_data(dest, base_url=base_url, only=["xquad"], progress=False)
    assert not part.exists() and not (dest / "xquad/xquad.ar.json").exists()
    report = fetch_data(dest, base_url=base_url, only=["xquad"], progress=False)
    assert report.installed == ["xquad/xquad.ar.json"] and len(report.already_present) == 11


def test_missing_file_on_server(served, tmp_path):
    root, base_url, _ = served
    (root / "xquad/xquad.th.json").unlink()
    with pytest.raises(OpticalError, match=r"xquad/xquad.th.json: download from .* failed \(HTTP 404"):
        fetch_data(tmp_path / "data", base_url=base_url, only=["xquad"], progress=False)


def test_local_mirror_copy_and_tampered_mirror(mirror_dir, tmp_path):
    dest = tmp_path / "data"
    report = fetch_data(dest, mirror=mirror_dir, only=["xquad-r"], progress=False)
    assert len(report.installed) == 11
    assert all(sha256_file(dest / p) == expected(p).sha256 for p in report.installed)
    bad_mirror = tmp_path / "mirror"
    shutil.copytree(mirror_dir / "xquad-r", bad_mirror / "xquad-r")
    (bad_mirror / "xquad-r/el.json").write_bytes(b"{}")
    fresh = tmp_path / "fresh"
    with pytest.raises(OpticalError, match=r"xquad-r/el.json from .* refused: 2 bytes, expected 2810127"):
        fetch_data(fresh, mirror=bad_mirror, only=["xquad-r"], progress=False)
    assert not (fresh / "xquad-r/el.json").exists() and (fresh / "xquad-r/en.json").is_file()
    assert [p.name for p in (fresh / "xquad-r").iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_fetch_argument_errors(tmp_path, mirror_dir):
    with pytest.raises(OpticalError, match="has no public origin.*--mirror DIR or --base-url URL"):
        fetch_data(tmp_path, only=["bitext"], progress=False)
    with pytest.raises(OpticalError, match="not both"):
        fetch_data(tmp_path, mirror=mirror_dir, base_url="http://127.0.0.1:1", progress=False)
    with pytest.raises(OpticalError, match="unknown data group wiki"):
        fetch_data(tmp_path, mirror=mirror_dir, only=["wiki"], progress=False)


def test_complete_data_dir_needs_no_origin(tmp_path, mirror_dir):
    dest = tmp_path / "data"
    fetch_data(dest, mirror=mirror_dir, only=["bitext"], progress=False)
    # The bitext has no public origin, but every file is already installed and verified: nothing to fetch.
    report = fetch_data(dest, only=["bitext"], progress=False)
    assert report.installed == [] and len(report.already_present) > 0


def test_fetch_verified_keeps_a_good_copy_replaces_an_altered_one_and_refuses_a_wrong_one(served, tmp_path):
    """What `optical model prepare` uses for the MT model's sdist: one verified file by URL."""
    import dataclasses

    from optical.data.fetch import fetch_verified

    _, base_url, requests = served
    entry = expected("xquad/xquad.el.json")
    target = tmp_path / "cache" / "xquad.el.json"
    url = f"{base_url}/{entry.path}"
    assert sha256_file(fetch_verified(entry, url, target, progress=False)) == entry.sha256
    requests.clear()
    fetch_verified(entry, url, target, progress=False)
    assert requests == []  # the verified copy is kept
    target.write_bytes(target.read_bytes()[:-1] + b"x")
    assert sha256_file(fetch_verified(entry, url, target, progress=False)) == entry.sha256 and requests
    target.unlink()
    wrong = dataclasses.replace(entry, sha256="0" * 64)
    with pytest.raises(OpticalError, match=r"refused: sha256 .*; or put the verified file at .*xquad.el.json$"):
        fetch_verified(wrong, url, target, progress=False)
    assert not target.exists() and not list(target.parent.glob("*.part"))
