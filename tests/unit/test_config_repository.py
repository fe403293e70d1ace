"""The git environment repository against a real scratch git repository: which files make an
Environment, in which order, named how, at which label — and that a new commit is seen at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config.repository import (
    EnvironmentRepository,
    GitRepository,
    LabelNotFound,
    RepositoryError,
    candidate_files,
    parse_properties,
    repository_path,
)
from tests.scratch_git import ScratchRepo

BASE_FILES = {
    "config-repo/application.yml": "shared: base\nlevel: app\nlist: [a, b, c]\n",
    "config-repo/application-local.yml": "level: app-local\n",
    "config-repo/gateway.yml": "level: gateway\nroutes:\n  - id: users\n    uri: lb://user\n",
    "config-repo/gateway-local.yml": "level: gateway-local\nlocal: true\n",
    "config-repo/gateway-dev.properties": "level=gateway-dev\ndev.only = yes\n",
    "elsewhere/gateway.yml": "level: not-served\n",
}


@pytest.fixture
def scratch(tmp_path: Path) -> ScratchRepo:
    repo = ScratchRepo(tmp_path / "repo")
    repo.commit(BASE_FILES, "base")
    return repo


@pytest.fixture
def repository(scratch: ScratchRepo) -> EnvironmentRepository:
    return EnvironmentRepository(GitRepository(scratch.path), "config-repo", "main")


def names(repository: EnvironmentRepository, application: str, profiles: str,
          label: str | None = None) -> list[str]:
    environment = repository.find_one(application, profiles, label)
    prefix = f"{repository.uri}/config-repo/"
    return [source.name.removeprefix(prefix) for source in environment.property_sources]


def test_sources_are_most_specific_first(repository: EnvironmentRepository) -> None:
    assert names(repository, "gateway", "local") == [
        "gateway-local.yml", "gateway.yml", "application-local.yml", "application.yml"]


def test_later_profile_wins_and_properties_files_count(repository: EnvironmentRepository
                                                       ) -> None:
    assert names(repository, "gateway", "local,dev") == [
        "gateway-dev.properties", "gateway-local.yml", "gateway.yml",
        "application-local.yml", "application.yml"]
    assert names(repository, "gateway", "dev,local")[:2] == [
        "gateway-local.yml", "gateway-dev.properties"]


def test_environment_json_has_springs_shape(repository: EnvironmentRepository,
                                            scratch: ScratchRepo) -> None:
    body = repository.find_one("gateway", "local").to_json()
    assert list(body) == ["name", "profiles", "label", "version", "state", "propertySources"]
    assert body["name"] == "gateway"
    assert body["profiles"] == ["local"]
    assert body["label"] == "main"
    assert body["version"] == scratch.head()
    assert body["state"] is None
    first = body["propertySources"][0]
    assert first["name"] == f"{scratch.path.resolve().as_uri()}/config-repo/gateway-local.yml"
    assert first["source"] == {"level": "gateway-local", "local": True}
    gateway = body["propertySources"][1]["source"]
    assert gateway == {"level": "gateway", "routes[0].id": "users", "routes[0].uri": "lb://user"}


def test_properties_values_stay_strings(repository: EnvironmentRepository) -> None:
    source = repository.find_one("gateway", "dev").property_sources[0].source
    assert source == {"level": "gateway-dev", "dev.only": "yes"}


def test_unknown_application_gets_the_shared_files(repository: EnvironmentRepository) -> None:
    assert names(repository, "nobody", "default") == ["application.yml"]
    assert names(repository, "nobody", "local") == ["application-local.yml", "application.yml"]


def test_application_itself_is_not_listed_twice(repository: EnvironmentRepository) -> None:
    assert names(repository, "application", "local") == [
        "application-local.yml", "application.yml"]


def test_labels_branch_tag_commit_and_slash(repository: EnvironmentRepository,
                                            scratch: ScratchRepo) -> None:
    base = scratch.head()
    scratch.tag("v1", annotated=True)
    scratch.checkout("feature/tls", create=True)
    feature = scratch.commit({"config-repo/gateway.yml": "level: feature\n"})
    scratch.checkout("main")

    assert repository.find_one("gateway", "default", "v1").version == base
    assert repository.find_one("gateway", "default", "feature(_)tls").version == feature
    assert repository.find_one("gateway", "default", "feature(_)tls").label == "feature/tls"
    assert repository.find_one("gateway", "default", base).version == base
    assert repository.find_one("gateway", "default", feature[:10]).version == feature
    gateway = repository.find_one("gateway", "default", "feature(_)tls").property_sources[0]
    assert gateway.source == {"level": "feature"}


@pytest.mark.parametrize("label", ["nope", "main~1", "main^", "a b", "--help", "..", "HEAD@{1}"])
def test_unknown_or_malformed_label_is_not_found(repository: EnvironmentRepository,
                                                 label: str) -> None:
    with pytest.raises(LabelNotFound, match="No such label"):
        repository.find_one("gateway", "default", label)


def test_a_new_commit_is_seen_without_restart(repository: EnvironmentRepository,
                                              scratch: ScratchRepo) -> None:
    before = repository.find_one("gateway", "default")
    after_commit = scratch.commit({"config-repo/gateway.yml": "level: changed\n"})
    after = repository.find_one("gateway", "default")
    assert after.version == after_commit != before.version
    assert after.property_sources[0].source == {"level": "changed"}
    # The old commit is still served by its id, from the cache.
    assert repository.find_one("gateway", "default", before.version).property_sources[0].source[
        "level"] == "gateway"


def test_files_of_a_commit_are_read_once(repository: EnvironmentRepository,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    repository.find_one("gateway", "local")
    reads: list[str] = []
    original = repository.git.files
    monkeypatch.setattr(repository.git, "files",
                        lambda commit, folder: reads.append(commit) or original(commit, folder))
    for _ in range(3):
        repository.find_one("gateway", "local")
    assert reads == []


def test_multi_document_yaml_and_profile_activation(scratch: ScratchRepo,
                                                    repository: EnvironmentRepository) -> None:
    scratch.commit({"config-repo/orders.yml": (
        "timeout: 1\n---\nspring.config.activate.on-profile: local\ntimeout: 2\n"
        "---\nspring.config.activate.on-profile: '!local'\ntimeout: 3\n")})
    local = repository.find_one("orders", "local").property_sources
    assert [source.name.rsplit("/", 1)[1] for source in local[:2]] == [
        "orders.yml (document #1)", "orders.yml (document #0)"]
    assert local[0].source["timeout"] == 2
    other = repository.find_one("orders", "aws").property_sources
    assert other[0].source["timeout"] == 3


def test_dates_stay_strings_and_bool_keys_read_as_spring_does(
        scratch: ScratchRepo, repository: EnvironmentRepository) -> None:
    scratch.commit({"config-repo/dates.yml": "release: 2026-05-01\nflags:\n  on: 1\n"})
    source = repository.find_one("dates", "default").property_sources[0].source
    assert source == {"release": "2026-05-01", "flags.true": 1}


def test_malformed_yaml_names_the_file(scratch: ScratchRepo,
                                       repository: EnvironmentRepository) -> None:
    scratch.commit({"config-repo/broken.yml": "a: [1, 2\n"})
    with pytest.raises(RepositoryError, match=r"broken\.yml is not valid YAML"):
        repository.find_one("broken", "default")
    assert names(repository, "gateway", "default")[0] == "gateway.yml"  # others still served


def test_search_path_root_and_missing_folder(scratch: ScratchRepo) -> None:
    root = EnvironmentRepository(GitRepository(scratch.path), "", "main")
    assert root.find_one("gateway", "default").property_sources == []
    elsewhere = EnvironmentRepository(GitRepository(scratch.path), "elsewhere", "main")
    assert elsewhere.find_one("gateway", "default").property_sources[0].source == {
        "level": "not-served"}
    missing = EnvironmentRepository(GitRepository(scratch.path), "missing", "main")
    assert missing.find_one("gateway", "default").property_sources == []


def test_default_label_falls_back_to_master(tmp_path: Path) -> None:
    scratch = ScratchRepo(tmp_path / "old", branch="master")
    commit = scratch.commit({"application.yml": "a: 1\n"})
    repository = EnvironmentRepository(GitRepository(scratch.path), "", "main")
    environment = repository.find_one("x", "default")
    assert (environment.label, environment.version) == ("master", commit)


def test_not_a_repository_is_reported_with_gits_words(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="not a git repository"):
        GitRepository(tmp_path).check()


def test_repository_path_accepts_paths_and_file_uris(tmp_path: Path) -> None:
    assert repository_path(str(tmp_path)) == tmp_path
    assert repository_path(tmp_path.as_uri()) == tmp_path
    with pytest.raises(RepositoryError, match="only local repositories"):
        repository_path("https://github.com/example/config-repo")


def test_candidate_files_order() -> None:
    assert candidate_files("gateway", ["a", "b"]) == [
        "gateway-b", "gateway-a", "gateway", "application-b", "application-a", "application"]


def test_java_properties_syntax() -> None:
    text = (
        "# comment\n! also a comment\n"
        "a=1\n"
        "b : two words\n"
        "c three\n"
        "long = first \\\n    second\n"
        "escaped\\ key = tab\\there \\u00e9\n"
        "empty=\n"
    )
    assert parse_properties(text) == {
        "a": "1", "b": "two words", "c": "three", "long": "first second",
        "escaped key": "tab\there \u00e9", "empty": "",
    }
