"""Saving moto's in-memory AWS state to one file and restoring it, so local AWS survives a restart.

moto keeps every bucket, table, VPC and stack in plain Python objects, one ``BackendDict`` per
service (``moto.s3:s3_backends``: account → region → backend). The emulator server pickles all of
them that hold data *in one pickle*, so an object two services share — the VPC a CloudFormation
stack created is the same object in the EC2 backend — is still one object after a restore. Pickle
refuses a handful of things moto keeps (threading locks, weak dictionaries, cryptography keys);
`_StatePickler` rebuilds those from what they mean instead of from their memory.

Why a pickle and not an export of S3 objects and DynamoDB items: a pickle keeps everything the
later CloudFormation deploy creates (EC2, ELBv2, ECS, RDS, IAM, ...) with its ids, ARNs and S3
version ids unchanged; an export would have to re-create resources through the API, which mints
new ids. The price is that a pickle is only readable by the moto version that wrote it, so the
file records that version and a different one is refused, not guessed at.

The file is written to a temporary name and renamed into place, so a crash mid-save leaves the
previous state whole. Layout (the header is human-readable with ``head -c 4200``)::

    COME2US-MOTO-STATE\\n
    {"format": 1, "moto": "5.2.5", "payload_sha256": "...", ...}   (JSON padded to 4 KiB)\\n
    <pickle protocol 5 payload>

A file that fails any check is never loaded, never deleted and never overwritten: the server
refuses to start and says why, so nobody loses the state they meant to keep.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import platform
import sys
import threading
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FunctionType
from typing import IO, TYPE_CHECKING, Any

import moto
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from moto.core.base_backend import BackendDict, backend_lock

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

STATE_FILE = "moto-state.bin"
MAGIC = b"COME2US-MOTO-STATE\n"
FORMAT = 1
HEADER_BYTES = 4096  # the JSON header is space-padded to this size, then a newline
PAYLOAD_OFFSET = len(MAGIC) + HEADER_BYTES + 1
CHUNK = 1 << 20

BackendKey = str  # "moto.s3:s3_backends": the module and attribute holding a BackendDict


class StateFileError(RuntimeError):
    """The state file cannot be trusted or restored; it is left untouched, the message says why.

    ``problem`` is the bare finding ("fails its SHA-256 checksum ..."), for callers that add
    their own framing; ``str()`` is the whole story with what to do about it.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"AWS emulator state file {path} {problem}. It was left untouched, and the emulator "
            f"will not start over it (that would lose the saved buckets, objects and tables). "
            f"Move it away to start with an empty AWS, or put back a good copy."
        )
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class StateHeader:
    """What the header of a state file (its first 4 KiB) says about the rest."""

    moto_version: str
    python_version: str
    saved_at: str
    payload_bytes: int
    payload_sha256: str
    services: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "moto": self.moto_version,
            "python": self.python_version,
            "saved_at": self.saved_at,
            "payload_bytes": self.payload_bytes,
            "payload_sha256": self.payload_sha256,
            "services": list(self.services),
        }


@dataclass(frozen=True)
class StateReport:
    """The outcome of one save or restore, for the log and the status endpoint."""

    path: Path
    services: tuple[str, ...]
    size_bytes: int
    seconds: float
    saved_at: str


# -- which objects are "the state" ---------------------------------------------------------------


def loaded_backend_dicts() -> dict[BackendKey, BackendDict[Any]]:
    """Every service BackendDict of the moto modules imported in this process, by name.

    Found by looking through the imported ``moto.*`` modules rather than from a fixed list, so a
    service first used by a later CloudFormation deploy (ELBv2, RDS, ...) is saved without anyone
    remembering to add it here. Services import each other's dicts (``moto.autoscaling.models``
    holds ``ec2_backends``), so each dict is named after its own service's package
    (``moto.ec2:ec2_backends``), the path moto itself looks it up by.
    """
    candidates: dict[int, list[tuple[str, str]]] = defaultdict(list)
    dicts: dict[int, BackendDict[Any]] = {}
    for module_name in [name for name in sys.modules if name.startswith("moto.")]:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if attribute.endswith("_backends") and isinstance(value, BackendDict):
                candidates[id(value)].append((module_name, attribute))
                dicts[id(value)] = value
    named: dict[BackendKey, BackendDict[Any]] = {}
    for ident, places in candidates.items():
        home = str(getattr(dicts[ident].backend, "__module__", ""))  # "moto.ec2.models"
        package = ".".join(home.split(".")[:2])  # "moto.ec2"
        module_name, attribute = min(places, key=lambda p: (p[0] != package, p[0] != home, p))
        named[f"{module_name}:{attribute}"] = dicts[ident]
    return named


