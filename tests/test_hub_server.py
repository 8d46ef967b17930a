"""End-to-end checks of tests/hub_server.py with the real huggingface_hub client (offline, 127.0.0.1 only)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import constants, hf_hub_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:  # works whether or not tests/ is a package
    from tests.hub_server import FakeHub, configure_hf_hub_client
except ImportError:  # pragma: no cover
    from hub_server import FakeHub, configure_hf_hub_client

REPO = "forger-test/cyclegan"
SPACE = "davidpiscasio/unpaired-img2img"
SPACE_FILE = "checkpoints/horse2zebra_pretrained/latest_net_G.pth"


@pytest.fixture
def hub():
    with FakeHub() as server:
        yield server


@pytest.fixture
def hf_home(hub, monkeypatch, tmp_path) -> Path:
    home = tmp_path / "hf_home"
    configure_hf_hub_client(monkeypatch, hub.url, home)
    return home


def _resolve_path(repo_id: str, filename: str, revision: str = "main", prefix: str = "") -> str:
    return f"/{prefix}{repo_id}/resolve/{revision}/{filename}"


# ---------------------------------------------------------------------------- 1. download + offline cache
def test_download_then_offline_uses_cache(hub, hf_home, monkeypatch):
    data = b"generator-weights" * 100
    hub.add_file(REPO, "latest_net_G.pth", data)

    path = hf_hub_download(REPO, "latest_net_G.pth")
    assert Path(path).read_bytes() == data
    assert Path(path).is_relative_to(hf_home)  # fresh tmp cache, not ~/.cache
    commit = hub.commit_hash(REPO)
    assert Path(path).parent.name == commit
    blob = Path(path).resolve()
    assert blob.name == hashlib.sha256(data).hexdigest()  # ETag (sha256) names the blob
    resolve = _resolve_path(REPO, "latest_net_G.pth")
    assert hub.requests == [("HEAD", resolve), ("GET", resolve)]

    n = len(hub.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # run-time switch: constants.is_offline_mode()
    assert huggingface_hub.is_offline_mode()
    assert hf_hub_download(REPO, "latest_net_G.pth") == path
    assert hf_hub_download(REPO, "latest_net_G.pth", revision=commit) == path
    assert len(hub.requests) == n  # nothing reached the server

    # offline + not cached -> LocalEntryNotFoundError, still without any request
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "other.pth")
    assert len(hub.requests) == n

    # online again, local_files_only is the per-call equivalent
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert hf_hub_download(REPO, "latest_net_G.pth", local_files_only=True) == path
    assert len(hub.requests) == n


def test_second_online_call_only_heads(hub, hf_home):
    hub.add_file(REPO, "a.pth", b"aaa")
    p1 = hf_hub_download(REPO, "a.pth")
    hub.requests.clear()
    assert hf_hub_download(REPO, "a.pth") == p1
    assert hub.requests == [("HEAD", _resolve_path(REPO, "a.pth"))]


# ---------------------------------------------------------------------------- 2. revisions and typed errors
def test_pinned_revision(hub, hf_home):
    hub.add_file(REPO, "latest_net_G.pth", b"main-weights")
    hub.add_file(REPO, "latest_net_G.pth", b"v1-weights", revision="v1.0")

    p_v1 = hf_hub_download(REPO, "latest_net_G.pth", revision="v1.0")
    assert Path(p_v1).read_bytes() == b"v1-weights"
    p_main = hf_hub_download(REPO, "latest_net_G.pth")
    assert Path(p_main).read_bytes() == b"main-weights"
    assert p_v1 != p_main

    commit_v1 = hub.commit_hash(REPO, "v1.0")
    assert len(commit_v1) == 40 and commit_v1 != hub.commit_hash(REPO)
    assert (hf_home / "hub" / "models--forger-test--cyclegan" / "refs" / "v1.0").read_text() == commit_v1
    # pinning by commit hash: served from the cache without a request...
    n = len(hub.requests)
    assert hf_hub_download(REPO, "latest_net_G.pth", revision=commit_v1) == p_v1
    assert len(hub.requests) == n
    # ...and the server also resolves commit hashes when the cache is cold
    p_fresh = hf_hub_download(REPO, "latest_net_G.pth", revision=commit_v1, cache_dir=hf_home / "other_cache")
    assert Path(p_fresh).read_bytes() == b"v1-weights"
    assert ("HEAD", _resolve_path(REPO, "latest_net_G.pth", commit_v1)) in hub.requests

    # slash in a revision name is %-quoted by the client
    hub.add_file(REPO, "latest_net_G.pth", b"pr-weights", revision="refs/pr/1")
    p_pr = hf_hub_download(REPO, "latest_net_G.pth", revision="refs/pr/1")
    assert Path(p_pr).read_bytes() == b"pr-weights"


def test_missing_revision_file_repo(hub, hf_home):
    hub.add_file(REPO, "latest_net_G.pth", b"w")

    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "latest_net_G.pth", revision="does-not-exist")
    with pytest.raises(RemoteEntryNotFoundError) as exc_info:
        hf_hub_download(REPO, "missing.pth")
    assert isinstance(exc_info.value, EntryNotFoundError)
    assert exc_info.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError) as exc_info:
        hf_hub_download("nobody/nothing", "latest_net_G.pth")
    assert exc_info.value.response.status_code == 404
    # wrong repo_type is a different repo
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(REPO, "latest_net_G.pth", repo_type="dataset")
    # an existing but empty repo gives EntryNotFound
    hub.add_repo("forger-test/empty")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("forger-test/empty", "x.pth")


# ---------------------------------------------------------------------------- 3. tokens
def test_private_file_needs_token(hub, hf_home):
    hub.add_file(REPO, "private.pth", b"secret", private_token="hf_good")

    with pytest.raises(RepositoryNotFoundError) as exc_info:  # 401 + X-Error-Code: RepoNotFound
        hf_hub_download(REPO, "private.pth")
    assert exc_info.value.response.status_code == 401
    assert "authorization" not in hub.request_headers[-1]

    with pytest.raises(HfHubHTTPError) as exc_info:  # 401 "Invalid credentials in Authorization header"
        hf_hub_download(REPO, "private.pth", token="hf_bad")
    assert exc_info.value.response.status_code == 401
    assert not isinstance(exc_info.value, RepositoryNotFoundError)

    path = hf_hub_download(REPO, "private.pth", token="hf_good")
    assert Path(path).read_bytes() == b"secret"
    assert hub.request_headers[-1]["authorization"] == "Bearer hf_good"


def test_token_from_env_is_used(hub, hf_home, monkeypatch):
    hub.add_file(REPO, "private.pth", b"secret", private_token="hf_env")
    monkeypatch.setenv("HF_TOKEN", "hf_env")  # read by get_token() at call time
    assert Path(hf_hub_download(REPO, "private.pth")).read_bytes() == b"secret"


# ---------------------------------------------------------------------------- 4. spaces (and datasets)
def test_space_file(hub, hf_home):
    data = b"\x80\x02horse2zebra"
    hub.add_file(SPACE, SPACE_FILE, data, repo_type="space")
    path = hf_hub_download(SPACE, SPACE_FILE, repo_type="space")
    assert Path(path).read_bytes() == data
    assert ("GET", _resolve_path(SPACE, SPACE_FILE, prefix="spaces/")) in hub.requests
    assert "spaces--davidpiscasio--unpaired-img2img" in path
    # the same repo_id as a model does not exist
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(SPACE, SPACE_FILE)
    # subfolder= builds the same URL
    hub.requests.clear()
    p2 = hf_hub_download(
        SPACE, "latest_net_G.pth", subfolder="checkpoints/horse2zebra_pretrained", repo_type="space"
    )
    assert p2 == path


def test_dataset_file(hub, hf_home):
    hub.add_file("forger-test/data", "train/a.png", b"png", repo_type="dataset")
    path = hf_hub_download("forger-test/data", "train/a.png", repo_type="dataset")
    assert Path(path).read_bytes() == b"png"


# ---------------------------------------------------------------------------- 5. plain URLs
def test_plain_url_via_urllib(hub):
    data = b"plain-checkpoint" * 10
    hub.add_url("http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth", data)
    url = hub.url_for("/cyclegan/pretrained_models/horse2zebra.pth")
    assert url == f"{hub.url}/cyclegan/pretrained_models/horse2zebra.pth"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    with opener.open(url, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(data))
        assert resp.read() == data
    with opener.open(url + "?download=1", timeout=5) as resp:  # query string ignored
        assert resp.read() == data
    req = urllib.request.Request(url, headers={"Range": "bytes=5-9"})
    with opener.open(req, timeout=5) as resp:
        assert resp.status == 206 and resp.read() == data[5:10]
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        opener.open(hub.url_for("/cyclegan/pretrained_models/nope.pth"), timeout=5)
    assert exc_info.value.code == 404
    assert ("GET", "/cyclegan/pretrained_models/horse2zebra.pth") in hub.requests


def test_plain_url_via_torch_hub_style_client(hub, monkeypatch):
    """Forger may use torch.hub.download_url_to_file for plain URLs; it must work against the server too."""
    torch_hub = pytest.importorskip("torch.hub")
    for var in ("NO_PROXY", "no_proxy"):  # urllib honours *_proxy env vars
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    data = b"x" * 4096
    hub.add_url("/cyclegan/pretrained_models/monet2photo.pth", data)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        dst = Path(d) / "m.pth"
        torch_hub.download_url_to_file(hub.url_for("/cyclegan/pretrained_models/monet2photo.pth"), str(dst),
                                       progress=False)
        assert dst.read_bytes() == data


# ---------------------------------------------------------------------------- extras
def test_endpoint_argument_without_patching_endpoint(hub, tmp_path, monkeypatch):
    """hf_hub_download(endpoint=...) works even when constants.ENDPOINT is the real Hub."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.add_file(REPO, "e.pth", b"e")
    path = hf_hub_download(REPO, "e.pth", endpoint=hub.url, cache_dir=tmp_path / "cache", token=False)
    assert Path(path).read_bytes() == b"e"


