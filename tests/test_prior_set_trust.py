"""Whom the prior-set loader trusts: explicit modes whatever the umask, paths writable by others
or owned by another user refused (a set planted by another local user included), no link
followed, optional HMAC signing, and a manifest covering every file of a version."""

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import warnings
from pathlib import Path

import pytest

from bayes_mem.live.prior_set import (
    SIGNING_KEY_ENV,
    ActivePriorSet,
    PriorSetError,
    activate,
    load_active,
    load_prior_set,
    signing_key,
    verify_folder,
    verify_version,
    version_dir,
    write_prior_set,
)
from tests.test_prior_set import make, rehash, two_versions

OTHER_UID = 65534  # nobody


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def artifacts(folder):
    """What the nightly job's ``extra`` writes, with the process's default modes."""
    (folder / "run.json").write_text('{"schema": "run"}')
    (folder / "signal_counts.csv").write_text("signal,family,wins,trades\na,f,1,2\n")
    (folder / "winrate_fit.nc").write_bytes(b"\x89HDF\r\n" + bytes(range(256)))


def test_every_registry_path_gets_owner_only_modes_whatever_the_umask(tmp_path):
    models = tmp_path / "deep" / "models"
    with umask(0):
        write_prior_set(make(1), models, extra=artifacts)
        activate(models, 1)
    for d in (tmp_path / "deep", models, models / "prior_sets", version_dir(models, 1)):
        assert mode(d) == 0o700, d
    for f in (models / "ACTIVE", *version_dir(models, 1).iterdir()):
        assert mode(f) == 0o600, f
    assert sorted(p.name for p in version_dir(models, 1).iterdir()) == [
        "prior_set.json", "run.json", "signal_counts.csv", "winrate_fit.nc",
    ]  # fmt: skip
    # an existing directory is not the registry's to chmod: left as it was, but refused if unsafe
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(PriorSetError, match="world-writable"):
        write_prior_set(make(1), shared)
    assert mode(shared) == 0o1777 and not (shared / "prior_sets").exists()


REGISTRY_PATHS = {
    "models": lambda m: m,
    "prior_sets": lambda m: m / "prior_sets",
    "version": lambda m: version_dir(m, 2),
    "prior_set.json": lambda m: version_dir(m, 2) / "prior_set.json",
    "ACTIVE": lambda m: m / "ACTIVE",
}


@pytest.mark.parametrize("where", list(REGISTRY_PATHS))
@pytest.mark.parametrize("bits", [0o020, 0o002])
def test_group_or_world_writable_registry_paths_are_refused(tmp_path, where, bits):
    models = tmp_path / "models"
    trader = two_versions(models)
    (models / "ACTIVE").write_text("2\n")  # v2 would be loaded ...
    path = REGISTRY_PATHS[where](models)
    os.chmod(path, mode(path) | bits)  # ... but one of its paths is writable by others
    with pytest.raises(PriorSetError, match="group- or world-writable"):
        load_active(models)
    assert not trader.refresh() and trader.current.version == 1
    assert str(path) in trader.last_error and "writable" in trader.last_error
    os.chmod(path, mode(path) & ~bits)
    assert trader.refresh() and trader.current.version == 2