def live_backend_dicts() -> dict[BackendKey, BackendDict[Any]]:
    """The loaded BackendDicts that hold data (at least one account): what a save writes."""
    return {key: value for key, value in loaded_backend_dicts().items() if len(value) > 0}


class _UnknownBackend(LookupError):
    """The state refers to a service backend this moto does not have."""


@dataclass(frozen=True)
class _SavedDict:
    """One service's state: its accounts, and what its BackendDict itself holds.

    Only the contents are saved, not the dict: the restore puts them *into* the process's own
    BackendDict, which module-level code throughout moto refers to. The dict's attributes are
    state too: S3 keeps the global bucket namespace there (``bucket_accounts``: which account
    owns which bucket name — without it a restored bucket could be "created" again, empty),
    Organizations its master accounts.
    """

    accounts: dict[str, Any]
    attributes: dict[str, Any]


# The identity of the process's dict (its hash, and what moto's caches are keyed on) stays its own.
_DICT_IDENTITY = frozenset({"_id"})


def _contents(value: BackendDict[Any]) -> _SavedDict:
    attributes = {k: v for k, v in vars(value).items() if k not in _DICT_IDENTITY}
    return _SavedDict(accounts=dict(value), attributes=attributes)


def _live_backend_dict(key: BackendKey) -> BackendDict[Any]:
    """The process's own BackendDict for ``key``; also how a pickled reference to one is loaded."""
    module_name, _, attribute = key.partition(":")
    if not module_name.startswith("moto."):
        raise _UnknownBackend(f"the state names {key!r}, which is not a moto backend")
    value = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(value, BackendDict):
        raise _UnknownBackend(f"{key} is not a moto BackendDict in moto {moto.__version__}")
    return value


# -- pickling what pickle refuses ----------------------------------------------------------------

_LOCK_TYPES: dict[type, Callable[[], object]] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
}
# The key types moto creates (KMS, ACM, IAM, EC2 key pairs): RSA, elliptic curve, EdDSA, DSA.
_PRIVATE_KEYS = (
    rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey, dsa.DSAPrivateKey,
)
_PUBLIC_KEYS = (
    rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey, dsa.DSAPublicKey,
)


# The loaders below are pickled by name, so they must be plain functions of this module
# (cryptography's own loaders live in a Rust extension that pickle cannot name).


def _new_event(is_set: bool) -> threading.Event:
    event = threading.Event()
    if is_set:
        event.set()
    return event


def _load_private_key(der: bytes) -> object:
    return serialization.load_der_private_key(der, password=None)


def _load_public_key(der: bytes) -> object:
    return serialization.load_der_public_key(der)


def _load_certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _is_anonymous(function: object) -> bool:
    """A lambda or nested function: pickle cannot store it by name."""
    qualname = getattr(function, "__qualname__", "")
    return isinstance(function, FunctionType) and ("<lambda>" in qualname or "<locals>" in qualname)


def _named_factory(factory: Callable[[], object]) -> Callable[[], object]:
    """A picklable factory that makes what an anonymous ``defaultdict`` factory makes.

    moto writes ``defaultdict(lambda: {})`` and ``defaultdict(lambda: defaultdict(dict))``; the
    lambda cannot be pickled, but what it returns — an empty dict, or an empty defaultdict of
    dicts — says exactly which named factory is equivalent (``dict``,
    ``partial(defaultdict, dict)``). Anything else is refused rather than guessed.
    """
    product = factory()
    if isinstance(product, defaultdict) and not product and product.default_factory:
        inner = product.default_factory
        return partial(defaultdict, _named_factory(inner) if _is_anonymous(inner) else inner)
    if type(product) in (dict, list, set) and not product:
        return type(product)
    raise pickle.PicklingError(
        f"cannot save a defaultdict whose factory {factory!r} returns {product!r}"
    )


class _StatePickler(pickle.Pickler):
    """A pickler that stores moto's unpicklable helpers by meaning, and live dicts by name.

    Locks and conditions are stored as "a fresh lock" (nobody holds one while the state is saved:
    the server has paused requests); weak dictionaries as their current contents; cryptography
    keys and certificates as DER bytes. A reference to a service's BackendDict itself is stored
    as its name, so after a restore it points at the process's own dict, not at a copy.
    """

    def __init__(self, file: SupportsWrite[bytes]) -> None:
        super().__init__(file, protocol=5)
        # Every dict, empty ones too: a model may hold a reference to a dict with no data yet.
        self._live_names = {id(value): key for key, value in loaded_backend_dicts().items()}

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _LOCK_TYPES:
            return _LOCK_TYPES[kind], ()
        if isinstance(obj, BackendDict):
            key = self._live_names.get(id(obj))
            if key is not None:
                return _live_backend_dict, (key,)
        if isinstance(obj, dict | list) and not isinstance(obj, OrderedDict):
            return _reduce_container(obj)
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, threading.Event):
            return _new_event, (obj.is_set(),)
        if isinstance(obj, weakref.WeakValueDictionary | weakref.WeakKeyDictionary):
            return kind, (dict(obj.items()),)
        if isinstance(obj, weakref.WeakSet):
            return kind, (list(obj),)
        if isinstance(obj, _PRIVATE_KEYS):
            der = obj.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return _load_private_key, (der,)
        if isinstance(obj, _PUBLIC_KEYS):
            der = obj.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return _load_public_key, (der,)
        if isinstance(obj, x509.Certificate):
            return _load_certificate, (obj.public_bytes(serialization.Encoding.DER),)
        return NotImplemented


