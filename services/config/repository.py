"""The git environment repository: configuration files of a git commit as Spring Environments.

Plain classes, no HTTP: `GitRepository` reads a repository, `EnvironmentRepository` turns the
files of one commit into the ``Environment`` the config server answers with.

Why the git CLI and not dulwich (or a clone, as Spring's JGit backend does):

- the repository is already on this machine (the project's own, or a scratch one in tests), so
  there is nothing to clone: we read objects straight from it, work tree untouched, so a
  developer's uncommitted edits are never served by accident;
- a label must resolve exactly as git resolves it — packed refs, annotated tags peeled to their
  commit, abbreviated commit ids, refs written a moment ago by another process — and the git
  binary is the reference implementation of all of that, already a required OS package
  (``tools/setup/bootstrap.sh``); dulwich would be a second implementation to keep in step;
- the cost is one short ``git cat-file --batch-check`` per request to re-resolve the label (so
  a new commit is seen without a restart), about a millisecond or two; the files of a commit are
  read once (``ls-tree`` + one ``cat-file --batch``) and cached by commit id, which never
  changes meaning.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from services.common.properties import FlatProperties, flatten

log = logging.getLogger("come2us.config.repository")

GIT_TIMEOUT_S = 10.0
# Commits whose files stay parsed in memory; a commit's content never changes, so old entries
# are only dropped to bound memory when labels move often.
SNAPSHOT_CACHE_SIZE = 64
# Spring Boot's own precedence when a base name exists with several extensions: .properties
# first (it wins), then .yml, then .yaml.
EXTENSIONS = (".properties", ".yml", ".yaml")
# Spring Cloud Config's stand-in for "/" in a label inside a URL path (e.g. feature(_)x).
LABEL_SLASH = "(_)"
FALLBACK_LABEL = "master"
# Characters git forbids in ref names (git check-ref-format), plus whitespace: a label with one
# of them names nothing, and must never reach cat-file's line-based batch protocol.
_BAD_LABEL = re.compile(r"[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{")
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,40}")
_ACTIVATION_KEYS = ("spring.config.activate.on-profile", "spring.profiles")


class RepositoryError(RuntimeError):
    """The repository could not be read (not a repository, git failed, a file is malformed)."""


class LabelNotFound(LookupError):
    """No branch, tag or commit of that name; the message names the label as Spring's does."""

    def __init__(self, label: str) -> None:
        super().__init__(f"No such label: {label}")
        self.label = label


def repository_path(uri_or_path: str) -> Path:
    """The local path of ``--repo``: a filesystem path or a ``file://`` URI.

    Remote URIs are refused rather than cloned: the testbed always has the repository on disk.
    """
    parsed = urlparse(uri_or_path)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" would be a drive, not a scheme
        raise RepositoryError(
            f"{uri_or_path}: only local repositories (a path or a file:// URI) are served; "
            f"clone a remote one first and pass its path"
        )
    return Path(uri_or_path)


class GitRepository:
    """A local git repository (bare or not), read through the git CLI without a work tree."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.uri = self.path.as_uri()

    def check(self) -> None:
        """Fail early, with git's own words, when the path is not a readable repository."""
        self._git("rev-parse", "--git-dir")

    def resolve(self, label: str) -> str:
        """The commit id a label names now: a branch, a tag (peeled) or a commit id."""
        if not label or _BAD_LABEL.search(label):
            raise LabelNotFound(label)
        candidates = [f"refs/heads/{label}", f"refs/tags/{label}",
                      f"refs/remotes/origin/{label}"]
        if _COMMIT_ID.fullmatch(label):
            candidates.append(label)
        answer = self._git("cat-file", "--batch-check",
                           stdin="".join(f"{name}^{{commit}}\n" for name in candidates))
        for line in answer.decode().splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] == "commit":
                return fields[0]
        raise LabelNotFound(label)

    def files(self, commit: str, folder: str) -> dict[str, bytes]:
        """The files directly inside ``folder`` at ``commit`` (name -> content); {} if none."""
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        listing = self._git("ls-tree", "-z", commit, *([prefix] if prefix else []))
        blobs: dict[str, str] = {}
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            _mode, kind, object_id = meta.decode().split()
            if kind == "blob":
                blobs[PurePosixPath(raw_path.decode()).name] = object_id
        if not blobs:
            return {}
        return dict(zip(blobs, self._read_blobs(list(blobs.values())), strict=True))

    def _read_blobs(self, object_ids: Sequence[str]) -> list[bytes]:
        output = self._git("cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in object_ids))
        contents: list[bytes] = []
        position = 0
        for object_id in object_ids:
            header_end = output.index(b"\n", position)
            header = output[position:header_end].decode().split()
            if len(header) != 3:
                raise RepositoryError(f"{self.path}: git could not read object {object_id}")
            size = int(header[2])
            start = header_end + 1
            contents.append(output[start:start + size])
            position = start + size + 1  # each object is followed by a newline
        return contents

    def _git(self, *args: str, stdin: str | None = None) -> bytes:
        command = ["git", "-C", str(self.path), *args]
        try:
            done = subprocess.run(
                command, input=stdin.encode() if stdin is not None else None,
                capture_output=True, timeout=GIT_TIMEOUT_S, check=False,
                env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"},
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RepositoryError(f"{self.path}: git {args[0]} failed: {error}") from error
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise RepositoryError(f"{self.path}: git {args[0]} failed: {reason}")
        return done.stdout


@dataclass(frozen=True)
class PropertySource:
    """One document of one file, flattened; ``name`` is what Spring would call it."""

    name: str
    source: FlatProperties

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source}


@dataclass(frozen=True)
class Environment:
    """Spring Cloud Config's ``Environment``: property sources most specific first."""

    name: str
    profiles: list[str]
    label: str
    version: str
    property_sources: list[PropertySource]
    state: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profiles": self.profiles,
            "label": self.label,
            "version": self.version,
            "state": self.state,
            "propertySources": [source.to_json() for source in self.property_sources],
        }