def _as_other_user(fn) -> None:
    """Run ``fn`` in a child process as uid/gid 65534 (nobody); needs root."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(OTHER_UID)
            os.setuid(OTHER_UID)
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_set_planted_by_another_local_user_is_refused():
    """The reviewer's attack: under a permissive registry, another local user wrote a rehashed
    set and pointed ACTIVE at it, and root's loader took it. As root the test really plants it
    as uid 65534 (a forked child that drops privileges); otherwise it gives the files away with
    ``os.chown`` and skips when that is not permitted."""
    root = Path(tempfile.mkdtemp(prefix="bm-planted-"))  # reachable by the other user
    try:
        os.chmod(root, 0o755)
        _planted(root / "models")
    finally:
        shutil.rmtree(root)


def _planted(models):
    trader = two_versions(models)
    good = version_dir(models, 2) / "prior_set.json"
    planted = json.loads(good.read_bytes())
    planted["prior_set"].update(version=3)
    planted["prior_set"]["families"]["momentum"]["mean"] = [0.99] * 100  # a tempting edit
    body = json.dumps(planted["prior_set"], sort_keys=True, separators=(",", ":")).encode()
    planted["sha256"] = hashlib.sha256(body).hexdigest()
    data = json.dumps(planted).encode()
    v3 = version_dir(models, 3)
    if os.geteuid() == 0:
        os.chmod(models, 0o777)  # what umask 000 used to give
        os.chmod(models / "prior_sets", 0o777)

        def plant():
            os.mkdir(v3, 0o755)
            (v3 / "prior_set.json").write_bytes(data)
            (models / ".ACTIVE.new").write_text("3\n")
            os.replace(models / ".ACTIVE.new", models / "ACTIVE")

        _as_other_user(plant)
        assert os.stat(v3 / "prior_set.json").st_uid == OTHER_UID
        assert os.stat(models / "ACTIVE").st_uid == OTHER_UID
        with pytest.raises(PriorSetError, match="world-writable"):
            load_active(models)
        assert not trader.refresh() and trader.current.version == 1
        os.chmod(models, 0o700)  # the registry's own modes back: the owner alone refuses it
        os.chmod(models / "prior_sets", 0o700)
    else:
        v3.mkdir()
        (v3 / "prior_set.json").write_bytes(data)
        (models / "ACTIVE").write_text("3\n")
        try:
            for p in (v3 / "prior_set.json", v3, models / "ACTIVE"):
                os.chown(p, OTHER_UID, -1)
        except PermissionError:
            pytest.skip("giving files to another user needs root (or CAP_CHOWN)")
    owned = f"owned by uid {OTHER_UID}, neither this user"
    for path in (models / "ACTIVE", v3, v3 / "prior_set.json"):  # in the loader's order
        with pytest.raises(PriorSetError, match=owned):
            load_active(models)
        assert not trader.refresh() and trader.current.version == 1
        assert str(path) in trader.last_error and owned in trader.last_error
        if path.name != "ACTIVE":
            with pytest.raises(PriorSetError, match=owned):
                activate(models, 3)
        if os.geteuid() != 0:
            return  # cannot take the file back
        os.chown(path, 0, 0)  # root-owned paths are trusted (as ssh does)
    assert trader.refresh() and trader.current.version == 3  # every path ours: it loads


def test_links_inside_the_registry_are_not_followed(tmp_path):
    models = tmp_path / "models"
    trader = two_versions(models)
    elsewhere = tmp_path / "elsewhere"
    write_prior_set(make(3), elsewhere)  # a valid set outside the registry
    (models / "prior_sets" / "v000003").symlink_to(version_dir(elsewhere, 3))
    with pytest.raises(PriorSetError, match="symbolic link"):
        load_prior_set(models, 3)
    with pytest.raises(PriorSetError, match="symbolic link"):
        activate(models, 3)
    (models / "ACTIVE").unlink()
    (models / "ACTIVE").symlink_to(elsewhere / "x")
    (elsewhere / "x").write_text("2\n")
    assert not trader.refresh() and "symbolic link" in trader.last_error
    (models / "ACTIVE").unlink()
    (models / "ACTIVE").write_text("2\n")
    f = version_dir(models, 2) / "prior_set.json"
    f.rename(elsewhere / "v2.json")
    f.symlink_to(elsewhere / "v2.json")
    assert not trader.refresh() and "symbolic link" in trader.last_error
    assert trader.current.version == 1
    # the models directory itself may be reached through a link the operator chose
    f.unlink()
    (elsewhere / "v2.json").rename(f)
    (tmp_path / "via-link").symlink_to(models)
    assert load_active(tmp_path / "via-link").version == 2


# ---------------------------------------------------------------------------- signing
@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = tmp_path / "signing.key"
    with umask(0o077):
        path.write_text(os.urandom(32).hex() + "\n")
    monkeypatch.setenv(SIGNING_KEY_ENV, str(path))
    return path


def test_with_a_key_sets_are_signed_and_unsigned_or_wrongly_signed_ones_refused(
    tmp_path, key_file, monkeypatch
):
    models = tmp_path / "models"
    write_prior_set(make(1), models)  # signed with the configured key
    raw = (version_dir(models, 1) / "prior_set.json").read_bytes()
    assert b'"hmac_sha256":"' in raw
    activate(models, 1)
    trader = ActivePriorSet(models)
    assert trader.refresh() and trader.current.version == 1
    other = os.urandom(32).hex().encode()
    write_prior_set(make(2), models, key=other)  # signed with another key
    monkeypatch.delenv(SIGNING_KEY_ENV)
    write_prior_set(make(3), models)  # unsigned: no key configured for this write
    assert b"hmac_sha256" not in (version_dir(models, 3) / "prior_set.json").read_bytes()
    assert load_prior_set(models, 3).version == 3  # without a key, unsigned sets load
    monkeypatch.setenv(SIGNING_KEY_ENV, str(key_file))
    for version, reason in ((2, "wrong signature"), (3, "is not signed")):
        with pytest.raises(PriorSetError, match=reason):
            activate(models, version)
        (models / "ACTIVE").write_text(f"{version}\n")
        assert not trader.refresh() and reason in trader.last_error
        assert trader.current.version == 1
    # a signed set edited and rehashed by someone without the key
    rehash(models, 1, lambda d: d["families"]["momentum"].update(mean=[0.9] * 100))
    (models / "ACTIVE").write_text("1\n")
    trader.current = None
    assert not trader.refresh() and "wrong signature" in trader.last_error
    assert signing_key() == key_file.read_bytes().strip()


@pytest.mark.parametrize(
    "problem, match",
    [("mode", "readable or writable by others"), ("short", "32 to 4096"),
     ("missing", "cannot read the signing key"), ("fifo", "FIFO")],
)  # fmt: skip
def test_a_bad_key_file_is_an_error_not_silently_unsigned(tmp_path, monkeypatch, problem, match):
    path = tmp_path / "key"
    if problem == "fifo":
        os.mkfifo(path, 0o600)
    elif problem != "missing":
        path.write_text("k" * (8 if problem == "short" else 64))
        os.chmod(path, 0o644 if problem == "mode" else 0o600)
    monkeypatch.setenv(SIGNING_KEY_ENV, str(path))
    with pytest.raises(PriorSetError, match=match):
        write_prior_set(make(1), tmp_path / "models")
    assert not (tmp_path / "models").exists()
    with pytest.raises(PriorSetError, match=match):
        ActivePriorSet(tmp_path / "models")  # a trader never runs unsigned by mistake


# ---------------------------------------------------------------------------- manifest
def test_the_manifest_covers_every_file_of_a_version(tmp_path):
    models = tmp_path / "models"
    write_prior_set(make(1), models, extra=artifacts)
    ps = load_prior_set(models, 1)
    folder = version_dir(models, 1)
    assert ps.files == {
        n: hashlib.sha256((folder / n).read_bytes()).hexdigest()
        for n in ("run.json", "signal_counts.csv", "winrate_fit.nc")
    }
    assert verify_version(models, 1) == {
        "prior_set.json": "hash ok", "run.json": "sha256 ok", "signal_counts.csv": "sha256 ok",
        "winrate_fit.nc": "sha256 ok",
    }  # fmt: skip
    run = (folder / "run.json").read_bytes()
    (folder / "run.json").write_bytes(run.replace(b"run", b"nur"))
    with pytest.raises(PriorSetError, match=r"run\.json: SHA-256 .* differs"):
        verify_version(models, 1)
    with pytest.raises(PriorSetError, match=r"run\.json"):
        verify_folder(folder, ["run.json"])  # what the report reads
    assert verify_folder(folder, ["signal_counts.csv"])[1] == {"signal_counts.csv": "sha256 ok"}
    (folder / "run.json").write_bytes(run)
    (folder / "extra.txt").write_text("x")
    with pytest.raises(PriorSetError, match=r"extra\.txt: not in the manifest"):
        verify_version(models, 1)
    (folder / "extra.txt").unlink()
    (folder / "winrate_fit.nc").unlink()
    with pytest.raises(PriorSetError, match=r"winrate_fit\.nc: missing"):
        verify_version(models, 1)
    # the live path reads only prior_set.json: a damaged fit does not stop trading
    activate(models, 1)
    assert load_active(models).version == 1


def test_an_artifact_that_is_not_a_plain_file_stops_the_publish(tmp_path):
    models = tmp_path / "models"

    def bad(folder):
        (folder / "sub").mkdir()

    with pytest.raises(PriorSetError, match="not a regular file"):
        write_prior_set(make(1), models, extra=bad)
    assert os.listdir(models / "prior_sets") == []  # nothing left behind