def _reduce_container(obj: dict[Any, Any] | list[Any]) -> Any:
    """Store a dict or list subclass by its raw contents, past its own item methods.

    Pickle's default for a dict subclass saves ``obj.items()`` and restores with
    ``obj[key] = value``. moto's S3 key store overrides both to mean "the latest version" and
    "add a version", so the default would keep one version per key and nest lists on load. Saving
    what ``dict`` itself holds and restoring with ``dict.update`` keeps every version. The
    contents travel as the object's *state*, which pickle writes after the object is memoized,
    so structures that refer back to themselves still round-trip.
    """
    kind = type(obj)
    factory = None
    if isinstance(obj, defaultdict):
        factory = obj.default_factory
        if _is_anonymous(factory):
            factory = _named_factory(obj.default_factory)  # type: ignore[arg-type]
        elif kind is defaultdict:
            return NotImplemented
    elif kind in (dict, list):
        return NotImplemented
    if isinstance(obj, dict):
        raw: Any = {key: dict.__getitem__(obj, key) for key in dict.keys(obj)}
    else:
        raw = list(list.__iter__(obj))
    attributes = obj.__getstate__()
    return _new_instance, (kind,), (attributes, raw, factory), None, None, _set_container


def _new_instance(kind: type[Any]) -> Any:
    """An empty instance, without ``__init__``: what pickle itself does for objects."""
    if issubclass(kind, dict):
        return dict.__new__(kind)
    return list.__new__(kind)


def _set_container(obj: Any, state: tuple[Any, Any, Any]) -> None:
    attributes, raw, factory = state
    if isinstance(obj, dict):
        dict.update(obj, raw)
    else:
        list.extend(obj, raw)
    if factory is not None:
        obj.default_factory = factory
    if attributes:
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(attributes)
        else:
            obj.__dict__.update(attributes)


# -- the file ------------------------------------------------------------------------------------


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what pickle writes, on its way to the file."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.target.write(view)
        self.sha256.update(view)
        self.count += view.nbytes
        return view.nbytes


def _service_name(key: BackendKey) -> str:
    """``moto.s3:s3_backends`` → ``s3``: for the header and the log."""
    return key.partition(":")[0].removeprefix("moto.")


def _encode_header(header: StateHeader) -> bytes:
    encoded = json.dumps(header.as_json()).encode()
    if len(encoded) > HEADER_BYTES:  # only with hundreds of services: keep the count, not names
        fields = header.as_json() | {"services": [f"{len(header.services)} services"]}
        encoded = json.dumps(fields).encode()
    return encoded.ljust(HEADER_BYTES)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_state(state_dir: Path) -> StateReport:
    """Write every loaded service's state to ``state_dir/STATE_FILE``, atomically.

    The caller must make sure no request is changing the backends meanwhile (the server holds its
    request gate). Raises whatever pickling raised; the previous state file is untouched then.
    """
    started = time.monotonic()
    live = live_backend_dicts()
    target = state_dir / STATE_FILE
    scratch = state_dir / (STATE_FILE + ".saving")
    try:
        # Owner-only: the state holds Secrets Manager values and KMS keys, as AWS would.
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(MAGIC + b" " * HEADER_BYTES + b"\n")
            writer = _HashingWriter(out)
            _StatePickler(writer).dump({key: _contents(value) for key, value in live.items()})
            header = StateHeader(
                moto_version=moto.__version__,
                python_version=platform.python_version(),
                saved_at=datetime.now(UTC).isoformat(timespec="seconds"),
                payload_bytes=writer.count,
                payload_sha256=writer.sha256.hexdigest(),
                services=tuple(sorted(_service_name(key) for key in live)),
            )
            out.seek(len(MAGIC))
            out.write(_encode_header(header))
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    scratch.replace(target)
    _fsync_dir(state_dir)
    return StateReport(
        path=target,
        services=header.services,
        size_bytes=PAYLOAD_OFFSET + header.payload_bytes,
        seconds=time.monotonic() - started,
        saved_at=header.saved_at,
    )


