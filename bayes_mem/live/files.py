"""Owner-only files and directories, read without trusting the file system (stdlib only).

- :func:`make_private_dirs` creates the missing directories of a path with mode 0700, whatever
  the umask, and never touches a directory that already exists (it may be shared: ``/tmp``).
- :func:`check_trusted` is the rule every registry path must pass to be read, as ssh applies
  to its own files: the right kind (a directory, or a regular file: a FIFO or a device is
  refused, never opened for blocking reads), owned by this process's effective user or by
  root, and not group- or world-writable.
- :func:`open_in` opens a name inside an already opened directory without following a
  symbolic link (``O_NOFOLLOW``, relative to the directory's descriptor, so no path is
  resolved twice) and non-blocking, then applies :func:`check_trusted`.
- :func:`read_limited` reads a descriptor whole, refusing before reading when its size is over a
  limit (and while reading, if it grows past it).

Every refusal raises :class:`TrustError` (a ``ValueError``) naming the path and what is wrong.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC | _NOFOLLOW | _NONBLOCK
FILE_FLAGS = os.O_RDONLY | _CLOEXEC | _NOFOLLOW | _NONBLOCK
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | _NOFOLLOW


class TrustError(ValueError):
    """A path that is not safe to read: wrong kind, foreign owner, writable by others, a link,
    or too large.

    Examples
    --------
    A ``ValueError``, so callers that refuse bad input refuse these too:

    >>> issubclass(TrustError, ValueError)
    True
    >>> print(TrustError("models/ACTIVE is a FIFO, not a regular file; refused"))
    models/ACTIVE is a FIFO, not a regular file; refused
    """


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISLNK, "a link"),
        (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):  # fmt: skip
        if test(mode):
            return name
    return "of unknown kind"


def check_trusted(st: os.stat_result, shown: object, *, directory: bool) -> None:
    """Refuse (``TrustError``) unless ``st`` is a directory (``directory``) or a regular file,
    owned by this process's effective user or root, and not group- or world-writable.

    Examples
    --------
    A file of ours with mode 0600 passes; made group-writable (0620) it is refused:

    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "key")
    >>> with open(path, "w") as f:
    ...     _ = f.write("secret")
    >>> os.chmod(path, 0o600)
    >>> check_trusted(os.stat(path), "key", directory=False)  # no exception: trusted
    >>> os.chmod(path, 0o620)
    >>> try:
    ...     check_trusted(os.stat(path), "key", directory=False)
    ... except TrustError as exc:
    ...     print(exc)
    key is group- or world-writable (mode 0620); refused (chmod go-w)
    >>> try:
    ...     check_trusted(os.stat(tmp.name), "tmp", directory=False)  # a directory
    ... except TrustError as exc:
    ...     print(exc)
    tmp is a directory, not a regular file; refused
    >>> tmp.cleanup()
    """
    ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not ok:
        want = "a directory" if directory else "a regular file"
        raise TrustError(f"{shown} is {_kind(st.st_mode)}, not {want}; refused")
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise TrustError(
            f"{shown} is owned by uid {st.st_uid}, neither this user (uid {me}) nor root; refused"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise TrustError(
            f"{shown} is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}); "
            "refused (chmod go-w)"
        )


def open_dir(path: str | Path, shown: object = None) -> int:
    """Open and check a directory named by a path the operator chose (links along it are
    followed: the registry may live behind one); the caller closes the descriptor.

    Examples
    --------
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fd = open_dir(tmp.name)  # a fresh temporary directory: ours, mode 0700
    >>> os.path.samestat(os.fstat(fd), os.stat(tmp.name))
    True
    >>> os.close(fd)
    >>> tmp.cleanup()
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        check_trusted(os.fstat(fd), shown or path, directory=True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_in(dir_fd: int, name: str, shown: object, *, directory: bool) -> int:
    """Open ``name`` inside the directory ``dir_fd`` without following a link and without
    blocking, and check it; the caller closes the descriptor. A missing name raises
    ``FileNotFoundError``.

    Examples
    --------
    A regular file opens; a symbolic link to it is refused:

    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with open(os.path.join(tmp.name, "ACTIVE"), "w") as f:
    ...     _ = f.write("3\\n")
    >>> os.symlink("ACTIVE", os.path.join(tmp.name, "LINK"))
    >>> dir_fd = open_dir(tmp.name)
    >>> fd = open_in(dir_fd, "ACTIVE", "ACTIVE", directory=False)
    >>> os.read(fd, 10)
    b'3\\n'
    >>> os.close(fd)
    >>> try:
    ...     open_in(dir_fd, "LINK", "LINK", directory=False)
    ... except TrustError as exc:
    ...     print(exc)
    LINK is a symbolic link; refused (the registry is read without following links)
    >>> os.close(dir_fd)
    >>> tmp.cleanup()
    """
    try:
        fd = os.open(name, DIR_FLAGS if directory else FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EOPNOTSUPP):
            st = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISLNK(st.st_mode):
                raise TrustError(
                    f"{shown} is a symbolic link; refused (the registry is read without "
                    "following links)"
                ) from None
            check_trusted(st, shown, directory=directory)
        raise
    try:
        check_trusted(os.fstat(fd), shown, directory=directory)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_limited(fd: int, shown: object, limit: int) -> bytes:
    """The whole content of ``fd``; refused when its size is over ``limit`` bytes, checked
    before reading.

    Examples
    --------
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "data")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"0123456789")  # 10 bytes
    >>> fd = os.open(path, os.O_RDONLY)
    >>> read_limited(fd, "data", 10)
    b'0123456789'
    >>> try:
    ...     read_limited(fd, "data", 5)
    ... except TrustError as exc:
    ...     print(exc)
    data is 10 bytes, over the limit of 5; refused
    >>> os.close(fd)
    >>> tmp.cleanup()
    """
    size = os.fstat(fd).st_size
    if size > limit:
        raise TrustError(f"{shown} is {size:,} bytes, over the limit of {limit:,}; refused")
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise TrustError(f"{shown} grew over the limit of {limit:,} bytes while read; refused")
    return b"".join(chunks)


def make_private_dirs(path: str | Path) -> list[Path]:
    """Create the missing directories of ``path`` (parents first), each with mode 0700 exactly
    whatever the umask; directories that exist are left as they are. Returns those created.

    Examples
    --------
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> created = make_private_dirs(os.path.join(tmp.name, "models", "prior_sets"))
    >>> [p.name for p in created], [oct(p.stat().st_mode & 0o777) for p in created]
    (['models', 'prior_sets'], ['0o700', '0o700'])
    >>> make_private_dirs(os.path.join(tmp.name, "models"))  # exists: nothing created
    []
    >>> tmp.cleanup()
    """
    path = Path(path)
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created = []
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:  # created meanwhile by someone else: not ours to chmod
            continue
        fd = os.open(d, DIR_FLAGS)
        try:
            os.fchmod(fd, DIR_MODE)
        finally:
            os.close(fd)
        created.append(d)
    return created


def ensure_dir_in(dir_fd: int, name: str, shown: object) -> int:
    """Open the directory ``name`` inside ``dir_fd``, creating it with mode 0700 (exactly) if
    missing; an existing one must pass :func:`check_trusted`. The caller closes the result.

    Examples
    --------
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dir_fd = open_dir(tmp.name)
    >>> fd = ensure_dir_in(dir_fd, "prior_sets", "prior_sets")  # created, mode 0700
    >>> oct(os.fstat(fd).st_mode & 0o777)
    '0o700'
    >>> os.close(fd)
    >>> os.close(ensure_dir_in(dir_fd, "prior_sets", "prior_sets"))  # exists: opened
    >>> os.close(dir_fd)
    >>> tmp.cleanup()
    """
    try:
        os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
    except FileExistsError:
        return open_in(dir_fd, name, shown, directory=True)
    fd = open_in(dir_fd, name, shown, directory=True)
    os.fchmod(fd, DIR_MODE)
    return fd


def write_new_file(dir_fd: int, name: str, data: bytes) -> None:
    """Create ``name`` in ``dir_fd`` (it must not exist; links are not followed) with mode 0600
    exactly, write ``data`` and flush it to disk.

    Examples
    --------
    A second write of the same name fails: files are never overwritten:

    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dir_fd = open_dir(tmp.name)
    >>> write_new_file(dir_fd, "ACTIVE", b"1\\n")
    >>> path = os.path.join(tmp.name, "ACTIVE")
    >>> Path(path).read_bytes(), oct(os.stat(path).st_mode & 0o777)
    (b'1\\n', '0o600')
    >>> try:
    ...     write_new_file(dir_fd, "ACTIVE", b"2\\n")
    ... except FileExistsError:
    ...     print("exists")
    exists
    >>> os.close(dir_fd)
    >>> tmp.cleanup()
    """
    fd = os.open(name, NEW_FILE_FLAGS, FILE_MODE, dir_fd=dir_fd)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