def test_cdn_redirect_mode(tmp_path, monkeypatch):
    with FakeHub(cdn_redirect=True) as hub:
        configure_hf_hub_client(monkeypatch, hub.url, tmp_path / "hf_home")
        data = b"lfs-blob" * 50
        hub.add_file(REPO, "big.pth", data, private_token="hf_tok")
        path = hf_hub_download(REPO, "big.pth", token="hf_tok")
        assert Path(path).read_bytes() == data
        sha = hashlib.sha256(data).hexdigest()
        assert hub.requests == [("HEAD", _resolve_path(REPO, "big.pth")), ("GET", f"/_cdn/{sha}")]
        assert hub.request_headers[0]["authorization"] == "Bearer hf_tok"
        assert "authorization" not in hub.request_headers[1]  # client strips auth for the CDN origin


def test_model_info_and_snapshot_download(hub, hf_home):
    hub.add_file(REPO, "latest_net_G.pth", b"G")
    hub.add_file(REPO, "sub/dir/latest_net_D.pth", b"D")
    hub.add_file(REPO, "README.md", b"# hi")

    info = huggingface_hub.model_info(REPO)
    assert info.sha == hub.commit_hash(REPO)
    assert sorted(s.rfilename for s in info.siblings) == ["README.md", "latest_net_G.pth", "sub/dir/latest_net_D.pth"]
    tree = list(huggingface_hub.HfApi().list_repo_tree(REPO, recursive=True))
    assert {t.path for t in tree} == {"README.md", "latest_net_G.pth", "sub", "sub/dir", "sub/dir/latest_net_D.pth"}
    top = list(huggingface_hub.HfApi().list_repo_tree(REPO))
    assert {t.path for t in top} == {"README.md", "latest_net_G.pth", "sub"}

    folder = Path(huggingface_hub.snapshot_download(REPO, allow_patterns=["*.pth"]))
    assert folder.name == hub.commit_hash(REPO)
    assert (folder / "latest_net_G.pth").read_bytes() == b"G"
    assert (folder / "sub/dir/latest_net_D.pth").read_bytes() == b"D"
    assert not (folder / "README.md").exists()

    with pytest.raises(RepositoryNotFoundError):
        huggingface_hub.model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        huggingface_hub.model_info(REPO, revision="nope")
    hub.add_file(SPACE, SPACE_FILE, b"s", repo_type="space")
    assert huggingface_hub.HfApi().repo_info(SPACE, repo_type="space").sha == hub.commit_hash(SPACE, repo_type="space")