def read_header(path: Path) -> StateHeader:
    """Check a state file without loading it: magic, header, moto version, size and checksum.

    Raises StateFileError naming what is wrong; reading is all it does to the file.
    """
    def refuse(problem: str) -> StateFileError:
        return StateFileError(path, problem)

    try:
        with path.open("rb") as source:
            if source.read(len(MAGIC)) != MAGIC:
                raise refuse("does not start with the come2us state marker (not a state file)")
            raw = source.read(HEADER_BYTES + 1)
            try:
                fields = json.loads(raw)
                header = StateHeader(
                    moto_version=str(fields["moto"]),
                    python_version=str(fields["python"]),
                    saved_at=str(fields["saved_at"]),
                    payload_bytes=int(fields["payload_bytes"]),
                    payload_sha256=str(fields["payload_sha256"]),
                    services=tuple(str(s) for s in fields["services"]),
                )
                file_format = int(fields["format"])
            except (ValueError, KeyError, TypeError) as err:
                raise refuse(f"has an unreadable header ({err})") from err
            if file_format != FORMAT:
                raise refuse(f"is in format {file_format}; this come2us reads format {FORMAT}")
            if header.moto_version != moto.__version__:
                raise refuse(
                    f"was written by moto {header.moto_version}, but this is moto "
                    f"{moto.__version__}; moto's objects are not portable between versions "
                    f"(install moto=={header.moto_version} to read it)"
                )
            digest = hashlib.sha256()
            size = 0
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as err:
        raise refuse(f"cannot be read ({err})") from err
    if size != header.payload_bytes:
        raise refuse(
            f"holds {size} bytes of state where its header promises {header.payload_bytes} "
            f"(truncated or appended to)"
        )
    if digest.hexdigest() != header.payload_sha256:
        raise refuse("fails its SHA-256 checksum (the file was damaged after it was written)")
    return header


def check_state_dir(state_dir: Path) -> str | None:
    """For DataDir.claim: what is wrong with the saved state, or None (no file is fine)."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        read_header(path)
    except StateFileError as err:
        return f"{STATE_FILE} {err.problem} (move that file away to start with an empty AWS)"
    return None


def load_state(state_dir: Path) -> StateReport | None:
    """Restore the saved state into this process's moto backends; None when nothing was saved.

    Must run before the server answers its first request: the restored dicts replace whatever the
    backends hold. Raises StateFileError (the file is left as it is) when the file fails a check
    or does not unpickle.
    """
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    started = time.monotonic()
    header = read_header(path)
    try:
        with path.open("rb") as source:
            source.seek(PAYLOAD_OFFSET)
            # The file was written by save_state into a data directory of this user, and its
            # checksum was just verified: it is our own state, not input from elsewhere.
            state = pickle.load(source)  # noqa: S301
        if not isinstance(state, dict) or not all(
            isinstance(saved, _SavedDict) for saved in state.values()
        ):
            raise _UnknownBackend(f"it holds a {type(state).__name__}, not saved backends")
        targets = [(_live_backend_dict(key), saved) for key, saved in state.items()]
    except Exception as err:
        raise StateFileError(
            path,
            f"passed its checksum but could not be restored ({type(err).__name__}: {err})",
        ) from err
    # moto's reset (POST /moto-api/reset) clears the dicts listed here.
    in_use: list[BackendDict[Any]] = vars(BackendDict)["_instances"]
    with backend_lock:
        for live, saved in targets:
            live.clear()
            live.update(saved.accounts)
            vars(live).update(saved.attributes)
            if live not in in_use:
                in_use.append(live)
            for backend in _backends_of(live):
                _register_weak_references(backend)
    return StateReport(
        path=path,
        services=header.services,
        size_bytes=PAYLOAD_OFFSET + header.payload_bytes,
        seconds=time.monotonic() - started,
        saved_at=header.saved_at,
    )


def _backends_of(live: BackendDict[Any]) -> Iterator[object]:
    for account in live.values():
        yield from account.values()


def _register_weak_references(backend: object) -> None:
    """Redo what moto's EC2 backends do in ``__init__``, which unpickling does not run.

    EC2 keeps class-level registries of weak references to every backend instance
    (``vpc_refs``, ``vpc_pcx_refs``, ``backend_refs``) to find peers across regions and accounts
    (VPC peering, transit gateway peering). A restored backend must be in them like a new one.
    """
    for cls in type(backend).__mro__:
        for name, registry in vars(cls).items():
            if name.endswith("_refs") and isinstance(registry, defaultdict):
                refs = registry[type(backend)]
                if isinstance(refs, set):
                    refs.add(weakref.ref(backend))