@dataclass(frozen=True)
class Document:
    """One YAML document (or a whole .properties file) and the profiles it is limited to."""

    source: FlatProperties
    on_profile: str | None

    def active_for(self, profiles: Sequence[str]) -> bool:
        """Spring's ``spring.config.activate.on-profile``: a list of names, ``!name`` negates."""
        if self.on_profile is None:
            return True
        for wanted in (part.strip() for part in self.on_profile.split(",")):
            if wanted.startswith("!") and wanted[1:] not in profiles:
                return True
            if wanted and not wanted.startswith("!") and wanted in profiles:
                return True
        return False


class _SpringYamlLoader(yaml.SafeLoader):
    """YAML as Spring Boot reads it: dates stay strings (Boot turns timestamp resolution off)."""


_SpringYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_file(filename: str, content: bytes) -> list[Document]:
    """The documents of a configuration file, in file order; raises RepositoryError if bad."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = content.decode("latin-1")  # java.util.Properties' historical encoding
    try:
        if filename.endswith(".properties"):
            trees: list[Any] = [parse_properties(text)]
        else:
            trees = [tree for tree in yaml.load_all(text, Loader=_SpringYamlLoader)
                     if tree is not None]
    except yaml.YAMLError as error:
        raise RepositoryError(f"{filename} is not valid YAML: {error}") from error
    documents = []
    for tree in trees:
        if not isinstance(tree, Mapping):
            raise RepositoryError(f"{filename}: a document must be a mapping of keys, "
                                  f"not {type(tree).__name__}")
        flat = flatten(tree)
        on_profile = next((str(flat[key]) for key in _ACTIVATION_KEYS if key in flat), None)
        documents.append(Document(flat, on_profile))
    return documents


_PROPERTIES_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_properties(text: str) -> dict[str, str]:
    """A ``java.util.Properties`` file: ``k=v``, ``k: v``, ``k v``, comments, continuations."""
    result: dict[str, str] = {}
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:  # an odd number of backslashes continues the line
            logical.append(line[:-1])
            continue
        logical.append(line)
        key, value = _split_property("".join(logical))
        logical = []
        result[key] = value
    if logical:
        key, value = _split_property("".join(logical))
        result[key] = value
    return result


def _split_property(line: str) -> tuple[str, str]:
    key_chars: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            key_chars.append(line[index:index + 2])
            index += 2
            continue
        if char in "=: \t\f":
            break
        key_chars.append(char)
        index += 1
    rest = line[index:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape("".join(key_chars)), _unescape(rest)


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("u") and len(escaped) == 5:
            return chr(int(escaped[1:], 16))
        return _PROPERTIES_ESCAPES.get(escaped, escaped)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, text)


@dataclass
class Snapshot:
    """The configuration files of one commit; each is parsed on first use and kept."""

    commit: str
    files: dict[str, bytes]
    _parsed: dict[str, list[Document]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def documents(self, filename: str) -> list[Document] | None:
        if filename not in self.files:
            return None
        with self._lock:
            if filename not in self._parsed:
                self._parsed[filename] = parse_file(filename, self.files[filename])
            return self._parsed[filename]


def candidate_files(application: str, profiles: Sequence[str]) -> list[str]:
    """File base names most specific first, as the brief and Spring's repositories rank them:
    ``{app}-{profile}``, ``{app}``, ``application-{profile}``, ``application``; with several
    profiles the later one wins, so it comes first."""
    names: list[str] = []
    for base in dict.fromkeys((application, "application")):
        names.extend(f"{base}-{profile}" for profile in reversed(profiles))
        names.append(base)
    return list(dict.fromkeys(names))


class EnvironmentRepository:
    """Environments from the files under ``search_path`` of the commit a label names now."""

    def __init__(self, git: GitRepository, search_path: str = "", default_label: str = "main",
                 uri: str | None = None, platform: PropertySource | None = None) -> None:
        self.git = git
        self.platform = platform
        self.search_path = search_path.strip("/")
        self.default_label = default_label
        self.uri = (uri or git.uri).rstrip("/")
        self._snapshots: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, label: str | None) -> tuple[str, str]:
        """(label used, commit id) for a request's label; the default label when it is None.

        Spring's ``(_)`` stands for ``/``. When the default label is ``main`` and there is no
        such branch, ``master`` is tried, as Spring's ``tryMasterBranch`` does.
        """
        if label is None:
            try:
                return self.default_label, self.git.resolve(self.default_label)
            except LabelNotFound:
                if self.default_label != "main":
                    raise
                return FALLBACK_LABEL, self.git.resolve(FALLBACK_LABEL)
        label = label.replace(LABEL_SLASH, "/")
        return label, self.git.resolve(label)

    def snapshot(self, commit: str) -> Snapshot:
        with self._lock:
            cached = self._snapshots.get(commit)
            if cached is not None:
                self._snapshots.move_to_end(commit)
                return cached
            snapshot = Snapshot(commit, self.git.files(commit, self.search_path))
            self._snapshots[commit] = snapshot
            while len(self._snapshots) > SNAPSHOT_CACHE_SIZE:
                self._snapshots.popitem(last=False)
            log.debug("read %d files of %s at %s", len(snapshot.files), self.search_path, commit)
            return snapshot

    def find_one(self, application: str, profiles: str | Iterable[str],
                 label: str | None = None) -> Environment:
        """The Environment of ``application`` for ``profiles`` (``"a,b"`` or a list) at a label.

        An application without files of its own still gets the shared ``application.*``
        sources, as Spring answers; a label that names nothing raises `LabelNotFound`.
        """
        wanted = split_profiles(profiles)
        used_label, commit = self.resolve(label)
        snapshot = self.snapshot(commit)
        sources: list[PropertySource] = []
        for base in candidate_files(application, wanted):
            for extension in EXTENSIONS:
                filename = base + extension
                documents = snapshot.documents(filename)
                if documents is None:
                    continue
                name = self._source_name(filename)
                numbered = len(documents) > 1
                for index in reversed(range(len(documents))):  # a later document wins
                    document = documents[index]
                    if document.active_for(wanted):
                        suffix = f" (document #{index})" if numbered else ""
                        sources.append(PropertySource(name + suffix, document.source))
        if self.platform is not None:
            sources.append(self.platform)  # lowest precedence: the repository may override
        return Environment(application, wanted, used_label, commit, sources)

    def _source_name(self, filename: str) -> str:
        folder = f"{self.search_path}/" if self.search_path else ""
        return f"{self.uri}/{folder}{filename}"


def load_platform_source(path: Path) -> PropertySource:
    """The platform's own properties (addresses, public keys), served to every application.

    The runtime writes this file from the stack model, so no address is copied into the
    configuration repository; it plays the part of Spring's composite environment repository.
    """
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RepositoryError(f"cannot read the platform properties {path}: {error}") from error
    if not isinstance(tree, dict):
        raise RepositoryError(f"{path} must hold a YAML mapping, not {type(tree).__name__}")
    return PropertySource(f"come2us-platform ({path.name}, from the stack model)", flatten(tree))


def split_profiles(profiles: str | Iterable[str]) -> list[str]:
    """``"dev, local"`` or ``["dev", "local"]`` -> ``["dev", "local"]``; none means default."""
    parts = profiles.split(",") if isinstance(profiles, str) else list(profiles)
    cleaned = [part.strip() for part in parts if part.strip()]
    return cleaned or ["default"]