def test_private_repo_api(hub, hf_home):
    hub.add_file("forger-test/private", "w.pth", b"p", private_token="hf_p")
    with pytest.raises(RepositoryNotFoundError):
        huggingface_hub.model_info("forger-test/private")
    assert huggingface_hub.model_info("forger-test/private", token="hf_p").private is True


def test_server_lifecycle():
    hub = FakeHub()
    with pytest.raises(RuntimeError):
        hub.url
    hub.start()
    url = hub.url
    assert url.startswith("http://127.0.0.1:")
    hub.add_url("/x", b"1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert opener.open(url + "/x", timeout=5).read() == b"1"
    hub.stop()
    hub.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        opener.open(url + "/x", timeout=2)
    # API JSON is valid
    with FakeHub() as hub2:
        hub2.add_file("a/b", "f", b"1")
        body = json.loads(opener.open(hub2.url + "/api/models/a/b", timeout=5).read())
        assert body["sha"] == hub2.commit_hash("a/b") and body["siblings"] == [{"rfilename": "f"}]


# ---------------------------------------------------------------------------- 6. the write API
def test_create_repo_upload_folder_then_download_back(hub, hf_home, tmp_path):
    api = huggingface_hub.HfApi(token="hf_writer")
    folder = tmp_path / "upload"
    (folder / "sub").mkdir(parents=True)
    files = {"model.safetensors": bytes(range(256)) * 40, "config.json": b'{"a": 1}\n',
             "README.md": b"---\nlicense: mit\n---\n# card\n", "sub/notes.txt": b"", "sub/x.bin": b"\x00\xff" * 7}
    for name, data in files.items():
        (folder / name).write_bytes(data)

    url = api.create_repo("me/weights", exist_ok=True)
    assert url == f"{hub.url}/me/weights" and url.repo_id == "me/weights"
    assert api.create_repo("me/weights", exist_ok=True) == url  # 409, accepted
    with pytest.raises(HfHubHTTPError) as exc_info:
        api.create_repo("me/weights")
    assert exc_info.value.response.status_code == 409
    empty_commit = hub.commit_hash("me/weights")

    info = api.upload_folder(repo_id="me/weights", folder_path=folder, commit_message="first")
    assert ("POST", "/api/models/me/weights/preupload/main") in hub.requests
    assert ("POST", "/api/models/me/weights/commit/main") in hub.requests
    assert not any("/info/lfs/" in p for _, p in hub.requests)  # every file is "regular"
    assert hub.commits[-1]["summary"] == "first" and hub.commits[-1]["files"] == sorted(files)
    assert info.oid == hub.commit_hash("me/weights") != empty_commit  # a commit makes a new revision
    for name, data in files.items():
        assert Path(hf_hub_download("me/weights", name)).read_bytes() == data, name

    api.upload_folder(repo_id="me/weights", folder_path=folder, commit_message="again")
    assert len(hub.commits) == 1  # unchanged files are skipped (preupload returned their oids): no commit
    (folder / "config.json").write_bytes(b'{"a": 2}\n')
    api.upload_folder(repo_id="me/weights", folder_path=folder, commit_message="second")
    assert hub.commits[-1]["files"] == ["config.json"]
    assert Path(hf_hub_download("me/weights", "config.json")).read_bytes() == b'{"a": 2}\n'
    api.delete_file("sub/x.bin", repo_id="me/weights")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("me/weights", "sub/x.bin")


def test_private_repo_belongs_to_the_token_that_created_it(hub, hf_home, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"secret weights")
    owner = huggingface_hub.HfApi(token="hf_owner")
    owner.create_repo("me/private", private=True)
    owner.upload_file(path_or_fileobj=tmp_path / "w.bin", path_in_repo="w.bin", repo_id="me/private")
    assert Path(hf_hub_download("me/private", "w.bin", token="hf_owner")).read_bytes() == b"secret weights"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("me/private", "w.bin", cache_dir=tmp_path / "anonymous")
    assert huggingface_hub.model_info("me/private", token="hf_owner").private is True
    with pytest.raises(RepositoryNotFoundError):  # someone else cannot write to it
        huggingface_hub.HfApi(token="hf_other").upload_file(path_or_fileobj=b"x", path_in_repo="x",
                                                            repo_id="me/private")
    with pytest.raises(HfHubHTTPError) as exc_info:  # writes need a token
        huggingface_hub.HfApi(token=False).create_repo("me/another")
    assert exc_info.value.response.status_code == 401
